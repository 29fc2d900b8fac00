"""``nogil-check-env`` against real free-threaded venvs holding real modules: wheels built by
the plugin, modules compiled for the wrong ABI, a shadowed copy, an unreadable binary."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from nogil_toolkit.main_check_env import main
from nogil_toolkit.report import load_schema
from support import install, make_venv, run, site_packages

pytestmark = pytest.mark.freethreaded

MULTI_PHASE_C = """
#include <Python.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "%(name)s", NULL, 0, NULL};
PyMODINIT_FUNC PyInit_%(name)s(void) { return PyModuleDef_Init(&def); }
"""


def compile_module(python: str, name: str, out: Path, limited_api: bool = False) -> Path:
    include = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"]).stdout.strip()
    source = out.with_suffix(".c")
    source.write_text(("#define Py_LIMITED_API 0x03090000\n" if limited_api else "") + MULTI_PHASE_C % {"name": name})
    run(["cc", "-shared", "-fPIC", f"-I{include}", source, "-o", out])
    source.unlink()
    return out


@pytest.fixture(scope="module")
def populated(ft_python: str, ft_abi: tuple[str, str], ft_sample_wheels: dict[str, Path],
              tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the samples installed plus files this interpreter cannot load or import."""
    from support import gil_python
    venv = make_venv(ft_python, tmp_path_factory.mktemp("populated") / "venv")
    install(venv, ft_sample_wheels["spine"], ft_sample_wheels["explicit_false"])
    site = site_packages(venv)
    gil313 = gil_python(13)
    assert gil313, "a GIL build of CPython 3.13 is needed to build a wrong-ABI module"
    compile_module(gil313, "gilmod", site / "gilmod.cpython-313-x86_64-linux-gnu.so")
    compile_module(gil313, "stable", site / "stable.abi3.so", limited_api=True)
    shutil.copy(site / "spine" / f"_single{ft_abi[1]}", site / "spine" / "_single.so")
    return venv


