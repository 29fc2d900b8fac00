"""Install and remove the start-up hook that makes an environment honour ``NOGIL_MODE``.

Two files in the target's ``site-packages``: ``_nogil_toolkit_guard.py`` (the hook, a copy of
``bootstrap/_nogil_toolkit_guard.py`` that knows where this toolkit is, for environments that
do not have it installed) and ``00-nogil-toolkit-guard.pth``, whose one ``import`` line
``site`` runs at every start. The ``00-`` prefix sorts the ``.pth`` file before the usual
ones, so the guard is in place before other ``.pth`` files import anything.

Installing writes each file only when its content differs (atomically); uninstalling removes
both and the bytecode Python compiled from the hook, and nothing else.

``nogil-toolkit run`` needs no installation: it puts :func:`run_folder` first on ``PYTHONPATH``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import nogil_toolkit
from nogil_toolkit.target import TargetError, query_target

HOOK_MODULE = "_nogil_toolkit_guard"
PTH_FILE = "00-nogil-toolkit-guard.pth"
_TEMPLATE = Path(__file__).parent / "bootstrap" / f"{HOOK_MODULE}.py"
_TOOLKIT_LINE = "TOOLKIT = "


@dataclass(frozen=True)
class HookTarget:
    """Where the hook goes: the target interpreter's ``site-packages``."""

    site_packages: Path
    free_threaded: bool
    interpreter: str

    @property
    def files(self) -> tuple[Path, Path]:
        return self.site_packages / PTH_FILE, self.site_packages / f"{HOOK_MODULE}.py"


def hook_target(python: Optional[str]) -> HookTarget:
    """The first site-packages folder of ``python`` (default: this interpreter), the one its
    venv or ``pip install`` uses. Raises TargetError."""
    target = query_target(python)
    if not target.site_packages:
        raise TargetError(f"{target.executable} has no site-packages folder")
    return HookTarget(Path(target.site_packages[0]), target.free_threaded, target.name)


def hook_source() -> str:
    """The hook module's text, pointing at the folder that holds this ``nogil_toolkit``."""
    toolkit = os.path.dirname(os.path.dirname(os.path.abspath(nogil_toolkit.__file__)))
    lines = _TEMPLATE.read_text("utf-8").splitlines(keepends=True)
    return "".join(f"{_TOOLKIT_LINE}{toolkit!r}\n" if line.startswith(_TOOLKIT_LINE) else line for line in lines)


def install(target: HookTarget) -> list[Path]:
    """Write the hook; returns the files that changed (none when it was already installed)."""
    pth, module = target.files
    wanted = {module: hook_source(), pth: f"import {HOOK_MODULE}\n"}
    changed = []
    target.site_packages.mkdir(parents=True, exist_ok=True)
    for path, text in wanted.items():  # the module first: a .pth without it would fail at start
        try:
            if path.read_text("utf-8") == text:
                continue
        except (OSError, UnicodeDecodeError):
            pass
        _write_atomically(path, text)
        changed.append(path)
    return changed


def uninstall(target: HookTarget) -> list[Path]:
    """Remove the hook and its bytecode; returns what was removed."""
    pth, module = target.files
    cache = target.site_packages / "__pycache__"
    compiled = sorted(cache.glob(f"{HOOK_MODULE}.*.pyc")) if cache.is_dir() else []
    removed = []
    for path in (pth, module, *compiled):  # the .pth first: never a .pth without its module
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    if compiled:
        with contextlib.suppress(OSError):  # only when empty: it may hold other modules' bytecode
            cache.rmdir()
    return removed


def run_folder(cache_dir: Path) -> Path:
    """A folder for the front of ``PYTHONPATH`` holding links to ``sitecustomize.py``, the hook
    module and this ``nogil_toolkit`` package, created once under ``cache_dir``.

    The package link is what makes ``-W ignore::nogil_toolkit.guard.UndeclaredModuleWarning``
    work without a complaint: CPython resolves warning categories before ``site`` runs, when
    only ``PYTHONPATH`` and the standard library are importable. Links, not copies, so the
    folder follows an upgraded toolkit. Falls back to the package's own ``bootstrap`` folder
    (the guard works; such ``-W`` options then get CPython's "Invalid -W option ignored" line
    first) where links cannot be made."""
    package = Path(nogil_toolkit.__file__).resolve().parent
    bootstrap = package / "guard" / "bootstrap"
    links = {"sitecustomize.py": bootstrap / "sitecustomize.py",
             f"{HOOK_MODULE}.py": bootstrap / f"{HOOK_MODULE}.py", "nogil_toolkit": package}
    folder = cache_dir / "run" / hashlib.sha256(str(package).encode()).hexdigest()[:16]
    if all((folder / name).resolve() == source for name, source in links.items()):
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=".run-", dir=folder.parent))
        for name, source in links.items():
            (temp / name).symlink_to(source)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(folder)
        os.replace(temp, folder)
    except OSError:
        with contextlib.suppress(NameError, OSError):
            shutil.rmtree(temp)
        return bootstrap if not folder.is_dir() else folder
    return folder


def _write_atomically(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
