"""The three modes on real compiled modules in a free-threaded interpreter: what loads, what is
refused before its file is opened, what warns (once), what ``-W`` does, and what is reported
when the GIL is turned on anyway."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from guard_support import MAPPED, Modules, run_guarded

from support import REPO

SRC = REPO / "src"

pytestmark = pytest.mark.freethreaded

CATEGORY = "nogil_toolkit.guard.UndeclaredModuleWarning"

# Records every warning with its category, module and message, and prints them as JSON at exit.
RECORD = """
import atexit, json, sys, warnings
seen = []
warnings.simplefilter("always")
_shown = warnings.showwarning
def _record(message, category, filename, lineno, file=None, line=None):
    seen.append([category.__name__, str(message)])
    _shown(message, category, filename, lineno, file, line)
warnings.showwarning = _record
"""


def test_declared_modules_load_and_the_gil_stays_off(ft_python: str, guard_modules: Modules, cache: Path) -> None:
    result = run_guarded(ft_python, RECORD + """
import declared, declared_b
print(json.dumps({"answer": declared.answer(), "gil": sys._is_gil_enabled(), "warnings": seen}))
""", mode="nogil", modules=guard_modules, cache=cache)
    assert result.returncode == 0, result.stderr
    assert result.data == {"answer": 42, "gil": False, "warnings": []}
    assert result.stderr == ""


def test_nogil_refuses_an_undeclared_module_before_its_file_is_opened(ft_python: str, guard_modules: Modules,
                                                                     cache: Path, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    result = run_guarded(ft_python, f"""
import json, os, sys
from nogil_toolkit.guard import GilRequiredImportError
try:
    import sideeffect
except GilRequiredImportError as exc:
    error = {{"type": type(exc).__name__, "name": exc.name, "path": exc.path, "status": exc.status,
             "distribution": exc.distribution, "evidence": exc.evidence, "message": str(exc)}}
print(json.dumps({{"error": error, "pid": os.getpid(), "gil": sys._is_gil_enabled(), "mapped": {MAPPED},
                  "in_modules": "sideeffect" in sys.modules}}))
""", mode="nogil", modules=guard_modules, cache=cache, env={"GUARD_FIXTURE_MARKS": str(marks)})
    assert result.returncode == 0, result.stderr
    data = result.data
    error = data["error"]
    assert error["type"] == "GilRequiredImportError"
    assert (error["name"], error["path"]) == ("sideeffect", str(guard_modules.path("sideeffect")))
    assert error["status"] == "needs-gil" and error["distribution"] is None
    assert "declares nothing about the GIL" in error["evidence"]
    assert "nogil-toolkit run --allow 'sideeffect=REASON'" in error["message"]
    assert "[tool.nogil.check] allow" in error["message"]
    # Nothing of the module ran in the guarded process: neither its constructor (at dlopen)
    # nor its init; the dynamic loader never mapped it; the GIL is still off.
    assert not [m for m in os.listdir(marks) if m.endswith(f".{data['pid']}")]
    assert str(guard_modules.path("sideeffect")) not in data["mapped"]
    assert data["gil"] is False and data["in_modules"] is False


def test_every_way_of_loading_is_guarded(ft_python: str, guard_modules: Modules, cache: Path, tmp_path: Path) -> None:
    """import, importlib.import_module from a folder added at run time, an explicit
    ExtensionFileLoader, and a custom loader calling _imp.create_dynamic itself."""
    late = tmp_path / "late"
    late.mkdir()
    (late / guard_modules.path("legacy_d").name).symlink_to(guard_modules.path("legacy_d"))
    result = run_guarded(ft_python, f"""
import _imp, importlib, importlib.machinery, importlib.util, json, sys
from nogil_toolkit.guard import GilRequiredImportError
outcomes = {{}}
def attempt(label, load):
    try:
        load()
        outcomes[label] = "loaded"
    except GilRequiredImportError as exc:
        outcomes[label] = "refused " + exc.name
def explicit():
    loader = importlib.machinery.ExtensionFileLoader("legacy_b", {str(guard_modules.path("legacy_b"))!r})
    spec = importlib.util.spec_from_file_location("legacy_b", loader.path, loader=loader)
    importlib.util.module_from_spec(spec)
def custom():
    spec = importlib.machinery.ModuleSpec("legacy_c", None, origin={str(guard_modules.path("legacy_c"))!r})
    _imp.create_dynamic(spec)
