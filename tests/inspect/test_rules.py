"""The evidence rules on their own, one rule per test, from hand-made observations."""

from __future__ import annotations

from typing import Optional

from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.inspect import EvidenceKind, Verdict
from nogil_toolkit.inspect.generators import Fingerprint, Generator
from nogil_toolkit.inspect.rules import SET_GIL, Observations, decide
from nogil_toolkit.inspect.slots import PY_MOD_EXEC, PY_MOD_GIL, SlotArray, SlotEntry
from nogil_toolkit.marker import Marker


def _array(gil: Optional[int], name: str = "mod", address: int = 0x4000) -> SlotArray:
    entries = [SlotEntry(PY_MOD_EXEC, 0x1234, True)]
    if gil is not None:
        entries.append(SlotEntry(PY_MOD_GIL, gil, False))
    return SlotArray(address, address, 16, tuple(entries), address + 0x100, name)


def _facts(**overrides) -> Observations:
    values = dict(init_symbols=("PyInit_mod",), module_name="mod", imports=frozenset(), markers=[],
                  slot_arrays=[], relocations_available=True, format="elf", fingerprint=None)
    values.update(overrides)
    return Observations(**values)


def _fp(generator: Generator, version: Optional[str] = None) -> Fingerprint:
    return Fingerprint(generator, version, generator.value, 0)


def test_no_init_symbol_is_not_a_module():
    assert decide(_facts(init_symbols=())).verdict is Verdict.NOT_A_MODULE


def test_marker_beats_contradicting_static_slots():
    marker = Marker("pkg.mod", GilDeclaration.NOT_USED, "0.1.0", 10)
    decision = decide(_facts(markers=[marker], slot_arrays=[_array(0)]))
    assert decision.verdict is Verdict.NOT_USED
    assert [e.kind for e in decision.evidence][:2] == [EvidenceKind.MARKER, EvidenceKind.SLOT]


def test_marker_of_another_module_is_ignored():
    marker = Marker("pkg.other", GilDeclaration.NOT_USED, "0.1.0", 10)
    assert decide(_facts(markers=[marker], imports=frozenset({"PyModule_Create2"}))).verdict is Verdict.UNDECLARED


def test_contradicting_markers_are_unknown():
    markers = [Marker("mod", GilDeclaration.NOT_USED, "0.1.0"), Marker("mod", GilDeclaration.USED, "0.1.0")]
    decision = decide(_facts(markers=markers))
    assert decision.verdict is Verdict.UNKNOWN and decision.reason


def test_slot_value_decides():
    assert decide(_facts(slot_arrays=[_array(1)])).verdict is Verdict.NOT_USED
    assert decide(_facts(slot_arrays=[_array(0)])).verdict is Verdict.USED
    assert decide(_facts(slot_arrays=[_array(None)])).verdict is Verdict.UNDECLARED


def test_the_module_own_definition_wins_over_others():
    arrays = [_array(None, "helper", 0x1000), _array(1, "pkg.mod", 0x2000)]
    assert decide(_facts(slot_arrays=arrays)).verdict is Verdict.NOT_USED


def test_mixed_definitions_without_a_name_match_are_unknown():
    arrays = [_array(None, "a", 0x1000), _array(1, "b", 0x2000)]
    assert decide(_facts(slot_arrays=arrays)).verdict is Verdict.UNKNOWN


def test_set_gil_import_declares_for_hand_written_code():
    decision = decide(_facts(imports=frozenset({SET_GIL, "PyModule_Create2"})))
    assert decision.verdict is Verdict.NOT_USED
    assert decision.evidence[0].kind is EvidenceKind.SET_GIL_IMPORT


def test_set_gil_import_proves_nothing_for_run_time_choosers():
    for generator in (Generator.PYBIND11, Generator.PYO3, Generator.CYTHON):
        decision = decide(_facts(imports=frozenset({SET_GIL}), fingerprint=_fp(generator)))
        assert decision.verdict is Verdict.UNKNOWN, generator
        assert generator.value.lower() in decision.reason.lower()


def test_nanobind_calls_set_gil_only_when_free_threaded():
    decision = decide(_facts(imports=frozenset({SET_GIL}), fingerprint=_fp(Generator.NANOBIND)))
    assert decision.verdict is Verdict.NOT_USED


