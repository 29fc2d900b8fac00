"""Real interpreters, venvs, wheel builds and import probes for the tests.

Nothing here imitates the toolkit: builds go through pip's PEP 517 path with build isolation,
and every verdict about the GIL comes from importing a module in a fresh interpreter.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).resolve().parent / "samples"
PROVISION = REPO / ".ci" / "provision_freethreaded.py"


def run(cmd: Sequence[str | os.PathLike[str]], *, cwd: Optional[Path] = None, env: Optional[dict[str, str]] = None,
        timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command; on unexpected failure the assertion shows its whole output."""
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
                             f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}")
    return result


def freethreaded_python() -> str:
    """A free-threaded CPython: found, or built once by the project's provisioning script."""
    result = run([sys.executable, PROVISION], timeout=3600)
    return result.stdout.strip().splitlines()[-1]


def gil_python(minor: int) -> Optional[str]:
    """A working GIL build of CPython 3.<minor>, from PATH or a pyenv installation; ``None`` if there
    is none. Tests use :func:`require_gil_python`: a missing interpreter is a failure, not a skip."""
    name = f"python3.{minor}"
    candidates = [shutil.which(name)]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.{minor}.*/bin/{name}"), reverse=True)
    probe = "import sys, sysconfig; print(sys.version_info[:2] == (3, %d) and not sysconfig.get_config_var('Py_GIL_DISABLED'))"
    for candidate in filter(None, candidates):
        try:
            out = run([candidate, "-c", probe % minor], check=False, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "True":
            return candidate
    return None


def require_gil_python(minor: int) -> str:
    """A GIL build of CPython 3.<minor>; fails the test, saying where it looked, if there is none.

    The supported GIL interpreters are part of the test environment (on PATH, or under pyenv):
    a machine without one cannot show that the toolkit works there, so that is a failure.
    """
    python = gil_python(minor)
    if python is None:
        pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
        raise AssertionError(f"no GIL build of CPython 3.{minor}: looked for python3.{minor} on PATH and in "
                             f"{pyenv_root}/versions/3.{minor}.*; install it (e.g. pyenv install 3.{minor})")
    return python


NOBODY = 65534
"""The unprivileged user (and group) that root-run tests switch to."""


def unprivileged(cmd: Sequence[str | os.PathLike[str]]) -> list[str]:
    """``cmd`` as an unprivileged user would run it: unchanged when the tests are not root,
    else under ``setpriv`` as uid/gid 65534 with no supplementary groups.

    Permission checks behave differently for root (it may write a 0444 file, or into a 0555
    directory), so paths that only run unprivileged are tested this way even as root.
    """
    if os.geteuid() != 0:
        return [str(c) for c in cmd]
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to run tests as an unprivileged user: apt-get install util-linux"
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *map(str, cmd)]


def make_venv(python: str, path: Path) -> Path:
    """A fresh venv of ``python``; returns its interpreter."""
    run([python, "-m", "venv", path])
    return path / "bin" / "python"


def pinned_wheel_venv(ft_python: str, ft_abi: tuple[str, str], path: Path, wheels: Sequence[str]) -> Path:
    """A fresh venv of the free-threaded interpreter holding the pinned cp313t ``wheels`` (no
    dependencies, binaries only); returns its interpreter. Pinned bytes are cp313t wheels, so a
    run on another free-threaded ABI skips these tests rather than download other bytes."""
    if ft_abi[0] != "cp313t":
        pytest.skip("the pinned wheels are cp313t")
    venv = make_venv(ft_python, path)
    run([venv, "-m", "pip", "install", "--only-binary=:all:", "--no-deps", *wheels])
    return venv


def site_packages(venv_python: Path) -> Path:
    """The site-packages folder of the venv whose interpreter is ``venv_python``."""
    return next(venv_python.parent.parent.glob("lib/python3*/site-packages"))


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux), none when it is gone."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of an import probe: no ``PYTHON_GIL`` that would force the GIL's state."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON_GIL", "PYTHONPATH", "PYTHONWARNINGS")}
    env.update(extra)
    return env


