#include "helpers.h"

static PyObject *
first(PyObject *self, PyObject *list)
{
    (void)self;
    PyObject *item = PyList_GetItem(list, 0);
    Py_XINCREF(item);
    return item;
}

static PyMethodDef methods[] = {
    {"first", first, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "audited._risky", NULL, 0, methods};

PyMODINIT_FUNC
PyInit__risky(void)
{
    return PyModuleDef_Init(&def);
}