def test_multi_phase_without_static_slots_is_unknown():
    for fp in (None, _fp(Generator.PYBIND11, "v11"), _fp(Generator.NANOBIND)):
        decision = decide(_facts(imports=frozenset({"PyModuleDef_Init"}), fingerprint=fp))
        assert decision.verdict is Verdict.UNKNOWN and decision.reason


def test_unverifiable_format_says_so():
    decision = decide(_facts(imports=frozenset({"PyModuleDef_Init"}), relocations_available=False, format="macho"))
    assert decision.verdict is Verdict.UNKNOWN and "macho" in decision.reason


def test_single_phase_without_set_gil_is_undeclared():
    decision = decide(_facts(imports=frozenset({"PyModule_Create2"})))
    assert decision.verdict is Verdict.UNDECLARED


def test_unrecognisable_init_is_unknown():
    assert decide(_facts()).verdict is Verdict.UNKNOWN


def test_generator_evidence_is_appended_last():
    decision = decide(_facts(slot_arrays=[_array(1)], fingerprint=_fp(Generator.CYTHON, "3.1.2")))
    assert decision.evidence[-1].kind is EvidenceKind.GENERATOR
    assert "cython 3.1.2" in decision.evidence[-1].detail


def test_verdicts_map_to_what_cpython_does():
    assert Verdict.NOT_USED.declaration is GilDeclaration.NOT_USED
    assert Verdict.USED.declaration is Verdict.UNDECLARED.declaration is GilDeclaration.USED
    assert Verdict.UNKNOWN.declaration is Verdict.NOT_A_MODULE.declaration is None


def _definition(m_slots: Optional[int] = None, name: str = "mod"):
    from nogil_toolkit.inspect.slots import ModuleDefinition
    return ModuleDefinition(0x5000, 0x5020, m_slots, name, 0x4020, 8)


def test_multi_phase_definition_without_slots_is_undeclared():
    facts = _facts(imports=frozenset({"PyModuleDef_Init"}), module_definitions=[_definition()])
    decision = decide(facts)
    assert decision.verdict is Verdict.UNDECLARED
    assert decision.evidence[0].kind is EvidenceKind.SLOT_ARRAY and "m_slots NULL" in decision.evidence[0].detail


def test_definition_without_slots_needs_multi_phase_init():
    # Single-phase modules keep their own rules (here: PyModule_Create2 without SetGIL).
    facts = _facts(imports=frozenset({"PyModule_Create2"}), module_definitions=[_definition()])
    assert decide(facts).evidence[0].kind is EvidenceKind.INIT_STYLE
    with_set_gil = _facts(imports=frozenset({"PyModuleDef_Init", SET_GIL}), module_definitions=[_definition()])
    assert decide(with_set_gil).verdict is not Verdict.UNDECLARED


def test_definition_without_slots_that_may_be_patched_is_unknown():
    facts = _facts(imports=frozenset({"PyModuleDef_Init"}), module_definitions=[_definition()],
                   slots_may_be_set_at_run_time=True)
    decision = decide(facts)
    assert decision.verdict is Verdict.UNKNOWN and "run time" in decision.reason


def test_own_definition_hides_other_modules_arrays():
    # A NOT_USED array of another module in the same file says nothing about this one.
    facts = _facts(imports=frozenset({"PyModuleDef_Init"}), module_definitions=[_definition()],
                   slot_arrays=[_array(1, name="pkg.helper")])
    assert decide(facts).verdict is Verdict.UNDECLARED


def test_run_time_slot_array_decides_only_for_a_known_value():
    from nogil_toolkit.inspect.initcode import CodeSlotArray
    pybind = _fp(Generator.PYBIND11, "v11")

    def verdict(entries) -> Verdict:
        code = CodeSlotArray(0x9000, tuple(entries), None)
        return decide(_facts(imports=frozenset({"PyModuleDef_Init"}), fingerprint=pybind,
                             module_definitions=[_definition(0x9000)], code_slot_array=code)).verdict

    assert verdict([(2, None), (4, 1)]) is Verdict.NOT_USED
    assert verdict([(2, None), (3, 0)]) is Verdict.UNDECLARED
    assert verdict([(2, None), (4, 0)]) is Verdict.UNKNOWN  # pybind11 never stores USED: unverified
    assert verdict([(2, None), (4, None)]) is Verdict.UNKNOWN
    failed = decide(_facts(imports=frozenset({"PyModuleDef_Init"}), fingerprint=pybind,
                           module_definitions=[_definition(0x9000)], code_slot_array="entry 0 is odd"))
    assert failed.verdict is Verdict.UNKNOWN and "entry 0 is odd" in failed.reason


