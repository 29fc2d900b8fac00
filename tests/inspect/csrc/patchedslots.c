/* Multi-phase module whose PyModuleDef has m_slots NULL in the file, but whose init points
 * it at a slot array before handing it over. With PATCH_IN_INIT, PyInit itself fills a
 * zero-initialised array and stores it into m_slots (no slot bytes in the file at all);
 * otherwise another function installs a constant {Py_mod_gil, NOT_USED} array. Either way
 * the module declares NOT_USED, and "m_slots NULL" must not be read as undeclared. */
#include <Python.h>

static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, MODNAME_STR, NULL, 0, NULL};

#ifdef PATCH_IN_INIT
static PyModuleDef_Slot filled[2];
PyMODINIT_FUNC PYINIT(void) {
    filled[0].slot = Py_mod_gil;
    filled[0].value = Py_MOD_GIL_NOT_USED;
    def.m_slots = filled;
    return PyModuleDef_Init(&def);
}
#else
static const PyModuleDef_Slot slots[] = {{Py_mod_gil, Py_MOD_GIL_NOT_USED}, {0, NULL}};
__attribute__((noinline)) static void install(struct PyModuleDef *d) { d->m_slots = (PyModuleDef_Slot *)slots; }
PyMODINIT_FUNC PYINIT(void) {
    install(&def);
    return PyModuleDef_Init(&def);
}
#endif
