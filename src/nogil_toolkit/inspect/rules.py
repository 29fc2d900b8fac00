"""Combine the observations about one image into a verdict, strongest evidence first.

The order is the one from the design notes: the toolkit marker, then a verified slot
array, then the module's own ``PyModuleDef`` when it has no static slot array (``m_slots``
NULL, or a run-time array whose stores ``PyInit`` makes visibly), then the single-phase
``PyUnstable_Module_SetGIL`` import, then what the generator and the init style allow. The asymmetry is deliberate: a wrong ``NOT_USED`` silently
turns the GIL off under code that needs it, while a wrong ``UNKNOWN`` only costs a probe.
So ``NOT_USED`` needs direct evidence, and any doubt ends in ``UNKNOWN`` with a reason.
"""

from __future__ import annotations

from typing import FrozenSet, List, NamedTuple, Optional, Sequence, Tuple, Union

from nogil_toolkit.inspect.exporthook import FIRST_EXPORT_HOOK_VERSION, HookSlotArray
from nogil_toolkit.inspect.generators import (
    PYBIND11_FIRST_MULTI_PHASE_INTERNALS,
    Fingerprint,
    Generator,
)
from nogil_toolkit.inspect.initcode import CodeSlotArray, ModuleFactoryCall
from nogil_toolkit.inspect.slots import EmptySlotArray, ModuleDefinition, SlotArray
from nogil_toolkit.inspect.verdict import Evidence, EvidenceKind, Verdict
from nogil_toolkit.marker import Marker

SET_GIL = "PyUnstable_Module_SetGIL"
MODULE_DEF_INIT = "PyModuleDef_Init"
# What a PyInit_* function must call to hand CPython a module definition (multi-phase) ...
MULTI_PHASE_IMPORTS = frozenset({"PyModuleDef_Init", "PyModuleDef_Type"})
# ... or a finished module object (single-phase).
# PyO3 releases whose generated PyInit passes #[pymodule(gil_used = ...)] as a literal
# argument of ModuleDef::make_module (0.23 added the option; 0.28 writes a slot array).
PYO3_GIL_USED_ARGUMENT = ((0, 23), (0, 26))
SINGLE_PHASE_IMPORTS = frozenset({"PyModule_Create2", "PyModule_FromDefAndSpec2", "PyModule_New",
                                  "PyModule_NewObject", "_PyModule_CreateInitialized"})
# Every import the rules ask about: readers are asked for these, not for all imports.
RULE_IMPORTS = MULTI_PHASE_IMPORTS | SINGLE_PHASE_IMPORTS | {SET_GIL, MODULE_DEF_INIT}


class Observations(NamedTuple):
    """Everything the readers found, before any judgement."""

    init_symbols: Tuple[str, ...]
    module_name: Optional[str]
    """The module's own name (last part): from the caller's dotted name, else the file name."""
    imports: FrozenSet[str]
    """Those of :data:`RULE_IMPORTS` the file imports."""
    markers: Sequence[Marker]
    slot_arrays: Sequence[SlotArray]
    relocations_available: bool
    format: str
    fingerprint: Optional[Fingerprint]
    qualified_name: Optional[str] = None
    """The full dotted name the caller imports the file as, when it knows it."""
    module_definitions: Sequence[ModuleDefinition] = ()
    """Statically built ``PyModuleDef``s named like this module (gathered only when no slot
    array of this module was found)."""
    slots_may_be_set_at_run_time: bool = False
    """Gathered only when the module's definitions have ``m_slots`` NULL or point to an
    empty slot array: a
    ``{Py_mod_gil, Py_MOD_GIL_NOT_USED}`` entry occurs in the data outside every verified
    slot array, or the init function's code refers to the ``m_slots`` field; either way
    the NULL may be replaced before the definition is used."""
    code_slot_array: Union[CodeSlotArray, str, None] = None
    """The run-time slot array read from ``PyInit``'s stores, or why it could not be read
    (gathered only for pybind11 3 modules)."""
    module_factory_call: Union[ModuleFactoryCall, str, None] = None
    """The constant ``gil_used`` that PyO3's ``PyInit`` passes to ``make_module``, or why it
    could not be read (gathered only for PyO3 releases in :data:`PYO3_GIL_USED_ARGUMENT`)."""
    empty_slot_array: Union[EmptySlotArray, str, None] = None
    """The terminator-only slot array the module's definitions point to, or why it may be
    filled at run time (gathered only when the definitions have a non-NULL ``m_slots`` that
    is no verified slot array, outside pybind11 3)."""
    export_hook: Optional[str] = None
    """The ``PyModExport_*`` hook CPython 3.15+ calls instead of ``PyInit_*`` (set only then)."""
    hook_slot_array: Union[HookSlotArray, str, None] = None
    """The slot array the export hook returns, or why it could not be read exactly."""
    ignored_hooks: Tuple[str, ...] = ()
    """Export hooks the target CPython (before 3.15) does not look for."""


