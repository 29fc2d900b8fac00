/* Multi-phase module whose slot array holds only the terminator {0, NULL}: no Py_mod_gil.
 * By default the all-zero array lands in .bss (NOBITS: no bytes in the file); CONST puts it
 * in read-only data; FILL_IN_INIT fills it from PyInit first (declaring NOT_USED), as
 * pybind11 3 does, so it is empty only in the file. */
#include <Python.h>

#ifdef CONST
static const PyModuleDef_Slot slots[] = {{0, NULL}};
#elif defined(FILL_IN_INIT)
static PyModuleDef_Slot slots[2];
#else
static PyModuleDef_Slot slots[] = {{0, NULL}};
#endif

static struct PyModuleDef def = {
    PyModuleDef_HEAD_INIT, MODNAME_STR, NULL, 0, NULL, (PyModuleDef_Slot *)slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PYINIT(void) {
#ifdef FILL_IN_INIT
    slots[0].slot = Py_mod_gil;
    slots[0].value = Py_MOD_GIL_NOT_USED;
#endif
    return PyModuleDef_Init(&def);
}
