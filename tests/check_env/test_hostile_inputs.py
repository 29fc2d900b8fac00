"""``nogil-check-env`` (and ``nogil-toolkit``) as processes, against inputs nobody here wrote:
symlinked packages, broken metadata, FIFOs, absurd depth, outputs that cannot be written,
``--python`` that is no Python, signals mid-run, and installed code that must never run.

Every test runs the real console script in a subprocess on real free-threaded venvs with
real compiled modules; a hang fails the test through the subprocess timeout."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import jsonschema
import pytest

from nogil_toolkit.report import load_schema
from support import children, make_venv, nested, probe_import, run, site_packages

pytestmark = pytest.mark.freethreaded

BIN = Path(sys.executable).parent
UNDECLARED_C = """
#include <Python.h>
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_undeclared", NULL, 0, NULL};
PyMODINIT_FUNC PyInit__undeclared(void) { return PyModuleDef_Init(&def); }
"""
# The query script's own words: an error message must never echo them.
SCRIPT_WORDS = ("getsitepackages", "importlib.machinery", "json.dumps")


def cli(*args: str | os.PathLike[str], command: str = "nogil-check-env", timeout: float = 120,
        **popen: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / command), *map(str, args)], capture_output="stdout" not in popen, text=True,
                          timeout=timeout, check=False, **popen)  # type: ignore[call-overload]


def check_env(python: Path, cache: Path, *args: str | os.PathLike[str], **popen: object) -> subprocess.CompletedProcess[str]:
    return cli("--python", python, "--no-project", "--cache-dir", cache, *args, **popen)


def limited_memory() -> None:
    """``preexec_fn``: 2 GiB of address space (checks use far less), so that a command that reads
    without end fails with a MemoryError rather than taking the machine's memory."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def one_error_line(stderr: str) -> str:
    """The whole of stderr, which must be exactly one ``error:`` line."""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture(scope="module")
