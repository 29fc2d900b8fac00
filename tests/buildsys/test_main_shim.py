"""``nogil-toolkit shim``, the configure-time command of the meson and CMake integrations,
called in-process as the build systems call it."""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nogil_toolkit.__main__ import main
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.shim import ShimPlan

PYPROJECT = """\
[tool.nogil]
thread-safe = true

[tool.nogil.modules]
"pkg.legacy.*" = false
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    return tmp_path


def lines(capsys: pytest.CaptureFixture[str]) -> list[list[str]]:
    return [line.split("\t") for line in capsys.readouterr().out.splitlines()]


def test_each_module_gets_its_shim_and_flags_in_the_order_given(project: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    shims = project / "build" / "shims"
    assert main(["shim", "--project", str(project), "--output-dir", str(shims), "pkg.legacy._old", "pkg._fast"]) == 0
    old, fast = lines(capsys)
    assert old == ["pkg.legacy._old", "used", str(shims / "pkg.legacy._old.nogil_shim.c"),
                   "-DPyInit__old=_nogil_toolkit_orig_PyInit__old", "-DCYTHON_FREETHREADING_COMPATIBLE=0", "",
                   "-DPyModExport__old=_nogil_toolkit_orig_PyModExport__old"]
    assert fast[:2] == ["pkg._fast", "not-used"] and fast[4] == "-DCYTHON_FREETHREADING_COMPATIBLE=1"
    assert Path(fast[2]).read_text() == ShimPlan("pkg._fast", GilDeclaration.NOT_USED).render()


def test_a_module_no_rule_covers_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.nogil.modules]\n"pkg._a" = true\n')
    assert main(["shim", "--project", str(tmp_path), "--output-dir", str(tmp_path / "s"), "pkg._a", "pkg._b"]) == 0
    assert lines(capsys)[1] == ["pkg._b", "none", "", "", "", "", ""]
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["pkg._a.nogil_shim.c"]


def test_export_hook_modules_get_the_hook_wrapper(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shims = project / "shims"
    assert main(["shim", "--project", str(project), "--output-dir", str(shims), "--export-hook", "pkg._hook",
                 "pkg._hook", "pkg._plain"]) == 0
    hook, plain = lines(capsys)
    assert Path(hook[2]).read_text() == ShimPlan("pkg._hook", GilDeclaration.NOT_USED, export_hook=True).render()
    assert Path(plain[2]).read_text() == ShimPlan("pkg._plain", GilDeclaration.NOT_USED).render()
    assert "PyMODEXPORT_FUNC\nPyModExport__hook(void)" in Path(hook[2]).read_text()
    assert "PyModExport__plain(void)" not in Path(plain[2]).read_text()


def test_export_hook_must_name_one_of_the_modules(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shim", "--project", str(project), "--output-dir", str(project / "s"), "--export-hook", "pkg._y",
                 "pkg._x"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: --export-hook names pkg._y, which is not among the MODULEs (")
    assert captured.out == "" and not (project / "s").exists()


def test_cplusplus_projects_get_a_cpp_shim(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shim", "--project", str(project), "--output-dir", str(project), "--cplusplus", "pkg._x"]) == 0
    assert lines(capsys)[0][2].endswith("pkg._x.nogil_shim.cpp")


def test_record_lists_the_declared_modules(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = project / "out" / "nogil-declaration.json"
    assert main(["shim", "--project", str(project), "--record", str(record), "pkg._fast", "pkg.legacy._old"]) == 0
    assert json.loads(record.read_text())["modules"] == {"pkg._fast": "not-used", "pkg.legacy._old": "used"}
    assert [p.name for p in record.parent.iterdir()] == [record.name]


def test_record_refuses_an_override_that_names_no_module(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = project / "nogil-declaration.json"
    assert main(["shim", "--project", str(project), "--record", str(record), "pkg._fast"]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: tool.nogil.modules."pkg.legacy.*": names no extension module')
    assert err.rstrip().endswith("pyproject.toml:5:1)") and len(err.splitlines()) == 1
    assert not record.exists()


@pytest.mark.parametrize(("text", "module", "code", "message"), [
    ("[tool.nogil]\nthread-safe = 1\n", "pkg._x", 1, "tool.nogil.thread-safe: expected a boolean"),
    ("[project]\nname = 'x'\n", "pkg._x", 2, "error: no [tool.nogil] table"),
    ("[tool.nogil]\nthread-safe = true\n", "pkg.bad-name", 2, "is not a dotted name of identifiers"),
    ('[tool.nogil.modules]\n"pkg._x" = true\n', "pkg.\u043c\u043e\u0434", 2, "is not a dotted name of identifiers"),
])
def test_errors_are_one_line_with_the_place(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                            module: str, code: int, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    assert main(["shim", "--project", str(tmp_path), "--output-dir", str(tmp_path / "s"), module]) == code
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert captured.out == "" and not (tmp_path / "s").exists()


def test_an_unwritable_output_directory_is_one_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = project / "file"
    blocker.write_text("")
    assert main(["shim", "--project", str(project), "--output-dir", str(blocker / "shims"), "pkg._x"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: cannot write: ") and str(blocker / "shims") in captured.err
    assert captured.out == ""


def test_check_built_reads_the_linked_module(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--check-built passes a module without a hook in silence, and refuses bad input in one
    line: more than one MODULE, a file that cannot be read. (A module with an unwrapped hook
    fails it: the CMake build test.)"""
    import sysconfig  # a real linked module: the interpreter's own _json

    plain = next(Path(sysconfig.get_config_var("DESTSHARED")).glob("_json.*"))
    assert main(["shim", "--project", str(project), "--check-built", str(plain), "pkg._json"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["shim", "--project", str(project), "--check-built", str(plain), "pkg._json", "pkg._b"]) == 2
    assert capsys.readouterr().err.startswith("error: --check-built takes one MODULE, not 2")
    assert main(["shim", "--project", str(project), "--check-built", str(project / "missing.so"), "pkg._x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read the built module: No such file or directory") and err.count("\n") == 1


def limited_memory() -> None:
    """``preexec_fn``: an endless read fails with MemoryError instead of taking the machine's memory."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def plant(path: Path, what: str) -> None:
    """A FIFO or a directory where a file is expected."""
    (os.mkfifo if what == "fifo" else os.mkdir)(path)


KINDS = {"fifo": "a FIFO (named pipe)", "directory": "a directory", "dev-zero": "a character device"}


@pytest.mark.parametrize("what", ["fifo", "directory", "dev-zero"])
def test_check_built_reads_only_a_regular_file(project: Path, what: str) -> None:
    """A FIFO would block the read, /dev/zero never end it: one line, exit 1. A process, so that
    a hang fails the test through its timeout."""
    built = Path("/dev/zero") if what == "dev-zero" else project / "_x.so"  # /dev/zero: only ever read
    if what != "dev-zero":
        plant(built, what)
    result = subprocess.run([str(Path(sys.executable).parent / "nogil-toolkit"), "shim", "--project", str(project),
                             "--check-built", str(built), "pkg._x"], capture_output=True, text=True, timeout=60,
                            preexec_fn=limited_memory)
    assert (result.returncode, result.stdout) == (1, ""), result.stderr[-2000:]
    assert result.stderr == f"error: cannot read the built module: it is {KINDS[what]}, not a regular file ({built})\n"


@pytest.mark.parametrize("what", ["fifo", "directory"])
def test_record_replaces_only_a_regular_file(project: Path, capsys: pytest.CaptureFixture[str], what: str) -> None:
    """A rename would turn a FIFO (or, as root, a device node) into a regular file: refused in one
    line, exit 1, the FIFO still a FIFO and no temporary file left beside it."""
    out = project / "out"
    out.mkdir()
    record = out / "nogil-declaration.json"
    plant(record, what)
    mode = os.lstat(record).st_mode
    assert main(["shim", "--project", str(project), "--record", str(record), "pkg._fast", "pkg.legacy._old"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"error: {record.name} is {KINDS[what]}, not a regular file; nothing was written "
                            f"({record})\n")
    assert os.lstat(record).st_mode == mode and [p.name for p in out.iterdir()] == [record.name]


def test_record_never_writes_through_a_planted_temporary_name(project: Path) -> None:
    """The record used to go through the fixed name .FILE.tmp, following a symlink planted there."""
    victim = project / "victim"
    victim.write_text("untouched\n")
    record = project / "nogil-declaration.json"
    (project / f".{record.name}.tmp").symlink_to(victim)
    assert main(["shim", "--project", str(project), "--record", str(record), "pkg._fast", "pkg.legacy._old"]) == 0
    assert victim.read_text() == "untouched\n"
    assert json.loads(record.read_text())["modules"] == {"pkg._fast": "not-used", "pkg.legacy._old": "used"}
    assert sorted(p.name for p in project.iterdir()) == [f".{record.name}.tmp", record.name, "pyproject.toml",
                                                         "victim"]


def test_record_through_a_symlink_replaces_its_target(project: Path) -> None:
    """As declare does with a symlinked pyproject.toml: the file is replaced, the link stays."""
    real = project / "real.json"
    real.write_text("{}\n")
    real.chmod(0o640)
    link = project / "nogil-declaration.json"
    link.symlink_to(real.name)
    assert main(["shim", "--project", str(project), "--record", str(link), "pkg._fast", "pkg.legacy._old"]) == 0
    assert link.is_symlink() and os.readlink(link) == real.name
    assert json.loads(real.read_text())["modules"] == {"pkg._fast": "not-used", "pkg.legacy._old": "used"}
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
