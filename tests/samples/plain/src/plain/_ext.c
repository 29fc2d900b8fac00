/* No [tool.nogil] in this project: the plugin must leave the build exactly as it is. */
#include <Python.h>

static struct PyModuleDef ext_def = {PyModuleDef_HEAD_INIT, "plain._ext", NULL, 0, NULL};

PyMODINIT_FUNC
PyInit__ext(void)
{
    return PyModuleDef_Init(&ext_def);
}
