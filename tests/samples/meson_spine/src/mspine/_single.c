/* Single-phase init: the module object is created in PyInit. */
#include <Python.h>

static PyObject *
answer(PyObject *module, PyObject *unused)
{
    return PyLong_FromLong(42);
}

static PyMethodDef single_methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef single_def = {PyModuleDef_HEAD_INIT, "mspine._single", NULL, -1, single_methods};

PyMODINIT_FUNC
PyInit__single(void)
{
    return PyModule_Create(&single_def);
}