attempt("import", lambda: __import__("legacy_a"))
sys.path.append({str(late)!r})
attempt("runtime path", lambda: importlib.import_module("legacy_d"))
attempt("explicit loader", explicit)
attempt("custom loader", custom)
attempt("declared", lambda: importlib.import_module("declared"))
print(json.dumps({{"outcomes": outcomes, "gil": sys._is_gil_enabled(), "mapped": {MAPPED}}}))
""", mode="nogil", modules=guard_modules, cache=cache)
    assert result.returncode == 0, result.stderr
    assert result.data["outcomes"] == {"import": "refused legacy_a", "runtime path": "refused legacy_d",
                                       "explicit loader": "refused legacy_b", "custom loader": "refused legacy_c",
                                       "declared": "loaded"}
    assert result.data["gil"] is False
    assert not [f for f in result.data["mapped"] if "legacy" in f]


def test_unsafe_nogil_warns_once_per_module_and_keeps_the_gil_off(ft_python: str, guard_modules: Modules,
                                                                    cache: Path) -> None:
    result = run_guarded(ft_python, RECORD + f"""
import importlib, importlib.machinery, importlib.util
import declared, legacy_a, legacy_b
del sys.modules["legacy_a"]
importlib.import_module("legacy_a")
loader = importlib.machinery.ExtensionFileLoader("legacy_b", {str(guard_modules.path("legacy_b"))!r})
importlib.util.module_from_spec(importlib.util.spec_from_file_location("legacy_b", loader.path, loader=loader))
print(json.dumps({{"gil": sys._is_gil_enabled(), "warnings": seen, "answer": legacy_a.answer()}}))
""", mode="unsafe-nogil", modules=guard_modules, cache=cache, env={"PYTHON_GIL": "0"})
    assert result.returncode == 0, result.stderr
    data = result.data
    assert data["gil"] is False and data["answer"] == 42
    assert [w[0] for w in data["warnings"]] == ["UndeclaredModuleWarning"] * 2
    assert data["warnings"][0][1].startswith("legacy_a has not declared that it can run without the GIL")
    assert data["warnings"][1][1].startswith("legacy_b has not declared")
    assert "NOGIL_MODE=unsafe-nogil" in data["warnings"][0][1]


@pytest.mark.parametrize(("options", "env", "warned"), [
    (["-W", f"ignore::{CATEGORY}"], {}, []),
    ([], {"PYTHONWARNINGS": f"ignore::{CATEGORY}"}, []),
    (["-W", f"ignore::{CATEGORY}:legacy_a"], {}, ["legacy_b"]),
    ([], {"PYTHONWARNINGS": "ignore:::legacy_b"}, ["legacy_a"]),
    ([], {}, ["legacy_a", "legacy_b"]),
], ids=["-W category", "PYTHONWARNINGS category", "-W category:module", "PYTHONWARNINGS module", "no filter"])
def test_warning_filters_silence_by_category_or_module(ft_python: str, guard_modules: Modules, cache: Path,
                                                       options: list[str], env: dict[str, str],
                                                       warned: list[str]) -> None:
    result = run_guarded(ft_python, "import declared, legacy_a, legacy_b, sys; print(sys._is_gil_enabled())",
                         mode="unsafe-nogil", modules=guard_modules, cache=cache, args=options,
                         env={"PYTHON_GIL": "0", **env})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    shown = [line.split(": ")[2].split()[0] for line in result.stderr.splitlines() if "UndeclaredModuleWarning" in line]
    assert shown == warned
    assert "Invalid -W option" not in result.stderr  # the run folder makes the category importable early


def test_W_error_turns_the_warning_into_a_refusal_before_loading(ft_python: str, guard_modules: Modules,
                                                                 cache: Path) -> None:
    result = run_guarded(ft_python, f"""
import json, sys
try:
    import legacy_a
    outcome = "loaded"
except Warning as exc:
    outcome = type(exc).__name__
print(json.dumps({{"outcome": outcome, "mapped": {MAPPED}}}))
""", mode="unsafe-nogil", modules=guard_modules, cache=cache, args=["-W", f"error::{CATEGORY}"],
        env={"PYTHON_GIL": "0"})
    assert result.returncode == 0, result.stderr
    assert result.data["outcome"] == "UndeclaredModuleWarning"
    assert not [f for f in result.data["mapped"] if "legacy_a" in f]


def test_allowlist_from_environment_and_project_and_the_gil_turning_on_is_reported(
        ft_python: str, guard_modules: Modules, cache: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.nogil.check]\nallow = { "legacy_b" = "audited: one lock" }\n')
    result = run_guarded(ft_python, RECORD + """
