/* Multi-phase module whose slot array holds only constants: it lands in .rodata. */
#include <Python.h>

static const PyModuleDef_Slot slots[] = {
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
    {0, NULL},
};

static struct PyModuleDef def = {
    PyModuleDef_HEAD_INIT, MODNAME_STR, NULL, 0, NULL, (PyModuleDef_Slot *)slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PYINIT(void) { return PyModuleDef_Init(&def); }