class Decision:
    """A verdict with its evidence; the generator's evidence is appended after the rule."""

    __slots__ = ("verdict", "evidence", "reason")

    def __init__(self, verdict: Verdict, evidence: Optional[List[Evidence]] = None, reason: Optional[str] = None):
        self.verdict = verdict
        self.evidence = evidence if evidence is not None else []
        self.reason = reason


def decide(facts: Observations) -> Decision:
    """Apply the evidence rules in order of strength."""
    if not facts.init_symbols:
        detail = "no exported PyInit_* function"
        if facts.ignored_hooks:
            version = ".".join(map(str, FIRST_EXPORT_HOOK_VERSION))
            detail += f"; {', '.join(facts.ignored_hooks)} is only looked for by CPython {version} and later (PEP 793)"
        return Decision(Verdict.NOT_A_MODULE, [Evidence(EvidenceKind.NO_INIT_EXPORT, detail)])
    if facts.export_hook is not None:
        decision = _from_markers(facts) or _from_export_hook(facts)
    else:
        decision = (_from_markers(facts) or _from_slots(facts) or _from_definition(facts)
                    or _from_set_gil(facts) or _from_init_style(facts))
    if facts.fingerprint is not None:
        decision.evidence.append(_generator_evidence(facts.fingerprint))
    return decision


def _from_markers(facts: Observations) -> Optional[Decision]:
    markers = _markers_for_module(facts)
    if not markers:
        return None
    declarations = {m.declaration for m in markers}
    evidence = [Evidence(EvidenceKind.MARKER,
                         f"nogil-toolkit {m.toolkit_version} marker for {m.module}: gil={m.declaration.value}",
                         m.offset) for m in markers]
    if len(declarations) > 1:
        return Decision(Verdict.UNKNOWN, evidence, "the toolkit markers in this file contradict each other")
    return Decision(Verdict.from_declaration(declarations.pop()), evidence + _slot_evidence(_arrays_for_module(facts)))


def _markers_for_module(facts: Observations) -> List[Marker]:
    """Markers that belong to this module (a library may carry several, e.g. linked in).

    A marker describes the shim compiled into the file, and that shim is the ``PyInit_`` the
    file exports, whatever package the file now sits in: a module copied or vendored under
    another package runs the same init and declares the same. So a marker counts when its
    last name part is the file's module name (or its one ``PyInit_`` export). Where several
    do, one naming exactly the caller's full dotted name wins.
    """
    names = {s.split("_", 1)[1] for s in facts.init_symbols}
    if facts.module_name in names:
        names = {facts.module_name}
    candidates = [m for m in facts.markers if m.module.rsplit(".", 1)[-1] in names]
    exact = [m for m in candidates if m.module == facts.qualified_name]
    return exact or candidates