def build_wheel(python: Path, project: Path, out: Path, wheelhouse: Path, env: Optional[dict[str, str]] = None) -> Path:
    """``pip wheel`` a copy of ``project`` (build isolation on, our plugin from ``wheelhouse``)."""
    source = out / f"src-{project.name}"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(project, source)
    dist = out / "dist"
    result = run([python, "-m", "pip", "wheel", "--no-deps", "--find-links", wheelhouse, "-w", dist, source],
                 env=env or clean_env())
    wheels = sorted(dist.glob(f"{project.name.replace('-', '_')}-*.whl")) or sorted(dist.glob("*.whl"))
    assert wheels, result.stdout
    return wheels[-1]


def install(python: Path, *requirements: str | os.PathLike[str], wheelhouse: Optional[Path] = None) -> None:
    extra = ["--find-links", str(wheelhouse)] if wheelhouse else []
    run([python, "-m", "pip", "install", "--force-reinstall", "--no-deps", *extra, *map(str, requirements)])


@dataclass(frozen=True)
class ImportProbe:
    """What importing one module in a fresh interpreter did to the GIL."""

    gil_enabled: bool
    gil_warnings: tuple[str, ...]


_PROBE = """
import importlib, json, sys, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    importlib.import_module(sys.argv[1])
print(json.dumps({
    "gil": sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True,
    "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
}))
"""


def probe_import(python: Path | str, module: str) -> ImportProbe:
    """Import ``module`` alone in a fresh process and report the GIL's state afterwards."""
    out = run([python, "-c", _PROBE, module], env=clean_env(), timeout=120)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return ImportProbe(data["gil"], tuple(data["warnings"]))


def import_strict(python: Path | str, module: str, code: str = "") -> str:
    """Import with ``-W error::RuntimeWarning``: a module that re-enables the GIL fails here.

    Returns stdout of ``code`` run after the import; asserts the GIL is still off."""
    script = f"import sys, {module}\n{code}\nassert not sys._is_gil_enabled(), 'GIL re-enabled'\n"
    return run([python, "-W", "error::RuntimeWarning", "-c", script], env=clean_env(), timeout=120).stdout


@contextlib.contextmanager
def nested(root: Path, depth: int) -> Iterator[Path]:
    """``root/d/d/.../d`` ``depth`` levels deep, removed afterwards bottom-up: ``shutil.rmtree``
    (pytest's own clean-up of old temporary folders included) recurses and cannot."""
    folders = [str(root)]
    os.mkdir(folders[0])
    for _ in range(depth):  # os.makedirs and Path.mkdir(parents=True) recurse as well
        folders.append(os.path.join(folders[-1], "d"))
        os.mkdir(folders[-1])
    try:
        yield Path(folders[-1])
    finally:
        for folder in reversed(folders):
            for entry in os.scandir(folder):
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.path)
            os.rmdir(folder)


def console_script(name: str = "nogil-toolkit") -> str:
    """The installed console script ``name``: beside this interpreter (a venv's bin), else on PATH."""
    script = shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)
    assert script, f"the {name} console script is not installed"
    return script


_BUILD_ARTEFACTS = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "*.so")


def own_wheels(projects: Sequence[Path], out: Path) -> Path:
    """Wheels of this repository's distributions (``projects``: their folders in it), in ``out``.

    They are built from a copy of the repository: setuptools builds in a project's own
    ``build/``, which the session fixtures of two test workers (pytest-xdist) building at the
    same moment would share ("File exists: build/bdist.../nogil_toolkit-0.1.0.dist-info")."""
    copy = Path(tempfile.mkdtemp(prefix="sources-", dir=out.parent))
    shutil.copytree(REPO, copy, ignore=_BUILD_ARTEFACTS, dirs_exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    try:
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", out,
             *(copy / project.relative_to(REPO) for project in projects)])
    finally:
        shutil.rmtree(copy)
    return out


def build_plugins() -> list[Path]:
    """The folders of the meson and CMake plugin distributions (``build_plugins/*``)."""
    return sorted(p for p in (REPO / "build_plugins").iterdir() if (p / "pyproject.toml").exists())
