/* A module as the toolkit's shim leaves it: static slots say nothing, the slots are
 * patched at run time, and the read-only marker records the declaration. */
#include <Python.h>

__attribute__((used, section(".nogil_toolkit")))
static const char nogil_marker[] = "nogil-toolkit-declaration:1;module=pkg." MODNAME_STR ";gil=not-used;toolkit=0.1.0";

static PyModuleDef_Slot *patched;
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, MODNAME_STR, NULL, 0, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PYINIT(void) {
    if (patched == NULL) {
        patched = PyMem_Calloc(2, sizeof(PyModuleDef_Slot));
        if (patched == NULL) return PyErr_NoMemory();
#ifdef Py_mod_gil
        patched[0].slot = Py_mod_gil;
        patched[0].value = Py_MOD_GIL_NOT_USED;
#endif
        def.m_slots = patched;
    }
    return PyModuleDef_Init(&def);
}
