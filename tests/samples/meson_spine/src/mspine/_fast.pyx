# A plain Cython module with no free-threading directive of its own.
def total(values):
    cdef long acc = 0
    for v in values:
        acc += v
    return acc
