# cython: language_level=3
"""A Cython module that declares nothing about the GIL (no freethreading_compatible directive).
Cython's functions are not builtins but ``cython_function_or_method`` objects, in the module and
in its Python classes; its ``cdef class`` is a static type, which serialize cannot lock."""

cdef long counter = 0


def add():
    global counter
    counter += 1
    return counter


class Plain:
    def __new__(cls):
        return object.__new__(cls)

    def method(self):
        return 1

    @classmethod
    def make(cls):
        return cls()

    @staticmethod
    def helper():
        return 2


cdef class Extension:
    def method(self):
        return 3
