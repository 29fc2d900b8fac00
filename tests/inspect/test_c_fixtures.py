"""Verdicts for modules compiled from C here, each confirmed by a real 3.13t import."""

from __future__ import annotations

import struct

import pytest

from nogil_toolkit.inspect import EvidenceKind, Verdict, inspect_binary

EXPECTED = {
    "multi_not_used": Verdict.NOT_USED,
    "multi_used": Verdict.USED,
    "multi_none": Verdict.UNDECLARED,
    "multi_not_used_O0": Verdict.NOT_USED,
    "multi_not_used_O3": Verdict.NOT_USED,
    "multi_not_used_relr": Verdict.NOT_USED,
    "multi_none_relr": Verdict.UNDECLARED,
    "const_slots": Verdict.NOT_USED,
    "single_setgil": Verdict.NOT_USED,
    "single_setgil_O0": Verdict.NOT_USED,
    "single_plain": Verdict.UNDECLARED,
    "decoy": Verdict.UNDECLARED,
    "marker": Verdict.NOT_USED,
    "plainlib": Verdict.NOT_A_MODULE,
    "multi_not_used_stripped": Verdict.NOT_USED,
    "multi_none_stripped": Verdict.UNDECLARED,
    "single_setgil_stripped": Verdict.NOT_USED,
    "multi_not_used_O3_stripped": Verdict.NOT_USED,
    "gil_multi_not_used": Verdict.NOT_USED,
    "gil_multi_none": Verdict.UNDECLARED,
    # PyUnstable_Module_SetGIL only exists with Py_GIL_DISABLED: the GIL build cannot declare.
    "gil_single_setgil": Verdict.UNDECLARED,
    # Multi-phase with m_slots NULL: no slot array at all, so no Py_mod_gil slot.
    "multi_null_slots": Verdict.UNDECLARED,
    "multi_null_slots_dotted": Verdict.UNDECLARED,
    "multi_null_slots_O0": Verdict.UNDECLARED,
    "multi_null_slots_O3": Verdict.UNDECLARED,
    "multi_null_slots_stripped": Verdict.UNDECLARED,
    # The slot array holds only its terminator {0, NULL}: in .bss (no bytes in the file) or in
    # read-only data. No Py_mod_gil slot.
    "empty_slots": Verdict.UNDECLARED,
    "empty_slots_const": Verdict.UNDECLARED,
    # No section headers at all (sstrip): everything is read through PT_LOAD and PT_DYNAMIC.
    "multi_not_used_no_sections": Verdict.NOT_USED,
    "multi_none_no_sections": Verdict.UNDECLARED,
    "single_setgil_no_sections": Verdict.NOT_USED,
    "multi_null_slots_no_sections": Verdict.UNDECLARED,
    "empty_slots_no_sections": Verdict.UNDECLARED,
}
# m_slots NULL in the file but set before use: these declare NOT_USED, which static reading
# cannot see, so they must be UNKNOWN (never UNDECLARED, let alone a guess of NOT_USED).
# The .bss slot array that PyInit fills (as pybind11 3 does) is empty only in the file. The
# marker lives in its own section, which a file without section headers no longer names, and
# what remains (m_slots NULL, patched by PyInit) cannot be decided.
PATCHED = ("patched_in_init", "patched_elsewhere", "empty_slots_filled", "marker_no_sections")
DECIDING_KIND = {
    "multi_not_used": EvidenceKind.SLOT,
    "multi_used": EvidenceKind.SLOT,
    "multi_none": EvidenceKind.SLOT_ARRAY,
    "const_slots": EvidenceKind.SLOT,
    "single_setgil": EvidenceKind.SET_GIL_IMPORT,
    "single_plain": EvidenceKind.INIT_STYLE,
    "decoy": EvidenceKind.INIT_STYLE,
    "marker": EvidenceKind.MARKER,
    "plainlib": EvidenceKind.NO_INIT_EXPORT,
    "multi_null_slots": EvidenceKind.SLOT_ARRAY,
    "multi_null_slots_dotted": EvidenceKind.SLOT_ARRAY,
    "empty_slots": EvidenceKind.SLOT_ARRAY,
    "empty_slots_const": EvidenceKind.SLOT_ARRAY,
    "multi_not_used_no_sections": EvidenceKind.SLOT,
    "multi_none_no_sections": EvidenceKind.SLOT_ARRAY,
    "single_setgil_no_sections": EvidenceKind.SET_GIL_IMPORT,
    "multi_null_slots_no_sections": EvidenceKind.SLOT_ARRAY,
    "empty_slots_no_sections": EvidenceKind.SLOT_ARRAY,
}


@pytest.mark.parametrize("label", sorted(EXPECTED))
def test_static_verdict(c_modules, label):
    module = c_modules[label]
    report = inspect_binary(module.path)
    assert report.verdict is EXPECTED[label], report
    assert report.format == "elf" and report.machine == "x86_64"
    if label in DECIDING_KIND:
        assert report.evidence[0].kind is DECIDING_KIND[label], report.evidence
    if report.verdict is not Verdict.NOT_A_MODULE:
        assert report.init_symbols == (f"PyInit_{module.name}",)


