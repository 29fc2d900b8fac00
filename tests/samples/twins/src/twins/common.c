#include "common.h"

PyObject *
twins_describe(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return PyUnicode_FromString("I am " TWIN);
}
