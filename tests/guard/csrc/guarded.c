/* One source, several fixture modules (MODNAME, and DECLARE_NOT_USED or not).
 *
 * Loading leaves traces, so a test can prove a module was *not* loaded: a shared-library
 * constructor (runs at dlopen, before any Python code) and the module's init function each
 * create a file <module>.<constructor|init>.<pid> in $GUARD_FIXTURE_MARKS, if that is set
 * (the pid tells the guarded process from an import probe's subprocess). */
#include <Python.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define STR2(x) #x
#define STR(x) STR2(x)
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

static void mark(const char *what) {
    const char *folder = getenv("GUARD_FIXTURE_MARKS");
    if (folder == NULL) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s.%ld", folder, STR(MODNAME), what, (long)getpid());
    FILE *file = fopen(path, "w");
    if (file != NULL) fclose(file);
}

__attribute__((constructor)) static void on_dlopen(void) { mark("constructor"); }

static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};

static int exec_module(PyObject *module) { return PyModule_AddIntConstant(module, "loaded", 1); }

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_module},
#ifdef DECLARE_NOT_USED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, STR(MODNAME), NULL, 0, methods, slots, NULL, NULL, NULL};

PyMODINIT_FUNC CAT(PyInit_, MODNAME)(void) {
    mark("init");
    return PyModuleDef_Init(&def);
}
