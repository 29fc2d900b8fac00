/* Multi-phase module; GIL_VALUE selects the Py_mod_gil entry (NONE: no entry at all). */
#include <Python.h>

static PyObject *hello(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"hello", hello, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static int exec_module(PyObject *module) { return PyModule_AddIntConstant(module, "answer", 42); }
static int exec_more(PyObject *module) { return PyModule_AddIntConstant(module, "more", 1); }

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
    {Py_mod_exec, exec_more},
#if defined(GIL_NOT_USED)
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#elif defined(GIL_USED)
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef def = {
    PyModuleDef_HEAD_INIT, MODNAME_STR, "fixture", 0, methods, slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PYINIT(void) { return PyModuleDef_Init(&def); }
