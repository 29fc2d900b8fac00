/* Claims Py_MOD_GIL_NOT_USED in its sources; [tool.nogil] thread-safe = false must win. */
#include <Python.h>

static PyModuleDef_Slot claims_slots[] = {
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};
static struct PyModuleDef claims_def = {PyModuleDef_HEAD_INIT, "efalse._claims", NULL, 0, NULL, claims_slots};

PyMODINIT_FUNC
PyInit__claims(void)
{
    return PyModuleDef_Init(&claims_def);
}
