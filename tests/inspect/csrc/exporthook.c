/* A CPython 3.15 module defined by a PEP 793 export hook, built against the 3.13t headers.
 *
 * The 3.13 headers know neither the hook nor PEP 820's PySlot, so this file spells out what
 * CPython 3.15's Include/slots.h and Include/slots_generated.h define (written here, not
 * copied): a PySlot entry is {uint16_t id; uint16_t flags; uint32_t reserved (0); an 8-byte
 * union of pointer, function pointer, size}; flag INTPTR is 0x4; the 3.15 ids of
 * Py_mod_exec and Py_mod_gil are 85 and 87 (their pre-3.15 ids 2 and 4 stay valid);
 * Py_mod_name is 100; Py_MOD_GIL_NOT_USED is (void *)1; an entry with id 0 ends the array.
 *
 * Variants (one -D each):
 *   DEFSLOT_NOT_USED  the PyModuleDef_Slot form with {Py_mod_gil, Py_MOD_GIL_NOT_USED}
 *   PYSLOT_NOT_USED   the PySlot form, as PySlot_DATA(Py_mod_gil, Py_MOD_GIL_NOT_USED) writes it
 *   PYSLOT_NO_GIL     the PySlot form without a Py_mod_gil slot
 *   WITH_PYINIT       also export PyInit_<name>, whose definition declares Py_MOD_GIL_NOT_USED
 *   RUNTIME_CHOICE    the hook picks one of two arrays at run time (not readable statically)
 */
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

#define EXPORT_HOOK_VISIBLE __attribute__((visibility("default")))
#define JOIN2(a, b) a##b
#define JOIN(a, b) JOIN2(a, b)
#define HOOK JOIN(PyModExport_, MODNAME)

typedef struct {
    uint16_t sl_id;
    uint16_t sl_flags;
    uint32_t sl_reserved;
    union {
        void *sl_ptr;
        void (*sl_func)(void);
        Py_ssize_t sl_size;
    } value;
} Fixture315Slot;

enum {
    FIXTURE_SLOT_INTPTR = 0x4,
    FIXTURE_MOD_EXEC_315 = 85,
    FIXTURE_MOD_GIL_315 = 87,
    FIXTURE_MOD_NAME = 100,
};

static int module_exec(PyObject *module) { return PyModule_AddIntConstant(module, "answer", 42); }

#if defined(DEFSLOT_NOT_USED)
static PyModuleDef_Slot hook_slots[] = {
    {Py_mod_exec, (void *)module_exec},
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
    {0, NULL},
};
#else
static Fixture315Slot hook_slots[] = {
    {.sl_id = FIXTURE_MOD_NAME, .sl_flags = FIXTURE_SLOT_INTPTR, .value.sl_ptr = (void *)MODNAME_STR},
    {.sl_id = FIXTURE_MOD_EXEC_315, .value.sl_func = (void (*)(void))module_exec},
#if defined(PYSLOT_NOT_USED)
    {.sl_id = FIXTURE_MOD_GIL_315, .sl_flags = FIXTURE_SLOT_INTPTR, .value.sl_ptr = (void *)1},
#endif
    {.sl_id = 0},
};
#endif

#ifdef RUNTIME_CHOICE
static Fixture315Slot other_slots[] = {
    {.sl_id = FIXTURE_MOD_GIL_315, .sl_flags = FIXTURE_SLOT_INTPTR, .value.sl_ptr = (void *)1},
    {.sl_id = 0},
};
#endif

EXPORT_HOOK_VISIBLE void *HOOK(void);

EXPORT_HOOK_VISIBLE void *HOOK(void)
{
#ifdef RUNTIME_CHOICE
    return getenv("FIXTURE_OTHER_SLOTS") ? (void *)other_slots : (void *)hook_slots;
#else
    return hook_slots;
#endif
}

#ifdef WITH_PYINIT
static PyModuleDef_Slot init_slots[] = {
    {Py_mod_exec, (void *)module_exec},
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
    {0, NULL},
};

static struct PyModuleDef def = {
    PyModuleDef_HEAD_INIT, MODNAME_STR, NULL, 0, NULL, init_slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PYINIT(void) { return PyModuleDef_Init(&def); }
#endif
