/* Declares Py_MOD_GIL_USED in its own slots; the package says thread-safe = true, so the
 * build must replace the entry, not add a second one. */
#include <Python.h>

static PyModuleDef_Slot own_slots[] = {
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};
static struct PyModuleDef own_def = {PyModuleDef_HEAD_INIT, "spine._own", NULL, 0, NULL, own_slots};

PyMODINIT_FUNC
PyInit__own(void)
{
    return PyModuleDef_Init(&own_def);
}
