#include <Python.h>

/* Shared by both extensions; compiled into each with its own TWIN. */
PyObject *twins_describe(PyObject *self, PyObject *args);
