/* Legacy single-phase module keeping global state: declared as needing the GIL. */
#include <Python.h>

static long hits;

static PyObject *
hit(PyObject *module, PyObject *unused)
{
    return PyLong_FromLong(++hits);
}

static PyMethodDef old_methods[] = {{"hit", hit, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef old_def = {PyModuleDef_HEAD_INIT, "spine.legacy._old", NULL, -1, old_methods};

PyMODINIT_FUNC
PyInit__old(void)
{
    return PyModule_Create(&old_def);
}