def test_slot_evidence_points_at_the_gil_entry(c_modules):
    module = c_modules["multi_not_used"]
    report = inspect_binary(module.path)
    slot = report.evidence[0]
    data = module.path.read_bytes()
    # The entry at the reported offset is {Py_mod_gil (4), padding, (void *)1}.
    assert data[slot.offset:slot.offset + 16] == (4).to_bytes(4, "little") + bytes(4) + (1).to_bytes(8, "little")
    assert "'multi_not_used'" in slot.detail


def test_decoy_bytes_are_present_but_ignored(c_modules):
    data = c_modules["decoy"].path.read_bytes()
    assert (4).to_bytes(4, "little") + bytes(4) + (1).to_bytes(8, "little") + bytes(16) in data
    report = inspect_binary(c_modules["decoy"].path)
    assert report.verdict is Verdict.UNDECLARED
    assert all(e.kind not in (EvidenceKind.SLOT, EvidenceKind.SLOT_ARRAY) for e in report.evidence)


# Built against the free-threaded headers, so the 3.13t interpreter can import them.
IMPORTABLE = sorted(label for label in EXPECTED if not label.startswith("gil_") and label != "plainlib")


@pytest.mark.parametrize("label", IMPORTABLE)
def test_static_verdict_agrees_with_import(c_modules, probe, label):
    module = c_modules[label]
    assert module.importable
    declared = probe(module.path, module.name).declared_not_used(module.name)
    assert declared is not None, "probe was inconclusive"
    assert declared == (EXPECTED[label] is Verdict.NOT_USED)
    assert declared == (inspect_binary(module.path).verdict is Verdict.NOT_USED)


@pytest.mark.parametrize("label, verdict", [("not_used", Verdict.NOT_USED), ("used", Verdict.USED)])
def test_32bit_elf(fake32_modules, label, verdict):
    report = inspect_binary(fake32_modules[label])
    assert (report.machine, report.verdict) == ("i386", verdict), report


def test_marker_evidence_points_into_the_file(c_modules):
    module = c_modules["marker"]
    report = inspect_binary(module.path)
    marker = report.evidence[0]
    assert marker.kind is EvidenceKind.MARKER and report.generator == "nogil-toolkit"
    data = module.path.read_bytes()
    assert data[marker.offset:].startswith(b"nogil-toolkit-declaration:1;module=pkg.marker_mod;gil=not-used")


@pytest.mark.parametrize("label", PATCHED)
def test_slots_set_at_run_time_are_unknown(c_modules, probe, label):
    module = c_modules[label]
    report = inspect_binary(module.path)
    assert report.verdict is Verdict.UNKNOWN and report.reason, report
    assert probe(module.path, module.name).declared_not_used(module.name) is True


def test_null_slots_evidence_names_the_definition(c_modules):
    report = inspect_binary(c_modules["multi_null_slots_dotted"].path)
    assert "'pkg.multi_null_dotted'" in report.evidence[0].detail and "m_slots NULL" in report.evidence[0].detail
    data = c_modules["multi_null_slots_dotted"].path.read_bytes()
    assert data[report.evidence[0].offset:report.evidence[0].offset + 8] == bytes(8)


def test_files_without_section_headers_have_none(c_modules):
    """The ``*_no_sections`` fixtures really lack section headers (and still import, above)."""
    for label in (label for label in c_modules if label.endswith("_no_sections")):
        data = c_modules[label].path.read_bytes()
        assert struct.unpack_from("<QHHH", data, 0x28)[0] == 0 and data[0x3C:0x40] == bytes(4), label
        assert len(data) < c_modules[label[:-len("_no_sections")]].path.stat().st_size


def test_empty_slot_array_evidence(c_modules):
    in_bss = inspect_binary(c_modules["empty_slots"].path).evidence[0]
    assert "zero-filled memory" in in_bss.detail and in_bss.offset is None
    in_file = inspect_binary(c_modules["empty_slots_const"].path).evidence[0]
    data = c_modules["empty_slots_const"].path.read_bytes()
    assert "in the file" in in_file.detail and data[in_file.offset:in_file.offset + 16] == bytes(16)
    filled = inspect_binary(c_modules["empty_slots_filled"].path)
    assert "may be filled at run time" in (filled.reason or ""), filled


def test_marker_follows_the_init_the_file_exports(c_modules):
    """The marker says ``pkg.marker_mod``. The same file under another package still runs the
    init that marker describes (its ``PyInit_marker_mod``), so the marker still decides; a
    marker naming another init does not."""
    path = c_modules["marker"].path
    assert inspect_binary(path, module="pkg.marker_mod").evidence[0].kind is EvidenceKind.MARKER
    moved = inspect_binary(path, module="elsewhere.marker_mod")
    assert moved.evidence[0].kind is EvidenceKind.MARKER and moved.verdict is Verdict.NOT_USED