def _slot_evidence(arrays: Sequence[SlotArray]) -> List[Evidence]:
    evidence = []
    for array in arrays:
        gil = array.gil
        if gil is None:
            evidence.append(Evidence(EvidenceKind.SLOT_ARRAY,
                                     f"module slot array at {array.address:#x}{_of(array)} has no Py_mod_gil slot",
                                     array.file_offset))
        else:
            evidence.append(Evidence(EvidenceKind.SLOT,
                                     f"slot array at {array.address:#x}{_of(array)} holds "
                                     f"{{Py_mod_gil, {gil.c_macro}}}", array.gil_entry_offset()))
    return evidence


def _of(array: SlotArray) -> str:
    return f" (PyModuleDef {array.module_name!r})"


def _from_slots(facts: Observations) -> Optional[Decision]:
    arrays = _arrays_for_module(facts)
    if not arrays:
        return None
    declared = {a.gil for a in arrays if a.gil is not None}
    evidence = _slot_evidence(sorted(arrays, key=lambda a: a.gil is None))
    if len(declared) > 1:
        return Decision(Verdict.UNKNOWN, evidence,
                        "module slot arrays in this file declare different Py_mod_gil values")
    if declared:
        if any(a.gil is None for a in arrays):
            return Decision(Verdict.UNKNOWN, evidence, "some module slot arrays declare Py_mod_gil and "
                                                       "others do not; cannot tell which belongs to this module")
        return Decision(Verdict.from_declaration(declared.pop()), evidence)
    if SET_GIL in facts.imports:
        return Decision(Verdict.UNKNOWN, evidence, f"a slot array without Py_mod_gil and an import of {SET_GIL}: "
                                                   "cannot tell which init path declares what")
    return Decision(Verdict.UNDECLARED, evidence)


def _from_export_hook(facts: Observations) -> Decision:
    """The slot array the export hook returns: CPython 3.15+ builds the module from it alone."""
    hook = facts.export_hook
    array = facts.hook_slot_array
    if not isinstance(array, HookSlotArray):
        return Decision(Verdict.UNKNOWN, [Evidence(EvidenceKind.EXPORT_HOOK, f"exports the PEP 793 hook {hook}, "
                                                   "which CPython 3.15+ calls instead of PyInit_*")],
                        array or f"the slot array {hook} returns could not be read")
    where = f"the slot array {hook} returns (at {array.address:#x})"
    gil = array.gil_slot
    if gil is None:
        return Decision(Verdict.UNDECLARED, [Evidence(EvidenceKind.SLOT_ARRAY, f"{where} has no Py_mod_gil slot",
                                                      array.file_offset)])
    declaration = array.gil
    assert declaration is not None
    flags = f", flags {gil.flags:#x}" if gil.flags else ""
    return Decision(Verdict.from_declaration(declaration), [Evidence(
        EvidenceKind.SLOT, f"{where} holds {{Py_mod_gil (id {gil.slot}{flags}), {declaration.c_macro}}}",
        array.gil_entry_offset())])


def own_arrays(arrays: Sequence[SlotArray], module_name: Optional[str]) -> List[SlotArray]:
    """The slot arrays whose ``PyModuleDef.m_name`` is ``module_name`` (possibly dotted)."""
    if not module_name:
        return []
    return [a for a in arrays if a.module_name == module_name or a.module_name.endswith("." + module_name)]


def _arrays_for_module(facts: Observations) -> Sequence[SlotArray]:
    """The slot arrays whose ``PyModuleDef.m_name`` is this module's, if any are; else all.

    A library can hold several module definitions (test modules, submodules); the one
    named like the file is the one the import system will create.
    """
    own = own_arrays(facts.slot_arrays, facts.module_name)
    if own:
        return own
    if facts.module_definitions:
        # The module's own definition exists and has no static slot array: other
        # modules' arrays in the same file say nothing about it.
        return []
    return facts.slot_arrays