@pytest.fixture(scope="module")
def clean(ft_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with nothing compiled in it."""
    return make_venv(ft_python, tmp_path_factory.mktemp("clean") / "venv")


@pytest.fixture(scope="module")
def folders(populated: Path, ft_abi: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Extra folders, each holding one kind of module, for --path."""
    base = tmp_path_factory.mktemp("folders")
    site = site_packages(populated)
    needs = base / "needs" / "efalse"
    needs.mkdir(parents=True)
    shutil.copy(site / "efalse" / f"_claims{ft_abi[1]}", needs)
    junk = base / "junk" / "broken"
    junk.mkdir(parents=True)
    (junk / f"_junk{ft_abi[1]}").write_bytes(b"\x7fELF\x02\x01\x01" + random.Random(7).randbytes(3000))
    return {"needs": base / "needs", "junk": base / "junk"}


def check(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_json(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str | os.PathLike[str]) -> dict[str, Any]:
    code, out, _ = check(capsys, *args, "--format", "json", "--no-project", "--cache-dir", tmp_path / "cache")
    document = json.loads(out)
    jsonschema.validate(document, load_schema())
    assert document["result"]["exit_code"] == code
    return document


def statuses(document: dict[str, Any]) -> dict[str, str]:
    return {(m["module"] or m["path"]) + ("" if not m["shadowed_by"] else " (shadowed)"): m["status"]
            for m in document["modules"]}


def test_strict_mode_is_the_default_on_free_threaded_and_fails(capsys: pytest.CaptureFixture[str], populated: Path,
                                                               tmp_path: Path) -> None:
    document = check_json(capsys, tmp_path, "--python", populated)
    assert document["mode"] == "nogil" and document["result"]["status"] == "violated"
    assert document["result"]["gil_stays_disabled"] is False
    assert statuses(document) == {
        "spine._multi": "keeps-gil-off", "spine._single": "keeps-gil-off", "spine._cpp": "keeps-gil-off",
        "spine._own": "keeps-gil-off", "spine.legacy._old": "needs-gil", "efalse._claims": "needs-gil",
        "spine._single (shadowed)": "shadowed", "gilmod": "wrong-abi", "stable": "wrong-abi",
    }
    owners = {m["module"]: m["distribution"] for m in document["modules"]}
    assert owners["spine._multi"] == {"name": "spine", "version": "1.0"} and owners["gilmod"] is None
    old = next(m for m in document["modules"] if m["module"] == "spine.legacy._old")
    assert old["inspection"]["evidence"][0]["kind"] == "marker" and old["severity"] == "error"


def test_text_report_names_the_blamed_first_grouped_by_distribution(capsys: pytest.CaptureFixture[str],
                                                                    populated: Path, tmp_path: Path) -> None:
    code, out, _ = check(capsys, "--python", populated, "--no-project", "--cache-dir", tmp_path)
    assert code == 1
    blamed = out.index("2 modules re-enable the GIL when imported:")
    wrong_abi = out.index("2 modules cannot be loaded by this interpreter:")
    assert blamed < wrong_abi < out.index("OK    4 modules in 1 distribution declare")
    section = out[blamed:out.index("cannot be loaded")]
    assert "  efalse 1.0\n    efalse._claims  (used;" in section
    assert "  spine 1.0\n    spine.legacy._old  (used;" in section
    assert "gilmod  (built for CPython 3.13;" in out and "stable  (abi3 modules cannot load" in out
    assert out.rstrip().endswith("result: FAILED (exit 1); importing a module listed above re-enables the GIL")


@pytest.mark.parametrize(("mode", "code", "severity"), [("unsafe-nogil", 0, "warning"), ("gil", 0, "info")])
def test_lenient_modes_pass(capsys: pytest.CaptureFixture[str], populated: Path, tmp_path: Path, mode: str,
                            code: int, severity: str) -> None:
    document = check_json(capsys, tmp_path, "--python", populated, "--mode", mode)
    assert document["result"]["exit_code"] == code
    assert {m["severity"] for m in document["modules"] if m["status"] == "needs-gil"} == {severity}


def test_clean_environment_passes(capsys: pytest.CaptureFixture[str], clean: Path, tmp_path: Path) -> None:
    document = check_json(capsys, tmp_path, "--python", clean)
    assert document["result"] == {"exit_code": 0, "status": "ok", "gil_stays_disabled": True}


def test_undecided_module_gives_exit_3_and_can_be_allowed(capsys: pytest.CaptureFixture[str], clean: Path,
                                                          folders: dict[str, Path], tmp_path: Path) -> None:
    document = check_json(capsys, tmp_path, "--python", clean, "--path", folders["junk"])
    assert statuses(document) == {"broken._junk": "undecided"}
    assert document["result"] == {"exit_code": 3, "status": "undecided", "gil_stays_disabled": None}
    allowed = check_json(capsys, tmp_path, "--python", clean, "--path", folders["junk"], "--allow", "broken.*=vendored")
    assert allowed["result"]["exit_code"] == 0 and allowed["modules"][0]["allowed_because"] == "vendored"


def test_allow_on_the_command_line(capsys: pytest.CaptureFixture[str], clean: Path, folders: dict[str, Path],
                                   tmp_path: Path) -> None:
    assert check_json(capsys, tmp_path, "--python", clean, "--path", folders["needs"])["result"]["exit_code"] == 1
    document = check_json(capsys, tmp_path, "--python", clean, "--path", folders["needs"], "--allow", "efalse._claims")
    assert document["result"]["exit_code"] == 0
    assert document["policy"]["allow"] == [{"pattern": "efalse._claims", "reason": "allowed on the command line"}]


def test_policy_from_pyproject(capsys: pytest.CaptureFixture[str], clean: Path, folders: dict[str, Path],
                               tmp_path: Path) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[tool.nogil.check]\nmode = "nogil"\nallow = { "efalse.*" = "audited 2026-11: one global lock" }\n')
    code, out, _ = check(capsys, "--python", clean, "--path", folders["needs"], "--project", project,
                         "--cache-dir", tmp_path / "cache")
    assert code == 0
    assert f"policy from {project / 'pyproject.toml'}" in out
    assert "efalse._claims  (audited 2026-11: one global lock)" in out


def test_cache_spares_every_binary_on_a_re_check(capsys: pytest.CaptureFixture[str], populated: Path,
                                                 tmp_path: Path) -> None:
    cold = check_json(capsys, tmp_path, "--python", populated)
    warm = check_json(capsys, tmp_path, "--python", populated)
    inspected = sum(1 for m in cold["modules"] if m["inspection"] is not None)
    assert cold["scan"]["cached"] == 0 and warm["scan"]["cached"] == inspected
    assert warm["modules"] == cold["modules"]
    os.utime(next((site_packages(populated) / "efalse").glob("*.so")))
    assert check_json(capsys, tmp_path, "--python", populated)["scan"]["cached"] == inspected - 1
    assert check_json(capsys, tmp_path, "--python", populated, "--no-cache")["scan"]["cached"] == 0


def test_venvs_of_one_interpreter_keep_separate_caches(capsys: pytest.CaptureFixture[str], populated: Path,
                                                       clean: Path, tmp_path: Path) -> None:
    """Both venvs' pythons lead to the same binary; each venv is still a target of its own."""
    first = check_json(capsys, tmp_path, "--python", populated)
    other = check_json(capsys, tmp_path, "--python", clean)
    again = check_json(capsys, tmp_path, "--python", populated)
    assert other["target"]["site_packages"] != first["target"]["site_packages"]
    assert other["modules"] == [] and again["modules"] == first["modules"]
    assert again["scan"]["cached"] == sum(1 for m in first["modules"] if m["inspection"] is not None)


def test_probe_confirms_every_static_verdict(capsys: pytest.CaptureFixture[str], populated: Path,
                                             tmp_path: Path) -> None:
    document = check_json(capsys, tmp_path, "--python", populated, "--probe", "--jobs", "2")
    probed = {m["module"]: m["probe"] for m in document["modules"] if m["probe"] is not None}
    assert set(probed) == {"spine._multi", "spine._single", "spine._cpp", "spine._own", "spine.legacy._old",
                           "efalse._claims"}
    assert {name for name, p in probed.items() if p["needs_gil"]} == {"spine.legacy._old", "efalse._claims"}
    assert not any(p["disagrees"] for p in probed.values())


def test_probe_undecided_leaves_decided_modules_alone(capsys: pytest.CaptureFixture[str], populated: Path,
                                                      tmp_path: Path) -> None:
    document = check_json(capsys, tmp_path, "--python", populated, "--probe=undecided")
    assert document["scan"]["probed"] == 0 and all(m["probe"] is None for m in document["modules"])
    assert {m["decided_by"] for m in document["modules"] if m["status"] in ("keeps-gil-off", "needs-gil")} == {
        "inspection"}


def test_an_inconclusive_probe_stays_undecided_says_why_and_is_not_cached(capsys: pytest.CaptureFixture[str],
                                                                          clean: Path, folders: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    """Random bytes behind an ELF header: unknown statically, and the loader refuses the file,
    so the probe cannot tell either. A failed load may succeed once the environment changes,
    so it is probed again next time rather than remembered."""
    for _ in range(2):
        document = check_json(capsys, tmp_path, "--python", clean, "--path", folders["junk"], "--probe=undecided")
        (module,) = document["modules"]
        assert module["status"] == "undecided" and module["decided_by"] is None
        assert module["probe"]["needs_gil"] is None and module["probe"]["summary"].startswith("could not be loaded: ")
        assert document["scan"]["probed"] == 1 and document["scan"]["probes_cached"] == 0
        assert document["result"]["exit_code"] == 3
    code, out, _ = check(capsys, "--python", clean, "--path", folders["junk"], "--probe=undecided", "--no-project",
                         "--cache-dir", tmp_path / "cache")
    assert code == 3 and "probe: could not be loaded: " in out and "--probe" not in out


@pytest.mark.parametrize(("args", "message"), [
    (["--python", "/nonexistent/python"], "/nonexistent/python"),
    (["--probe", "--python", sys.executable], "--probe needs a free-threaded interpreter"),
    (["--allow", "a..b"], "--allow 'a..b': expected a dotted module name or glob"),
    (["--path", "/nonexistent-dir"], "--path /nonexistent-dir is not a directory"),
])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str) -> None:
    code, out, err = check(capsys, *args, "--no-project", "--cache-dir", tmp_path)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err


def test_invalid_project_policy_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.nogil.check]\nmode = "strict"\n')
    code, _, err = check(capsys, "--project", tmp_path, "--cache-dir", tmp_path)
    assert code == 2 and err.startswith("error: tool.nogil.check.mode: expected one of")
    assert err.endswith(f"({tmp_path / 'pyproject.toml'}:2:1)\n")


def test_console_script(populated: Path, tmp_path: Path) -> None:
    script = shutil.which("nogil-check-env", path=os.path.dirname(sys.executable)) or shutil.which("nogil-check-env")
    assert script, "nogil-check-env is not installed"
    assert subprocess.run([script, "--version"], capture_output=True, text=True).stdout.startswith("nogil-check-env ")
    result = subprocess.run([script, "--python", str(populated), "--no-project", "--cache-dir", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "result: FAILED (exit 1)" in result.stdout


def test_control_characters_read_from_files_are_escaped_in_the_reports(capsys: pytest.CaptureFixture[str],
                                                                       populated: Path, clean: Path, ft_abi: tuple[str, str],
                                                                       tmp_path: Path) -> None:
    """Distribution metadata is whatever a wheel says: escape sequences in it must not reach the
    terminal (clear the screen, retitle it, forge a line of the report) nor the CI log."""
    folder = tmp_path / "hostile"
    (folder / "pkg").mkdir(parents=True)
    shutil.copy(site_packages(populated) / "efalse" / f"_claims{ft_abi[1]}", folder / "pkg")
    info = folder / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\x1b]0;pwned\x07\nVersion: 1\x1b[2J\n")
    (info / "RECORD").write_text(f"pkg/_claims{ft_abi[1]},,\n")
    for output in ("text", "github"):
        code, out, err = check(capsys, "--python", clean, "--path", folder, "--no-project", "--no-cache",
                               "--format", output)
        assert code == 1 and err == ""
        assert "pkg._claims" in out
        assert not any(c in out for c in "\x1b\x07"), out
        assert "pkg\\x1b]0;pwned\\x07" in out
