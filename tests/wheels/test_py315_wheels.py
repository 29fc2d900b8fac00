"""Wheels for CPython 3.15: export-hook modules judged by the versions the tags admit, and
abi3t (PEP 803) tags and suffixes in ``wheel verify`` and ``wheel select``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest
from packaging.tags import parse_tag
from py315_support import build_hook_module, host_platform_tag, include_dir
from support import require_gil_python
from wheel.wheelfile import WheelFile

from nogil_toolkit.__main__ import main
from nogil_toolkit.wheel.select import explain_unsupported, query_target_tags

PLATFORM = host_platform_tag()


@pytest.fixture(scope="module")
def binaries(tmp_path_factory: pytest.TempPathFactory, ft_python: str) -> Dict[str, bytes]:
    out = tmp_path_factory.mktemp("hook-binaries")
    include = include_dir(ft_python)
    variants = {"not_used": ("PYSLOT_NOT_USED",), "no_gil": ("PYSLOT_NO_GIL",),
                "both": ("PYSLOT_NO_GIL", "WITH_PYINIT")}
    return {label: build_hook_module(out / label, "_speed", ".so", include, *defines).read_bytes()
            for label, defines in variants.items()}


def make_wheel(out: Path, tag: str, files: Dict[str, bytes]) -> Path:
    """A wheel of project ``hooked`` with ``files``; RECORD written by ``wheel``'s WheelFile."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"hooked-1.0-{tag}.whl"
    tags = "".join(f"Tag: {t}\n" for t in sorted(map(str, parse_tag(tag))))
    with WheelFile(path, "w") as wheel:
        wheel.writestr("hooked-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: hooked\nVersion: 1.0\n")
        wheel.writestr("hooked-1.0.dist-info/WHEEL", f"Wheel-Version: 1.0\nGenerator: tests\n"
                                                     f"Root-Is-Purelib: false\n{tags}")
        wheel.writestr("hooked/__init__.py", b"")
        for name, data in files.items():
            wheel.writestr(name, data)
    return path


def command(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, Dict[str, Any]]:
    code = main(["wheel", *map(str, args), "--format", "json"])
    (document,) = json.loads(capsys.readouterr().out)["wheels"]
    return code, document


def verdicts(document: Dict[str, Any]) -> Dict[str, Any]:
    return {m["member"]: m["inspection"]["verdict"] for m in document["modules"]}


def test_hook_module_in_an_abi3t_wheel_passes_and_counts_as_a_module(capsys, binaries, tmp_path) -> None:
    wheel = make_wheel(tmp_path, f"cp315-abi3t-{PLATFORM}", {"hooked/_speed.abi3t.so": binaries["not_used"]})
    code, document = command(capsys, "verify", wheel)
    assert code == 0 and document["findings"] == []
    code, document = command(capsys, "inspect", wheel)
    assert verdicts(document) == {"hooked/_speed.abi3t.so": "not-used"}


def test_hook_without_gil_slot_fails_an_abi3t_wheel(capsys, binaries, tmp_path) -> None:
    wheel = make_wheel(tmp_path, f"cp315-abi3t-{PLATFORM}", {"hooked/_speed.abi3t.so": binaries["no_gil"]})
    code, document = command(capsys, "verify", wheel)
    assert code == 1
    assert [(f["claim"], f["severity"]) for f in document["findings"]] == [("tag", "error")]
    assert "declares nothing" in document["findings"][0]["message"]


def test_hook_only_file_in_a_313t_wheel_is_no_module(capsys, binaries, tmp_path) -> None:
    member = "hooked/_speed.cpython-313t-x86_64-linux-gnu.so"
    wheel = make_wheel(tmp_path, f"cp313-cp313t-{PLATFORM}", {member: binaries["no_gil"]})
    code, document = command(capsys, "inspect", wheel)
    assert verdicts(document) == {member: "not-a-module"}
    code, document = command(capsys, "verify", wheel)
    assert code == 0 and document["findings"] == []


