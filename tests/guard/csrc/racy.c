/* A legacy extension that is not thread-safe, on purpose: the serialize mode's proof.
 *
 * It declares nothing about the GIL (no Py_mod_gil slot). Every entry point does a
 * non-atomic read-modify-write of C state, with a busy loop between the read and the write
 * so that, without a lock, two threads interleave there often enough that updates are lost
 * on every run:
 *
 * - add(): the module's global counter (a module function);
 * - Counter().add() and Counter()() / Counter.__call__: the instance's count (a method and a
 *   dunder slot of a heap type, which serialize can lock);
 * - Counter.make() (a class method) and Counter.bump() (a static method): the global counter;
 * - Counter().value: the instance's count as a C member (read and written without a call);
 * - total(), reset(): read and clear the global counter;
 * - call(f): calls f() from inside the extension, so a test can re-enter it;
 * - what serialize cannot lock, which its coverage line must name: Frozen, a static type;
 *   Sealed, an immutable heap type (whose tp_name has no module part, as some extensions do);
 *   _C_API, a capsule; buffer, a memoryview of C memory; bound_add, a method bound to a
 *   Counter before the guard saw the module.
 *
 * Multi-phase init by default; with -DSINGLE_PHASE, PyInit_racy creates and fills the module
 * itself (the form whose module is complete when _imp.create_dynamic returns). */
#include <Python.h>
#include <stddef.h>

static long counter;
static volatile long sink;
static char memory[16];

/* Between the read and the write: long enough that another thread gets in. */
static void widen(void) {
    for (int i = 0; i < 2000; i++) sink += i;
}

static long bump(long *place) {
    long seen = *(volatile long *)place;
    widen();
    *(volatile long *)place = seen + 1;
    return seen + 1;
}

static PyObject *add(PyObject *self, PyObject *unused) { return PyLong_FromLong(bump(&counter)); }
static PyObject *total(PyObject *self, PyObject *unused) { return PyLong_FromLong(counter); }

static PyObject *reset(PyObject *self, PyObject *unused) {
    counter = 0;
    Py_RETURN_NONE;
}

static PyObject *call(PyObject *self, PyObject *callback) {
    bump(&counter);
    return PyObject_CallNoArgs(callback);
}

typedef struct {
    PyObject_HEAD
    long count;
} CounterObject;

static PyObject *counter_add(PyObject *self, PyObject *unused) {
    return PyLong_FromLong(bump(&((CounterObject *)self)->count));
}

static PyObject *counter_call(PyObject *self, PyObject *args, PyObject *kwargs) { return counter_add(self, NULL); }

static PyObject *counter_count(PyObject *self, void *closure) {
    return PyLong_FromLong(((CounterObject *)self)->count);
}

static PyObject *counter_make(PyObject *cls, PyObject *unused) {
    bump(&counter);
    return PyObject_CallNoArgs(cls);
}

static PyObject *counter_bump(PyObject *unused, PyObject *unused2) { return add(NULL, NULL); }

static PyMethodDef counter_methods[] = {
    {"add", counter_add, METH_NOARGS, NULL},
    {"make", counter_make, METH_CLASS | METH_NOARGS, NULL},
    {"bump", counter_bump, METH_STATIC | METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};
static PyMemberDef counter_members[] = {{"value", Py_T_LONG, offsetof(CounterObject, count), 0, NULL}, {NULL}};
static PyGetSetDef counter_getset[] = {{"count", counter_count, NULL, NULL, NULL}, {NULL, NULL, NULL, NULL, NULL}};
static PyType_Slot counter_slots[] = {
    {Py_tp_methods, counter_methods},
    {Py_tp_getset, counter_getset},
    {Py_tp_members, counter_members},
    {Py_tp_call, counter_call},
    {Py_tp_new, PyType_GenericNew},
    {0, NULL},
};
static PyType_Spec counter_spec = {"racy.Counter", sizeof(CounterObject), 0, Py_TPFLAGS_DEFAULT, counter_slots};

static PyType_Slot sealed_slots[] = {{Py_tp_methods, counter_methods}, {0, NULL}};
static PyType_Spec sealed_spec = {"Sealed", sizeof(CounterObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
                                  sealed_slots};

static PyTypeObject FrozenType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "racy.Frozen",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
};

static PyMethodDef methods[] = {
    {"add", add, METH_NOARGS, "Add one to the global counter, racily."},
    {"total", total, METH_NOARGS, NULL},
    {"reset", reset, METH_NOARGS, NULL},
    {"call", call, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static int exec_module(PyObject *module) {
    PyObject *type = PyType_FromModuleAndSpec(module, &counter_spec, NULL);
    if (type == NULL || PyModule_AddObjectRef(module, "Counter", type) < 0) {
        Py_XDECREF(type);
        return -1;
    }
    Py_DECREF(type);  /* the module holds it */
    if (PyModule_Add(module, "Sealed", PyType_FromModuleAndSpec(module, &sealed_spec, NULL)) < 0) return -1;
    if (PyType_Ready(&FrozenType) < 0 || PyModule_AddObjectRef(module, "Frozen", (PyObject *)&FrozenType) < 0)
        return -1;
    if (PyModule_Add(module, "_C_API", PyCapsule_New(&counter, "racy._C_API", NULL)) < 0) return -1;
    if (PyModule_Add(module, "buffer", PyMemoryView_FromMemory(memory, sizeof memory, PyBUF_WRITE)) < 0) return -1;
    PyObject *instance = PyObject_CallNoArgs(type);
    if (instance == NULL) return -1;
    int added = PyModule_Add(module, "bound_add", PyObject_GetAttrString(instance, "add"));
    Py_DECREF(instance);
    return added;
}

#ifdef SINGLE_PHASE
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "racy", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_racy(void) {
    PyObject *module = PyModule_Create(&def);
    if (module != NULL && exec_module(module) < 0) Py_CLEAR(module);
    return module;
}
#else
static PyModuleDef_Slot slots[] = {{Py_mod_exec, exec_module}, {0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "racy", NULL, 0, methods, slots, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_racy(void) { return PyModuleDef_Init(&def); }
#endif
