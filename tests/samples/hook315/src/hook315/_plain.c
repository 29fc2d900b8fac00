/* A module without an export hook, built with the same 3.15 headers: it must get none. */
static struct PyModuleDef plain_def = {PyModuleDef_HEAD_INIT, "_plain", NULL, -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__plain(void);
PyMODINIT_FUNC PyInit__plain(void) { return PyModule_Create(&plain_def); }