def _from_definition(facts: Observations) -> Optional[Decision]:
    """The module's own ``PyModuleDef`` when it has no static slot array.

    ``m_slots`` NULL in a multi-phase module means there is no slot array at all, so no
    ``Py_mod_gil`` slot: CPython enables the GIL. ``m_slots`` pointing to memory filled at
    run time is decided by the stores ``PyInit`` makes, when they could be read.
    """
    definitions = facts.module_definitions
    if not definitions or MODULE_DEF_INIT not in facts.imports:
        return None
    if all(d.m_slots is None for d in definitions):
        if SET_GIL in facts.imports or facts.slots_may_be_set_at_run_time:
            return None
        names = ", ".join(sorted({repr(d.module_name) for d in definitions}))
        return Decision(Verdict.UNDECLARED, [Evidence(
            EvidenceKind.SLOT_ARRAY,
            f"multi-phase init (imports {MODULE_DEF_INIT}) and the module's PyModuleDef {names} has "
            "m_slots NULL: there is no slot array, so no Py_mod_gil slot",
            definitions[0].file_offset)])
    empty = facts.empty_slot_array
    if isinstance(empty, EmptySlotArray):
        if SET_GIL in facts.imports or facts.slots_may_be_set_at_run_time:
            return None
        names = ", ".join(sorted({repr(d.module_name) for d in definitions}))
        where = "zero-filled memory" if empty.zero_filled else "the file"
        return Decision(Verdict.UNDECLARED, [Evidence(
            EvidenceKind.SLOT_ARRAY,
            f"multi-phase init (imports {MODULE_DEF_INIT}) and the module's PyModuleDef {names} points m_slots "
            f"to {empty.address:#x} in {where}, which holds only the terminator {{0, NULL}}: no Py_mod_gil slot",
            empty.file_offset)])
    code = facts.code_slot_array
    if not isinstance(code, CodeSlotArray):
        return None
    if code.has_gil_slot:
        if code.gil_value != 1:
            return None  # pybind11 only ever stores Py_MOD_GIL_NOT_USED; anything else is unverified
        return Decision(Verdict.NOT_USED, [Evidence(
            EvidenceKind.SLOT,
            f"the init function stores {{Py_mod_gil, Py_MOD_GIL_NOT_USED}} into the module's run-time "
            f"slot array at {code.address:#x}", code.gil_store_offset)])
    slots = ", ".join(str(slot) for slot, _ in code.entries)
    return Decision(Verdict.UNDECLARED, [Evidence(
        EvidenceKind.SLOT_ARRAY,
        f"the init function fills the module's run-time slot array at {code.address:#x} with slots "
        f"[{slots}] and no Py_mod_gil")])


def _from_set_gil(facts: Observations) -> Optional[Decision]:
    if SET_GIL not in facts.imports:
        return None
    evidence = [Evidence(EvidenceKind.SET_GIL_IMPORT, f"imports {SET_GIL} (single-phase declaration)")]
    call = facts.module_factory_call
    if isinstance(call, ModuleFactoryCall):
        value = "true" if call.gil_used else "false"
        return Decision(Verdict.USED if call.gil_used else Verdict.NOT_USED, [Evidence(
            EvidenceKind.INIT_CODE,
            f"PyInit passes the module's definition and gil_used={value} to PyO3's ModuleDef::make_module "
            f"(call at {call.call_address:#x})", call.setter_offset)] + evidence)
    runtime_choice = _runtime_set_gil_generator(facts.fingerprint)
    if runtime_choice is not None:
        if isinstance(call, str):
            runtime_choice += f" (reading PyInit's code: {call})"
        return Decision(Verdict.UNKNOWN, evidence, runtime_choice)
    return Decision(Verdict.NOT_USED, evidence)


