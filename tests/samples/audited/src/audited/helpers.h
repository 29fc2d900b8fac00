/* Included by risky.c: its code is compiled into audited._risky, so it is audited with it. */
#include <Python.h>

static inline PyObject *
first_value(PyObject *dict, PyObject *key)
{
    return PyDict_GetItem(dict, key);
}
