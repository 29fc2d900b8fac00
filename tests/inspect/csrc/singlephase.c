/* Single-phase module; with DECLARE it calls PyUnstable_Module_SetGIL on free-threaded builds. */
#include <Python.h>

static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, MODNAME_STR, NULL, -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PYINIT(void) {
    PyObject *module = PyModule_Create(&def);
#if defined(DECLARE) && defined(Py_GIL_DISABLED)
    if (module != NULL && PyUnstable_Module_SetGIL(module, Py_MOD_GIL_NOT_USED) < 0) {
        Py_DECREF(module);
        return NULL;
    }
#endif
    return module;
}