def test_marker_follows_the_init_and_the_full_name_breaks_ties():
    marker = Marker("pkg.mod", GilDeclaration.NOT_USED, "0.1.0", 10)
    single = frozenset({"PyModule_Create2"})
    assert decide(_facts(markers=[marker], imports=single, qualified_name="pkg.mod")).verdict is Verdict.NOT_USED
    # The file moved to another package: its PyInit_mod is still the shim the marker describes.
    assert decide(_facts(markers=[marker], imports=single, qualified_name="other.mod")).verdict is Verdict.NOT_USED
    # A marker for another init says nothing about this module.
    other = _facts(markers=[marker], imports=single, qualified_name="pkg.other", module_name="other",
                   init_symbols=("PyInit_other",))
    assert decide(other).verdict is Verdict.UNDECLARED
    # Two markers for an init of this name: the one naming the caller's module decides.
    vendored = Marker("vendor.mod", GilDeclaration.USED, "0.1.0", 90)
    assert decide(_facts(markers=[vendored, marker], imports=single, qualified_name="pkg.mod")).verdict \
        is Verdict.NOT_USED
    assert decide(_facts(markers=[vendored, marker], imports=single, qualified_name="vendor.mod")).verdict \
        is Verdict.USED


def test_marker_falls_back_to_the_last_part_without_a_package():
    marker = Marker("pkg.mod", GilDeclaration.NOT_USED, "0.1.0", 10)
    assert decide(_facts(markers=[marker])).verdict is Verdict.NOT_USED


def test_terminator_only_slot_array_is_undeclared_unless_it_may_be_filled():
    from nogil_toolkit.inspect.slots import EmptySlotArray
    multi = frozenset({"PyModuleDef_Init"})
    empty = EmptySlotArray(0x6000, None, True)
    facts = _facts(imports=multi, module_definitions=[_definition(0x6000)], empty_slot_array=empty)
    decision = decide(facts)
    assert decision.verdict is Verdict.UNDECLARED and "only the terminator" in decision.evidence[0].detail
    patched = _facts(imports=multi, module_definitions=[_definition(0x6000)], empty_slot_array=empty,
                     slots_may_be_set_at_run_time=True)
    assert decide(patched).verdict is Verdict.UNKNOWN
    filled = _facts(imports=multi, module_definitions=[_definition(0x6000)], empty_slot_array="code fills it")
    decision = decide(filled)
    assert decision.verdict is Verdict.UNKNOWN and decision.reason == "code fills it"


def test_pyo3_constant_decides_only_for_releases_that_pass_it():
    from nogil_toolkit.inspect.initcode import ModuleFactoryCall
    from nogil_toolkit.inspect.rules import passes_gil_used
    assert [passes_gil_used(_fp(Generator.PYO3, v)) for v in ("0.22.6", "0.23.0", "0.26.0", "0.27.1", None)] == \
        [False, True, True, False, False]
    assert not passes_gil_used(_fp(Generator.CYTHON, "0.26.0"))
    pyo3 = _fp(Generator.PYO3, "0.26.0")
    for gil_used, verdict in ((False, Verdict.NOT_USED), (True, Verdict.USED)):
        facts = _facts(imports=frozenset({SET_GIL}), fingerprint=pyo3,
                       module_factory_call=ModuleFactoryCall(gil_used, 0x100, 0x2000))
        decision = decide(facts)
        assert decision.verdict is verdict and decision.evidence[0].kind is EvidenceKind.INIT_CODE
    unread = decide(_facts(imports=frozenset({SET_GIL}), fingerprint=pyo3, module_factory_call="one helper deeper"))
    assert unread.verdict is Verdict.UNKNOWN and "one helper deeper" in unread.reason