import declared, legacy_a, legacy_b
from nogil_toolkit.guard import GilRequiredImportError
try:
    import legacy_c
    refused = None
except GilRequiredImportError as exc:
    refused = exc.name
print(json.dumps({"gil": sys._is_gil_enabled(), "warnings": seen, "refused": refused}))
""", mode="nogil", modules=guard_modules, cache=cache, cwd=project,
        env={"NOGIL_ALLOW": "legacy_a=vendored, read-only", "NOGIL_PROJECT": str(project)})
    assert result.returncode == 0, result.stderr
    data = result.data
    assert data["refused"] == "legacy_c"
    # Both allowed modules loaded; the first turned the GIL on (the policy accepted that), and
    # the guard says so once, naming it, beside CPython's own warning.
    assert data["gil"] is True
    ours = [w for w in data["warnings"] if w[0] == "GilEnabledWarning"]
    assert len(ours) == 1
    assert ours[0][1].startswith("loading legacy_a turned the GIL on for the rest of the process")
    assert "allowed by the policy: vendored, read-only" in ours[0][1]


def test_project_policy_defaults_to_the_current_directory(ft_python: str, guard_modules: Modules, cache: Path,
                                                         tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.nogil.check]\nallow = { "legacy_*" = "audited" }\n')
    result = run_guarded(ft_python, "import legacy_a, legacy_b, sys; print(sys._is_gil_enabled())",
                         mode="unsafe-nogil", modules=guard_modules, cache=cache, cwd=tmp_path,
                         env={"PYTHON_GIL": "0", "NOGIL_PROJECT": None})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert "UndeclaredModuleWarning" not in result.stderr


def test_a_project_file_nested_too_deeply_is_ignored_and_the_policy_still_enforced(
        ft_python: str, guard_modules: Modules, cache: Path, tmp_path: Path) -> None:
    """A hostile pyproject.toml in the working directory (a 6 kB file of brackets) once made
    the guard fail to start, which left nogil mode unenforced."""
    (tmp_path / "pyproject.toml").write_text("x = " + "[" * 3000 + "]" * 3000 + "\n")
    result = run_guarded(ft_python, "import declared, sys; print(sys._is_gil_enabled())\nimport legacy_c",
                         mode="nogil", modules=guard_modules, cache=cache, cwd=tmp_path, env={"NOGIL_PROJECT": None})
    assert result.returncode != 0
    assert result.stdout.strip() == "False"
    assert "GilRequiredImportError" in result.stderr and "legacy_c" in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: nogil-toolkit guard: invalid pyproject.toml: pyproject.toml is not valid TOML: "
                        f"arrays or inline tables nested too deeply to read ({tmp_path / 'pyproject.toml'}) "
                        f"(NOGIL_PROJECT={tmp_path}); ignored"]


def test_gil_mode_checks_nothing(ft_python: str, guard_modules: Modules, cache: Path) -> None:
    result = run_guarded(ft_python, """