def test_versions_on_both_sides_of_315_that_disagree_give_unknown(capsys, binaries, tmp_path) -> None:
    # cp312-abi3 reaches 3.12-3.14 (PyInit_: Py_MOD_GIL_NOT_USED) and 3.15+ (hook: no gil slot).
    member = "hooked/_speed.abi3.so"
    wheel = make_wheel(tmp_path, f"cp312-abi3-{PLATFORM}", {member: binaries["both"]})
    _, document = command(capsys, "inspect", wheel)
    (module,) = document["modules"]
    assert module["inspection"]["verdict"] == "unknown"
    assert "CPython before 3.15: not-used; CPython 3.15+: undeclared" in module["inspection"]["reason"]
    # A version-specific tag settles it: 3.15 calls the hook.
    wheel = make_wheel(tmp_path / "t", f"cp315-cp315t-{PLATFORM}", {"hooked/_speed.cpython-315t-x86_64-linux-gnu.so":
                                                                      binaries["both"]})
    _, document = command(capsys, "inspect", wheel)
    assert [m["inspection"]["verdict"] for m in document["modules"]] == ["undeclared"]


def test_abi3t_file_serves_gil_builds_from_315_only(capsys, binaries, tmp_path) -> None:
    member = "hooked/_speed.abi3t.so"
    both = make_wheel(tmp_path / "a", f"cp315-abi3.abi3t-{PLATFORM}", {member: binaries["not_used"]})
    code, document = command(capsys, "verify", both)
    assert code == 0 and document["findings"] == []
    early = make_wheel(tmp_path / "b", f"cp312-abi3.abi3t-{PLATFORM}", {member: binaries["not_used"]})
    code, document = command(capsys, "verify", early)
    assert code == 1
    claims = [(f["claim"], f["severity"]) for f in document["findings"]]
    assert claims == [("tag", "warning"), ("tag", "error"), ("suffix", "error")]
    warning, unknown, suffix = (f["message"] for f in document["findings"])
    assert "abi3t modules load on CPython 3.15 and later" in warning
    # The hook-only module is no module at all for 3.12-3.14, which the tags admit too.
    assert "CPython before 3.15: not-a-module; CPython 3.15+: not-used" in unknown
    assert "which CPython loads from 3.15 on, but the wheel is tagged cp312-abi3" in suffix


def test_abi3_file_in_an_abi3t_wheel_names_what_315t_loads(capsys, binaries, tmp_path) -> None:
    wheel = make_wheel(tmp_path, f"cp315-abi3t-{PLATFORM}", {"hooked/_speed.abi3.so": binaries["not_used"]})
    code, document = command(capsys, "verify", wheel)
    assert code == 1
    (finding,) = document["findings"]
    assert finding["claim"] == "suffix" and "3.15t only imports abi3t" in finding["message"]


def test_select_explains_abi3_and_abi3t_mismatches(ft_python: str) -> None:
    free_threaded = query_target_tags(ft_python)
    reason = explain_unsupported(frozenset(parse_tag(f"cp312-abi3-{PLATFORM}")), free_threaded)
    assert "from 3.15 on it loads the free-threaded stable ABI, abi3t (PEP 803)" in reason
    gil = query_target_tags(require_gil_python(13))
    reason = explain_unsupported(frozenset(parse_tag(f"cp313-abi3t-{PLATFORM}")), gil)
    assert reason.startswith("abi3t ABI not supported by CPython 3.13 (")
    assert "a CPython with the GIL installs a wheel's abi3 tag" in reason
    # packaging's gap, which ``wheel verify`` warns about: it offers abi3t to 3.13t, which has
    # no ".abi3t.so" suffix to load such a module with.
    assert any(t.abi == "abi3t" and t.interpreter == "cp313" for t in free_threaded.tags)
