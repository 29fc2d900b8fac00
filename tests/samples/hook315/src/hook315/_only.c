/* A module written for 3.15 only: the export hook, no PyInit_. Its slots declare nothing. */
static int exec_only(PyObject *module) { return PyModule_AddIntConstant(module, "answer", 7); }

static PySlot only_slots[] = {
    {.sl_id = Py_mod_exec, .sl_func = (void (*)(void))exec_only},
    PySlot_END,
};

PyMODEXPORT_FUNC PyModExport__only(void);
PyMODEXPORT_FUNC PyModExport__only(void) { return only_slots; }