import json, sys, legacy_a
print(json.dumps({"gil": sys._is_gil_enabled(), "guard": [m for m in sys.modules if m.startswith("nogil_toolkit.guard.")]}))
""", mode="gil", modules=guard_modules, cache=cache, env={"PYTHON_GIL": "1"})
    assert result.returncode == 0, result.stderr
    assert result.data["gil"] is True
    assert "nogil_toolkit.guard.verdict" not in result.data["guard"]  # no judge was installed
    assert not list(cache.glob("check-env-*.json"))
    assert result.stderr == ""


@pytest.mark.parametrize(("mode", "env", "message"), [
    ("bogus", {}, "NOGIL_MODE='bogus' is not a mode (expected gil, nogil, unsafe-nogil, serialize); the import guard is off"),
    ("unsafe-nogil", {}, "NOGIL_MODE=unsafe-nogil needs PYTHON_GIL=0 (or -X gil=0) when Python starts"),
    ("nogil", {"PYTHON_GIL": "1"}, "NOGIL_MODE=nogil but the GIL is already on (PYTHON_GIL=1 or -X gil=1)"),
    ("gil", {}, "NOGIL_MODE=gil but the GIL is off: start Python with PYTHON_GIL=1"),
])
def test_a_combination_that_cannot_work_is_explained_in_one_line(ft_python: str, cache: Path, mode: str,
                                                                 env: dict[str, str], message: str) -> None:
    result = run_guarded(ft_python, "pass", mode=mode, modules=None, cache=cache, env=env)
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("warning: nogil-toolkit guard: ") and message in lines[0]


def test_isolated_interpreters_ignore_nogil_mode(ft_python: str, guard_modules: Modules, cache: Path) -> None:
    """Like PYTHON_GIL, NOGIL_MODE is not read under -E/-I (the guard's own probes run so)."""
    result = run_guarded(ft_python, "import sys; print([m for m in sys.modules if 'nogil' in m])", mode="nogil",
                         modules=guard_modules, cache=cache, args=["-E"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_gil_build_says_the_guard_cannot_apply(cache: Path) -> None:
    from support import gil_python

    python = gil_python(13)
    assert python is not None, "CPython 3.13 (GIL build) is provisioned on this machine"
    result = run_guarded(python, "pass", mode="nogil", modules=None, cache=cache)
    assert result.returncode == 0
    assert result.stderr.count("\n") == 1
    assert "NOGIL_MODE=nogil needs a free-threaded CPython" in result.stderr


def test_nothing_is_imported_when_nogil_mode_is_unset(ft_python: str, cache: Path) -> None:
    result = run_guarded(ft_python, "import sys; print(sorted(m for m in sys.modules if 'nogil' in m))", mode=None,
                         modules=None, cache=cache)
    assert result.stdout.strip() == "['_nogil_toolkit_guard']"


def test_relative_and_symlinked_paths_use_the_real_files_cache_entries(ft_python: str, guard_modules: Modules,
                                                                      cache: Path, tmp_path: Path) -> None:
    (tmp_path / "linked").symlink_to(guard_modules.folder, target_is_directory=True)
    code = """
import json, sys
spawned = []
sys.addaudithook(lambda event, args: spawned.append(event) if event == "os.posix_spawn" else None)
sys.path.insert(0, "linked")
import declared
print(json.dumps({"spawned": len(spawned), "file": declared.__file__}))
"""
    first = run_guarded(ft_python, code, mode="nogil", modules=None, cache=cache, cwd=tmp_path)
    second = run_guarded(ft_python, code, mode="nogil", modules=None, cache=cache, cwd=tmp_path)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "/linked/" in first.data["file"] and first.data["spawned"] >= 1
    assert second.data["spawned"] == 0
    [cache_file] = cache.glob("check-env-*.json")
    assert str(guard_modules.path("declared")) in json.loads(cache_file.read_text())["files"]


def test_an_abi3_file_is_refused_as_unloadable(ft_python: str, guard_modules: Modules, cache: Path,
                                               tmp_path: Path) -> None:
    """Free-threaded 3.13 still finds ``.abi3.so`` files but cannot load them (abi.classify)."""
    import shutil

    shutil.copy(guard_modules.path("declared"), tmp_path / "declared.abi3.so")
    result = run_guarded(ft_python, f"""
import json, sys
sys.path.insert(0, {str(tmp_path)!r})
from nogil_toolkit.guard import GilRequiredImportError
try:
    import declared
except GilRequiredImportError as exc:
    print(json.dumps({{"status": exc.status, "message": str(exc).splitlines()[0]}}))
""", mode="nogil", modules=None, cache=cache)
    assert result.returncode == 0, result.stderr
    assert result.data["status"] == "wrong-abi"
    assert result.data["message"].startswith("nogil mode refuses to import declared: this interpreter cannot load it")


def test_in_process_install_and_uninstall(ft_python: str, guard_modules: Modules, cache: Path) -> None:
    result = run_guarded(ft_python, f"""
import json, sys
sys.path.insert(0, {str(SRC)!r})
import nogil_toolkit.guard as guard
guard.install("nogil", guard.GuardPolicy([("legacy_a", "audited")]), cache_dir={str(cache)!r})
outcome = {{"mode": guard.active_mode()}}
import declared
try:
    import legacy_b
except guard.GilRequiredImportError:
    outcome["legacy_b"] = "refused"
guard.uninstall()
outcome["after"] = guard.active_mode()
import legacy_b
outcome["gil"] = sys._is_gil_enabled()
print(json.dumps(outcome))
""", mode=None, modules=guard_modules, cache=cache)
    assert result.returncode == 0, result.stderr
    assert result.data == {"mode": "nogil", "legacy_b": "refused", "after": None, "gil": True}
