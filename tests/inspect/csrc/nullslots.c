/* Multi-phase module whose PyModuleDef has m_slots NULL: no slot array, so no Py_mod_gil.
 * M_NAME sets m_name (default: the bare module name; a dotted "pkg.name" works as well);
 * WITH_METHODS gives it a method table. */
#include <Python.h>

#ifndef M_NAME
#define M_NAME MODNAME_STR
#endif

#ifdef WITH_METHODS
static PyObject *hello(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"hello", hello, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
#define METHODS methods
#else
#define METHODS NULL
#endif

static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, M_NAME, NULL, 0, METHODS};

PyMODINIT_FUNC PYINIT(void) { return PyModuleDef_Init(&def); }
