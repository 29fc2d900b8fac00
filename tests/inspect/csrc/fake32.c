/* Freestanding 32-bit imitation of a multi-phase module (no 32-bit libc or Python here):
 * the same PyModuleDef layout and slot ids, linked with `ld -m elf_i386 -shared`. */
typedef struct { int slot; void *value; } Slot;
typedef struct {
    void *ob_refcnt, *ob_type, *m_init, *m_index, *m_copy;
    const char *m_name, *m_doc; long m_size; void *m_methods; Slot *m_slots;
    void *m_traverse, *m_clear, *m_free;
} Def;
extern void *PyModuleDef_Init(Def *);
static int exec_module(void *m) { return 0; }
static Slot slots[] = {{2, (void *)exec_module}, {4, GIL_VALUE}, {0, 0}};
static Def def = {0, 0, 0, 0, 0, "fake32", 0, 0, 0, slots, 0, 0, 0};
__attribute__((visibility("default"))) void *PyInit_fake32(void) { return PyModuleDef_Init(&def); }