def _runtime_set_gil_generator(fp: Optional[Fingerprint]) -> Optional[str]:
    """Why a ``SetGIL`` import proves nothing for this generator, or ``None`` if it does."""
    if fp is None or fp.generator is Generator.NANOBIND:
        return None
    if fp.generator is Generator.CYTHON:
        return (f"Cython in single-phase mode calls {SET_GIL} with Py_MOD_GIL_USED or NOT_USED; "
                "the value is not visible without disassembly")
    if fp.generator is Generator.PYBIND11:
        return (f"pybind11 imports {SET_GIL} on every free-threaded build and calls it only when "
                "py::mod_gil_not_used() is given, a run-time flag")
    version = f" {fp.version}" if fp.version else ""
    return f"PyO3{version} calls {SET_GIL} with a value read at run time from #[pymodule(gil_used = ...)]"


def passes_gil_used(fp: Optional[Fingerprint]) -> bool:
    """Whether ``fp`` is a PyO3 release whose ``PyInit`` passes ``gil_used`` as a constant."""
    if fp is None or fp.generator is not Generator.PYO3 or fp.version is None:
        return False
    parts = fp.version.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return False
    low, high = PYO3_GIL_USED_ARGUMENT
    return low <= (int(parts[0]), int(parts[1])) <= high


def _from_init_style(facts: Observations) -> Decision:
    multi = bool(facts.imports & MULTI_PHASE_IMPORTS)
    single = bool(facts.imports & SINGLE_PHASE_IMPORTS)
    fp = facts.fingerprint
    if multi:
        evidence = [Evidence(EvidenceKind.INIT_STYLE, "multi-phase init (imports PyModuleDef_Init) "
                                                      "but no static module slot array was found")]
        return Decision(Verdict.UNKNOWN, evidence, _why_no_slots(facts, fp))
    if single:
        evidence = [Evidence(EvidenceKind.INIT_STYLE,
                             f"single-phase init (imports {', '.join(sorted(facts.imports & SINGLE_PHASE_IMPORTS))}) "
                             f"and no {SET_GIL} import")]
        return Decision(Verdict.UNDECLARED, evidence)
    return Decision(Verdict.UNKNOWN, [], "neither a module slot array nor a module-creation import was "
                                         "found; the init function's style is not recognisable")


def _why_no_slots(facts: Observations, fp: Optional[Fingerprint]) -> str:
    if not facts.relocations_available:
        return f"slot arrays cannot be verified in this {facts.format} binary (no relocation reader for it)"
    if fp is not None and fp.generator is Generator.PYBIND11 and (fp.major or 0) >= PYBIND11_FIRST_MULTI_PHASE_INTERNALS:
        detail = ""
        if isinstance(facts.code_slot_array, str):
            detail = f" (reading the init function's stores: {facts.code_slot_array})"
        elif isinstance(facts.code_slot_array, CodeSlotArray):
            detail = " (the init function stores an unexpected Py_mod_gil value)"
        return f"pybind11 3.x fills its module slot array at run time; its declaration is not in the file{detail}"
    if fp is not None and fp.generator is Generator.NANOBIND:
        return "nanobind allocates its module slot array at run time; its declaration is not in the file"
    if isinstance(facts.empty_slot_array, str):
        return facts.empty_slot_array
    if isinstance(facts.empty_slot_array, EmptySlotArray) and facts.slots_may_be_set_at_run_time:
        return ("the module's slot array holds only its terminator in the file, but a {Py_mod_gil, "
                "Py_MOD_GIL_NOT_USED} entry lies elsewhere in the data: a slot array may be installed at run time")
    if facts.module_definitions and facts.slots_may_be_set_at_run_time:
        return ("the module's PyModuleDef has m_slots NULL in the file, but the init function stores into "
                "it or a {Py_mod_gil, Py_MOD_GIL_NOT_USED} entry lies elsewhere in the data: the slot array "
                "may be installed at run time")
    return "the module's slot array is built at run time or could not be verified"


def _generator_evidence(fp: Fingerprint) -> Evidence:
    version = f" {fp.version}" if fp.version else ""
    return Evidence(EvidenceKind.GENERATOR, f"generated by {fp.generator.value}{version} (found {fp.evidence!r})",
                    fp.offset)