def undeclared(ft_python: str, ft_abi: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real extension module for the free-threaded interpreter that declares nothing."""
    out = tmp_path_factory.mktemp("undeclared")
    include = run([ft_python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"]).stdout.strip()
    source = out / "undeclared.c"
    source.write_text(UNDECLARED_C)
    module = out / f"_undeclared{ft_abi[1]}"
    run(["cc", "-shared", "-fPIC", f"-I{include}", source, "-o", module])
    return module


@pytest.fixture
def venv(ft_python: str, tmp_path: Path) -> Path:
    """A fresh free-threaded venv per test: several tests make theirs unusable on purpose."""
    return make_venv(ft_python, tmp_path / "venv")


def place(module: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / module.name
    target.write_bytes(module.read_bytes())
    return target


def test_symlinked_package_fails_the_check_and_really_enables_the_gil(venv: Path, undeclared: Path,
                                                                      tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "linkedpkg"
    place(undeclared, elsewhere)
    (elsewhere / "__init__.py").write_text("")
    (site_packages(venv) / "linkedpkg").symlink_to(elsewhere, target_is_directory=True)
    result = check_env(venv, tmp_path / "cache")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "linkedpkg._undeclared" in result.stdout and "result: FAILED" in result.stdout
    probe = probe_import(venv, "linkedpkg._undeclared")
    assert probe.gil_enabled
    assert any("linkedpkg._undeclared" in warning for warning in probe.gil_warnings)


def test_pth_with_a_nul_byte(venv: Path, undeclared: Path, tmp_path: Path) -> None:
    """CPython starts with it (the line names no existing path) and reads the next lines."""
    extra = tmp_path / "extra"
    place(undeclared, extra)
    (site_packages(venv) / "nul.pth").write_bytes(b"/nonexistent\x00x\n" + str(extra).encode() + b"\n")
    started = run([venv, "-c", "import sys; print(sys.path)"])
    assert str(extra) in started.stdout
    result = check_env(venv, tmp_path / "cache")
    assert result.returncode == 1 and result.stderr == "", result.stderr
    # The folder a .pth adds counts among the folders; one of a thing is singular.
    assert "; 1 extension file in 2 folders," in result.stdout
    assert "FAIL  1 module re-enables the GIL when imported:\n  (owned by no distribution)\n    _undeclared  (" \
        in result.stdout


def test_metadata_not_in_utf8_or_empty(venv: Path, undeclared: Path, tmp_path: Path) -> None:
    site = site_packages(venv)
    place(undeclared, site / "latin")
    place(undeclared, site / "blank")
    latin = site / "latin-1.0.dist-info"
    latin.mkdir()
    (latin / "METADATA").write_bytes(b"Metadata-Version: 2.1\nName: Caf\xe9\nVersion: 1.0\n")
    (latin / "RECORD").write_bytes(b"latin/caf\xe9.txt,,\nlatin/" + undeclared.name.encode() + b",,\n")
    blank = site / "blank-2.0.dist-info"
    blank.mkdir()
    (blank / "METADATA").write_bytes(b"")
    (blank / "RECORD").write_text(f"blank/{undeclared.name},,\n")
    text = check_env(venv, tmp_path / "cache")
    assert text.returncode == 1 and text.stderr == "", text.stderr
    assert "Caf\ufffd 1.0" in text.stdout and "blank 2.0" in text.stdout and "None" not in text.stdout
    document = json.loads(check_env(venv, tmp_path / "cache", "--format", "json").stdout)
    jsonschema.validate(document, load_schema())
    owners = {m["module"]: m["distribution"] for m in document["modules"]}
    assert owners["blank._undeclared"] == {"name": "blank", "version": "2.0"}


def test_a_closed_pipe_and_a_full_disk(venv: Path, tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        result = check_env(venv, tmp_path / "cache", stdout=full, stderr=subprocess.PIPE)
    assert result.returncode == 2
    assert one_error_line(result.stderr) == "error: cannot write the output (No space left on device)"

    process = subprocess.Popen([BIN / "nogil-check-env", "--python", venv, "--no-project", "--cache-dir", tmp_path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    process.stdout.close()  # as `| head -1` does once it has its line: the report comes later
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert one_error_line(err) == "error: cannot write the output (Broken pipe)"


@pytest.mark.parametrize("command", [["nogil-check-env", "--help"], ["nogil-toolkit", "--help"],
                                     ["nogil-toolkit", "wheel", "select", "--help"]])
def test_help_to_a_full_disk(command: list[str]) -> None:
    with open("/dev/full", "w") as full:
        result = cli(*command[1:], command=command[0], stdout=full, stderr=subprocess.PIPE)
    assert result.returncode == 2
    one_error_line(result.stderr)


@pytest.mark.parametrize(("option", "value"), [("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "0"),
                                               ("--timeout", "-1"), ("--timeout", "soon"), ("--jobs", "0")])
def test_numbers_that_make_no_sense(option: str, value: str) -> None:
    result = cli(f"{option}={value}")
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"nogil-check-env: error: argument {option}: expected ")


def test_path_nested_1200_deep(venv: Path, undeclared: Path, tmp_path: Path) -> None:
    with nested(tmp_path / "deep", 1200) as deep:
        place(undeclared, deep)
        result = check_env(venv, tmp_path / "cache", "--path", tmp_path / "deep")
    assert result.returncode == 1 and result.stderr == "", result.stderr[-2000:]
    assert ".".join(["d"] * 1200 + ["_undeclared"]) in result.stdout


def test_fifos_where_files_should_be(venv: Path, undeclared: Path, tmp_path: Path) -> None:
    """Opening any of these for reading waits for a writer forever. The interpreter itself
    skips a FIFO named like a module; the check skips all of them."""
    site = site_packages(venv)
    place(undeclared, site / "real")
    os.mkfifo(site / "real" / "_fifo.so")
    os.mkfifo(site / "blocked.pth")
    info = site / "fifo-1.0.dist-info"
    info.mkdir()
    os.mkfifo(info / "RECORD")
    os.mkfifo(info / "METADATA")
    extra = tmp_path / "extra" / "pkg"
    extra.mkdir(parents=True)
    os.mkfifo(extra / f"_x{undeclared.name[len('_undeclared'):]}")
    result = check_env(venv, tmp_path / "cache", "--path", tmp_path / "extra", timeout=120)
    assert result.returncode == 1 and result.stderr == "", result.stderr
    assert "real._undeclared" in result.stdout and "pkg._x" not in result.stdout


def sleeping_python(folder: Path) -> tuple[Path, Path]:
    """A "Python" that never answers; it records the PID of the ``sleep`` it runs."""
    pid_file = folder / "sleep.pid"
    script = folder / "sleeper"
    script.write_text(f"#!/bin/sh\nsleep 1000 &\necho $! > {pid_file}\nwait\n")
    script.chmod(0o755)
    return script, pid_file


def gone(pid: int, within: float = 10) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for init counts as ended)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def test_python_that_is_not_a_python(tmp_path: Path) -> None:
    other_json = tmp_path / "other-json"
    other_json.write_text('#!/bin/sh\necho \'{"name": "not a python"}\'\n')
    other_json.chmod(0o755)
    sleeper, pid_file = sleeping_python(tmp_path)
    expected = {
        str(tmp_path): "is a directory, not a Python interpreter",
        "/bin/ls": "is not a usable Python interpreter (exit status 2",
        "/bin/true": "gave no answer; is it a Python interpreter?",
        str(other_json): "answered, but not with an interpreter's facts",
        str(sleeper): "did not answer within 10 s; is it a Python interpreter?",
    }
    for python, message in expected.items():
        result = cli("--python", python, "--no-project", "--no-cache")
        assert result.returncode == 2 and result.stdout == "", python
        line = one_error_line(result.stderr)
        assert message in line and not any(word in line for word in SCRIPT_WORDS), line
    assert gone(int(pid_file.read_text())), "the target's sleep is still running"


def workers_at_work(pid: int) -> bool:
    """Two pool workers exist (``--jobs 3``: they read beside the command itself) and have set
    themselves up (each leads a process group of its own, which a terminal's Ctrl-C does not
    reach): the scan is under way."""
    try:
        workers = children(pid)
        return len(workers) >= 2 and all(os.getpgid(worker) == worker for worker in workers)
    except ProcessLookupError:
        return False


def interrupt(command: Sequence[str | os.PathLike[str]], signum: int, ready: Callable[[int], bool]) -> tuple[int, str]:
    """Start ``command`` in a process group of its own; once ``ready(pid)``, send ``signum`` to
    the whole group (as a terminal's Ctrl-C does); return status and stderr after checking
    that nothing of the group is left."""
    process = subprocess.Popen([str(c) for c in command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not ready(process.pid) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the command ended before it could be interrupted"
    os.killpg(process.pid, signum)
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        for pid in (process.pid, *children(process.pid)):
            os.killpg(pid, signal.SIGKILL)  # workers lead groups of their own
        pytest.fail("the interrupted command did not end")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("processes of the interrupted command are still running")
    return process.returncode, err


@pytest.fixture(scope="module")
def busy_tree(ft_python: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Thousands of real extension files (links to the interpreter's own): seconds of reading."""
    dynload = Path(run([ft_python, "-c", "import sysconfig; print(sysconfig.get_config_var('DESTSHARED'))"])
                   .stdout.strip())
    modules = sorted(dynload.glob("*.so"))
    assert len(modules) > 20
    root = tmp_path_factory.mktemp("busy")
    for copy in range(40):
        package = root / f"copy{copy}"
        package.mkdir()
        for module in modules:
            (package / module.name).symlink_to(module)
    return root


@pytest.mark.parametrize(("signum", "status", "line"), [(signal.SIGINT, 130, "error: interrupted"),
                                                        (signal.SIGTERM, 143, "error: terminated")])
def test_signal_while_workers_read_binaries(venv: Path, busy_tree: Path, tmp_path: Path, signum: int, status: int,
                                            line: str) -> None:
    cache = tmp_path / "cache"
    run([BIN / "nogil-check-env", "--python", venv, "--no-project", "--cache-dir", cache])  # the target's facts
    code, err = interrupt([BIN / "nogil-check-env", "--python", venv, "--no-project", "--cache-dir", cache,
                           "--path", busy_tree, "--jobs", "3"], signum, ready=workers_at_work)
    assert (code, err) == (status, line + "\n")


@pytest.mark.parametrize(("signum", "status", "line"), [(signal.SIGINT, 130, "error: interrupted"),
                                                        (signal.SIGTERM, 143, "error: terminated")])
@pytest.mark.parametrize("command", ["nogil-check-env", "nogil-toolkit"])
def test_signal_while_the_target_is_slow(tmp_path: Path, command: str, signum: int, status: int, line: str) -> None:
    sleeper, pid_file = sleeping_python(tmp_path)
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    args = (["--python", sleeper, "--no-project", "--no-cache"] if command == "nogil-check-env"
            else ["wheel", "select", "--python", sleeper, wheel])
    # The target runs in a session of its own, so the group signal reaches only the command.
    code, err = interrupt([BIN / command, *args], signum, ready=lambda pid: pid_file.exists())
    assert (code, err) == (status, line + "\n")
    assert gone(int(pid_file.read_text())), "the target's sleep is still running"


def test_no_scanned_code_runs(ft_python: str, tmp_path: Path) -> None:
    """§6: a full check never runs installed code: not a .pth import line, not sitecustomize,
    not usercustomize. The venv sees system site-packages, so that user customisation is on."""
    markers = tmp_path / "markers"
    markers.mkdir()
    venv = tmp_path / "venv"
    run([ft_python, "-m", "venv", "--system-site-packages", venv])
    python = venv / "bin" / "python"
    site = site_packages(python)

    def leaves(name: str) -> str:
        return f"import pathlib; pathlib.Path({str(markers / name)!r}).touch()"

    (site / "marker.pth").write_text(leaves("pth") + "\n")
    (site / "sitecustomize.py").write_text(leaves("sitecustomize") + "\n")
    (site / "usercustomize.py").write_text(leaves("usercustomize") + "\n")
    for args in ([], ["--format", "json"], ["--include-stdlib", "--verbose"]):
        result = cli("--python", python, "--no-project", "--no-cache", *args)
        # 3: some test modules of the standard library are not decided statically
        assert result.returncode in (0, 3) and result.stderr == "", result.stdout + result.stderr
    assert sorted(p.name for p in markers.iterdir()) == []
    # The markers work: the interpreter started normally runs all three.
    run([python, "-c", "pass"], env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")})
    assert sorted(p.name for p in markers.iterdir()) == ["pth", "sitecustomize", "usercustomize"]


def deeply_nested(path: Path) -> None:
    path.write_text("[" * 100000)


def bigger_than_any_cache(path: Path) -> None:
    with open(path, "wb") as stream:  # sparse: 65 MiB that take no disk
        stream.truncate(65 * 1024 * 1024)


@pytest.mark.parametrize("replace", [os.mkfifo, lambda path: path.symlink_to("/dev/zero"), deeply_nested,
                                     bigger_than_any_cache], ids=["fifo", "dev-zero", "nested", "huge"])
@pytest.mark.parametrize("suffix", [".json", ".index"])
def test_a_cache_file_that_is_no_cache(ft_venv: Path, tmp_path: Path, replace: Callable[[Path], None],
                                       suffix: str) -> None:
    """The cache file (or the guard's index beside it) replaced by something that blocks a
    reader, never ends, is nested past the recursion limit or is too large: the check runs as
    without a cache, and only a regular file is replaced, so the FIFO or link stays."""
    cache = tmp_path / "cache"
    first = check_env(ft_venv, cache)
    assert first.stderr == "", first.stderr
    [planted] = cache.glob(f"check-env-*{suffix}")
    planted.unlink()
    replace(planted)
    kind = stat.S_IFMT(os.lstat(planted).st_mode)
    again = check_env(ft_venv, cache, timeout=60, preexec_fn=limited_memory)
    assert (again.returncode, again.stderr) == (first.returncode, ""), again.stderr[-2000:]
    assert again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    if kind == stat.S_IFREG:  # a regular file that is no cache: replaced by one (the index: by its own)
        assert planted.stat().st_size < 1024 * 1024
        assert planted.read_text().startswith('{"format":1' if suffix == ".json" else "nogil-toolkit ")
    else:
        assert stat.S_IFMT(os.lstat(planted).st_mode) == kind
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(("script", "message"), [
    ('cat >/dev/null; python3 -c \'print("[" * 100000)\'\n', "gave an answer that is not the expected JSON"),
    ("cat >/dev/null; cat /dev/zero\n", "wrote more than 4 MiB instead of the expected JSON"),
    ("cat >/dev/null; cat /dev/zero >&2\n", "wrote more than 4 MiB instead of the expected JSON"),
], ids=["nested", "endless", "endless-stderr"])
@pytest.mark.parametrize("command", ["nogil-check-env", "nogil-toolkit"])
def test_python_that_answers_too_deep_or_too_much(tmp_path: Path, command: str, script: str, message: str) -> None:
    """A ``--python`` whose answer is nested past the recursion limit, or endless: the one
    error line of a target that is no Python, exit 2, and its ``cat`` is gone."""
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'pid'}\n{script}")
    python.chmod(0o755)
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    args = (["--python", python, "--no-project", "--no-cache"] if command == "nogil-check-env"
            else ["wheel", "select", "--python", python, wheel])
    result = cli(*args, command=command, timeout=60, preexec_fn=limited_memory)
    assert result.returncode == 2 and result.stdout == "", result.stderr[-2000:]
    line = one_error_line(result.stderr)
    assert message in line and "is it a Python interpreter?" in line, line
    assert session_ended(int((tmp_path / "pid").read_text())), "the target's processes are still running"


def session_ended(leader: int, within: float = 10) -> bool:
    """Whether every process of the session ``leader`` leads has ended within ``within``
    seconds (Linux; a zombie waiting for init counts as ended)."""
    deadline = time.monotonic() + within
    while True:
        alive = []
        for status in Path("/proc").glob("[0-9]*/stat"):
            try:
                state, _, _, session = status.read_text().rsplit(")", 1)[1].split()[:4]
            except OSError:
                continue
            if int(session) == leader and state not in ("Z", "X"):
                alive.append(status)
        if not alive or time.monotonic() > deadline:
            return not alive
        time.sleep(0.1)
