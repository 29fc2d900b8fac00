/* A module with both entry points: PyInit__both for CPython before 3.15, and the export hook
 * that 3.15 prefers. The hook's slots declare the GIL used twice over (a PySlot entry with the
 * new id, and a nested PyModuleDef_Slot array with the old id 4): the toolkit's declaration
 * must replace both. */
static int exec_both(PyObject *module) { return PyModule_AddIntConstant(module, "answer", 42); }

static PyModuleDef_Slot legacy_slots[] = {
    {Py_mod_exec, (void *)exec_both},
    {4, Py_MOD_GIL_USED},
    {0, NULL},
};

static PySlot both_slots[] = {
    PySlot_DATA(Py_mod_gil, Py_MOD_GIL_USED),
    PySlot_STATIC_DATA(Py_mod_slots, legacy_slots),
    PySlot_END,
};

PyMODEXPORT_FUNC PyModExport__both(void);
PyMODEXPORT_FUNC PyModExport__both(void) { return both_slots; }

static struct PyModuleDef both_def = {PyModuleDef_HEAD_INIT, "_both", NULL, 0, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__both(void);
PyMODINIT_FUNC PyInit__both(void) { return PyModuleDef_Init(&both_def); }
