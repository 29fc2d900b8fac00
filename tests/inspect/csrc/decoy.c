/* Single-phase module that declares nothing, but whose data is full of slot-shaped bytes:
 * {4, 1} pairs, a {Py_mod_gil, NOT_USED} array that is not any module's m_slots, and a
 * relocated pointer to it. None of this may be read as a declaration. */
#include <Python.h>

struct pair { int id; void *value; };
const struct pair decoy_pairs[] = {{4, (void *)1}, {0, NULL}};
PyModuleDef_Slot decoy_slots[] = {{Py_mod_gil, Py_MOD_GIL_NOT_USED}, {0, NULL}};
const int decoy_ints[] = {4, 0, 1, 0, 0, 0, 0, 0};
void *decoy_reference = decoy_slots;
void *decoy_table[] = {(void *)decoy_pairs, (void *)decoy_ints, decoy_slots, NULL};

static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, MODNAME_STR, NULL, -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PYINIT(void) { return PyModule_Create(&def); }
