
/* The module also defines the 3.15 export hook (PEP 793), which CPython prefers over
 * ${init}: its sources are compiled with -D${hook}=${hook_alias}, and this ${hook} returns a
 * copy of the original's slot array with {Py_mod_gil, ${macro}} in place of any Py_mod_gil
 * entry (nested Py_slot_subslots and Py_mod_slots arrays included). Before 3.15 no file is
 * loaded through the hook, so nothing here is compiled there. */
#if PY_VERSION_HEX >= 0x030F0000

#if defined(__GNUC__) && !defined(_WIN32) && !defined(__CYGWIN__) && !defined(__APPLE__)
__attribute__((visibility("hidden")))
#endif
extern PySlot *${hook_alias}(void);

/* 3.15 renumbered Py_mod_gil (PEP 820) and still reads the old id: both are taken from the
 * headers' own _Py_SLOT_COMPAT_VALUE(OLD, NEW). The entry this file adds uses the id the
 * headers give this build. (Redefining the macro is safe here: nothing below it in this file
 * needs the build's own choice, which nogil_toolkit_gil_id keeps.) */
static const uint16_t nogil_toolkit_gil_id = Py_mod_gil;
#if defined(_Py_SLOT_COMPAT_VALUE)
#undef _Py_SLOT_COMPAT_VALUE
#define _Py_SLOT_COMPAT_VALUE(OLD, NEW) OLD
static const uint16_t nogil_toolkit_gil_old_id = Py_mod_gil;
#undef _Py_SLOT_COMPAT_VALUE
#define _Py_SLOT_COMPAT_VALUE(OLD, NEW) NEW
static const uint16_t nogil_toolkit_gil_new_id = Py_mod_gil;
#else
static const uint16_t nogil_toolkit_gil_old_id = Py_mod_gil;
static const uint16_t nogil_toolkit_gil_new_id = Py_mod_gil;
#endif

/* The copy, published once. A compare-and-swap of one pointer needs no lock and no Python
 * API: the hook runs before CPython has read Py_mod_gil, so it must not rely on the GIL
 * (free-threaded builds), may run in any subinterpreter, and may run in several threads at
 * once. A thread that loses the race frees its copy and returns the winner's, so every call
 * in the process returns the same array (re-imports and subinterpreters included). */
static PySlot *nogil_toolkit_hook_slots = NULL;

#if defined(_MSC_VER)
#include <intrin.h>
static PySlot *nogil_toolkit_load(void)
{
    return (PySlot *)_InterlockedCompareExchangePointer((void *volatile *)&nogil_toolkit_hook_slots, NULL, NULL);
}
static PySlot *nogil_toolkit_publish(PySlot *slots)
{
    PySlot *seen = (PySlot *)_InterlockedCompareExchangePointer(
        (void *volatile *)&nogil_toolkit_hook_slots, slots, NULL);
    return seen == NULL ? slots : seen;
}
#else
static PySlot *nogil_toolkit_load(void)
{
    return __atomic_load_n(&nogil_toolkit_hook_slots, __ATOMIC_ACQUIRE);
}
static PySlot *nogil_toolkit_publish(PySlot *slots)
{
    PySlot *expected = NULL;
    if (__atomic_compare_exchange_n(&nogil_toolkit_hook_slots, &expected, slots, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        return slots;
    }
    return expected;
}
#endif

static int
nogil_toolkit_is_gil(int id)
{
    return id == nogil_toolkit_gil_old_id || id == nogil_toolkit_gil_new_id;
}

#if defined(Py_mod_slots)
/* A Py_mod_slots entry points at a PyModuleDef_Slot array. */
static PyModuleDef_Slot *
nogil_toolkit_copy_def_slots(const PyModuleDef_Slot *old)
{
    size_t count = 0, kept = 0, i;
    PyModuleDef_Slot *slots;

    while (old[count].slot != 0) {
        count++;
    }
    slots = (PyModuleDef_Slot *)calloc(count + 1, sizeof(PyModuleDef_Slot));
    if (slots == NULL) {
        return NULL;
    }
    for (i = 0; i < count; i++) {
        if (!nogil_toolkit_is_gil(old[i].slot)) {
            slots[kept++] = old[i];
        }
    }
    return slots;
}
#endif

static void
nogil_toolkit_free_slots(PySlot *slots)
{
    size_t i;
    for (i = 0; slots[i].sl_id != Py_slot_end; i++) {
#if defined(Py_slot_subslots)
        if (slots[i].sl_id == Py_slot_subslots) {
            nogil_toolkit_free_slots((PySlot *)slots[i].sl_ptr);
        }
#endif
#if defined(Py_mod_slots)
        if (slots[i].sl_id == Py_mod_slots) {
            free(slots[i].sl_ptr);
        }
#endif
    }
    free(slots);
}

/* A copy of `old` without Py_mod_gil entries, nested arrays copied alike; `room` spare
 * zeroed entries before the terminator (calloc leaves the terminator in place). */
static PySlot *
nogil_toolkit_copy_slots(const PySlot *old, size_t room)
{
    size_t count = 0, kept = 0, i;
    PySlot *slots;

    while (old[count].sl_id != Py_slot_end) {
        count++;
    }
    slots = (PySlot *)calloc(count + room + 1, sizeof(PySlot));
    if (slots == NULL) {
        return NULL;
    }
    for (i = 0; i < count; i++) {
        PySlot slot = old[i];
        if (nogil_toolkit_is_gil(slot.sl_id)) {
            continue;
        }
#if defined(Py_slot_subslots)
        if (slot.sl_id == Py_slot_subslots && slot.sl_ptr != NULL) {
            slot.sl_ptr = nogil_toolkit_copy_slots((const PySlot *)slot.sl_ptr, 0);
            if (slot.sl_ptr == NULL) {
                nogil_toolkit_free_slots(slots);
                return NULL;
            }
        }
#endif
#if defined(Py_mod_slots)
        if (slot.sl_id == Py_mod_slots && slot.sl_ptr != NULL) {
            slot.sl_ptr = nogil_toolkit_copy_def_slots((const PyModuleDef_Slot *)slot.sl_ptr);
            if (slot.sl_ptr == NULL) {
                nogil_toolkit_free_slots(slots);
                return NULL;
            }
        }
#endif
        slots[kept++] = slot;
    }
    return slots;
}

PyMODEXPORT_FUNC ${hook}(void);  /* a prototype, for builds with -Wmissing-prototypes -Werror */

PyMODEXPORT_FUNC
${hook}(void)
{
    PySlot *original, *slots;
    size_t end = 0;

    (void)*(volatile const char *)nogil_toolkit_marker;
    /* Called every time: its own checks (PyABIInfo_Check) and errors stay as they are. */
    original = ${hook_alias}();
    if (original == NULL) {
        return NULL;
    }
    slots = nogil_toolkit_load();
    if (slots != NULL) {
        return slots;
    }
    slots = nogil_toolkit_copy_slots(original, 1);
    if (slots == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    while (slots[end].sl_id != Py_slot_end) {
        end++;
    }
    slots[end].sl_id = nogil_toolkit_gil_id;
    slots[end].sl_flags = PySlot_INTPTR;
    slots[end].sl_ptr = (void *)${macro};
    original = nogil_toolkit_publish(slots);
    if (original != slots) {
        nogil_toolkit_free_slots(slots);
    }
    return original;
}
#endif
