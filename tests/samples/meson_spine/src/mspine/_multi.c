/* Multi-phase init with module state, an exec slot and a heap type whose method finds its
 * module again by the def's address: the shim must keep the PyModuleDef's identity. */
#include <Python.h>

typedef struct { long calls; } module_state;
static struct PyModuleDef multi_def;

static PyObject *
counter_bump(PyObject *self, PyObject *unused)
{
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *module = PyType_GetModuleByDef(Py_TYPE(self), &multi_def);
#else
    PyObject *module = PyType_GetModule(Py_TYPE(self));
    if (module != NULL && PyModule_GetDef(module) != &multi_def) {
        PyErr_SetString(PyExc_TypeError, "module found by type has another def");
        return NULL;
    }
#endif
    if (module == NULL) {
        return NULL;
    }
    module_state *state = (module_state *)PyModule_GetState(module);
    return PyLong_FromLong(++state->calls);
}

static PyMethodDef counter_methods[] = {
    {"bump", counter_bump, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};
static PyType_Slot counter_slots[] = {{Py_tp_methods, counter_methods}, {0, NULL}};
static PyType_Spec counter_spec = {"mspine._multi.Counter", sizeof(PyObject), 0, Py_TPFLAGS_DEFAULT, counter_slots};

static PyObject *
same_def(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(PyModule_GetDef(module) == &multi_def);
}

static int
multi_exec(PyObject *module)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &counter_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    int rc = PyModule_AddObject(module, "Counter", type);
    if (rc < 0) {
        Py_DECREF(type);
    }
    return rc;
}

static PyMethodDef multi_methods[] = {
    {"same_def", same_def, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};
static PyModuleDef_Slot multi_slots[] = {{Py_mod_exec, multi_exec}, {0, NULL}};
static struct PyModuleDef multi_def = {
    PyModuleDef_HEAD_INIT, "mspine._multi", NULL, sizeof(module_state), multi_methods, multi_slots,
};

PyMODINIT_FUNC
PyInit__multi(void)
{
    return PyModuleDef_Init(&multi_def);
}
