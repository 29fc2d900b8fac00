/* Test fixture: what CPython 3.15's headers provide for the export hook (PEP 793) and slot
 * arrays (PEP 820), spelled out from the 3.15 documentation (Doc/c-api/slots.rst,
 * Doc/c-api/extension-modules.rst) and Include/slots.h, Include/slots_generated.h, for
 * compiling against an older interpreter's headers where no 3.15 interpreter exists. It also
 * claims PY_VERSION_HEX 3.15, so that version-guarded code (the toolkit's shim) compiles its
 * 3.15 branch. Not a module to import: only the export hook is called, through ctypes. */
#ifndef NOGIL_TEST_PY315_COMPAT_H
#define NOGIL_TEST_PY315_COMPAT_H
#include <Python.h>
#include <stdint.h>

#if PY_VERSION_HEX < 0x030F0000
#undef PY_VERSION_HEX
#define PY_VERSION_HEX 0x030F00F0

typedef struct PySlot {
    uint16_t sl_id;
    uint16_t sl_flags;
    union {
        uint32_t sl_reserved;
    };
    union {
        void *sl_ptr;
        void (*sl_func)(void);
        Py_ssize_t sl_size;
        int64_t sl_int64;
        uint64_t sl_uint64;
    };
} PySlot;

#define PySlot_OPTIONAL 0x0001
#define PySlot_STATIC 0x0002
#define PySlot_INTPTR 0x0004

#define Py_slot_end 0
#define Py_slot_subslots 92
#define Py_mod_slots 94

/* 3.15 gives the four module slots of 3.5-3.14 new ids and keeps reading the old ones. */
#define _Py_SLOT_COMPAT_VALUE(OLD, NEW) NEW
#undef Py_mod_exec
#undef Py_mod_gil
#define Py_mod_exec _Py_SLOT_COMPAT_VALUE(2, 85)
#define Py_mod_gil _Py_SLOT_COMPAT_VALUE(4, 87)

#define PySlot_DATA(NAME, VALUE) {.sl_id = (NAME), .sl_flags = PySlot_INTPTR, .sl_ptr = (void *)(VALUE)}
#define PySlot_STATIC_DATA(NAME, VALUE) {.sl_id = (NAME), .sl_flags = PySlot_STATIC, .sl_ptr = (VALUE)}
#define PySlot_END {0}

#define PyMODEXPORT_FUNC __attribute__((visibility("default"))) PySlot *
#endif
#endif
