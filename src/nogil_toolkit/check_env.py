"""The environment check as a library: from extension files to judged verdicts.

Two entry points, one mechanism and one cache:

:func:`resolve_modules`
    Files → (static inspection, import probe) for each. A file whose identity (path, size,
    mtime, inode) is in the verdict cache is not read again; the others are inspected (in
    forked workers when there are many, in this process for a few); optionally the
    undecided ones (or all) are probed, one fresh subprocess of the target each, and the
    conclusive answers are cached with the file's identity. It keeps no state of its own,
    so a caller holding one lock around a call (:mod:`nogil_toolkit.guard`, for one file at
    import time) needs nothing more. ``nogil-check-env`` and the guard both go through it, so
    what one learns the other reuses.

:func:`check_environment`
    One :class:`CheckRequest` → :class:`CheckOutcome`: the target's facts (cached), every
    extension file it can import, :func:`resolve_modules`, then the mode and policy of
    :func:`nogil_toolkit.check.check`. ``nogil-check-env`` parses arguments, calls it and
    prints; bad input raises :class:`CheckEnvError` with a one-line message.

What the mode and allowlist make of a file is :func:`nogil_toolkit.check.judge`, for a whole
environment :func:`nogil_toolkit.check.check`.
"""

from __future__ import annotations

import enum
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional, Protocol, Sequence

from nogil_toolkit.cache import CheckCache
from nogil_toolkit.cache_location import default_cache_dir
from nogil_toolkit.check import CheckResult, Mode, check
from nogil_toolkit.environment import Distribution, ExtensionFile, find_extensions, find_owners, scanned_folders
from nogil_toolkit.inspect.verdict import ModuleInspection, Verdict
from nogil_toolkit.probe import ProbeResult, probe_modules
from nogil_toolkit.target import TargetError, TargetInterpreter, interpreter_identity, query_target, search_path

if TYPE_CHECKING:
    from nogil_toolkit.config import AllowRule

Progress = Callable[[str], None]
"""Receives short progress lines ("inspecting 100/344"); the CLI rewrites one stderr line."""


class CheckEnvError(Exception):
    """The request cannot be carried out (no such interpreter, folder; probe on a GIL build).
    The message is one line, naming what was given."""


class ProbeChoice(enum.Enum):
    """Which modules the import probe loads (it runs their code)."""

    NONE = "none"
    UNDECIDED = "undecided"
    """Only those static reading could not decide: a conclusive probe decides them."""
    ALL = "all"
    """Every importable module, confirming each static verdict."""


class ModuleFile(Protocol):
    """What :func:`resolve_modules` needs to know about a file (``ExtensionFile`` has it)."""

    @property
    def path(self) -> str: ...

    @property
    def module(self) -> Optional[str]:
        """Dotted import name; files without one are never probed."""

    @property
    def importable(self) -> bool:
        """Whether the target would import this file under ``module`` (never probe otherwise)."""


class ProbeSettings(NamedTuple):
    """How to probe: with which interpreter, which modules, with what on its path."""

    python: str
    """A free-threaded interpreter: the target's own executable."""
    which: ProbeChoice = ProbeChoice.UNDECIDED
    extra_paths: tuple[str, ...] = ()
    """Folders put before the target's path, as ``--path`` does."""
    timeout: float = 30


class Resolution(NamedTuple):
    """What is known about one file: its static inspection and, if any, its import probe."""

    inspection: Optional[ModuleInspection]
    """None only when the file could not even be looked at (it vanished while checked)."""
    probe: Optional[ProbeResult] = None
    inspection_cached: bool = False
    probe_cached: bool = False
    """The probe result is a cached one: no module code ran for it in this call."""


class ResolveCounts:
    """What a call of :func:`resolve_modules` cost: the caller adds these up."""

    def __init__(self) -> None:
        self.from_cache = 0
        """Inspections taken from the cache."""
        self.inspected = 0
        """Binaries read in this call."""
        self.probed = 0
        """Probes run in this call (each one a subprocess that ran module code)."""
        self.probes_from_cache = 0


def needs_probe(file: ModuleFile, inspection: Optional[ModuleInspection], which: ProbeChoice) -> bool:
    """Whether ``which`` asks for this file to be probed: importable modules only, and for
    ``UNDECIDED`` only those the inspector could not decide."""
    if which is ProbeChoice.NONE or not file.importable or inspection is None:
        return False
    if which is ProbeChoice.ALL:
        return inspection.verdict is not Verdict.NOT_A_MODULE
    return inspection.verdict is Verdict.UNKNOWN


def resolve_modules(files: Sequence[ModuleFile], cache: Optional[CheckCache], *, jobs: int = 1,
                    probe: Optional[ProbeSettings] = None, progress: Optional[Progress] = None,
                    counts: Optional[ResolveCounts] = None,
                    python: Optional[tuple[int, ...]] = None) -> list[Resolution]:
    """One :class:`Resolution` per file, in order.

    Cached inspections and cached conclusive probes are used whatever ``probe`` asks, so a
    module once settled by a probe stays settled without running its code again (until the
    file changes). Reads and probes go to the cache as they are made; saving it is the
    caller's (:meth:`CheckCache.save`), once, when the batch is done. ``jobs`` > 1 lets many
    uncached files be read by forked workers and several probes run at once; with one file
    nothing is forked and the inspection runs in this process. ``python`` is the target's
    version: from 3.15 on, export hooks (PEP 793) decide what a file is.
    """
    counts = counts if counts is not None else ResolveCounts()
    stats: dict[str, os.stat_result] = {}
    inspections: dict[str, Optional[ModuleInspection]] = {}
    probes: dict[str, ProbeResult] = {}
    todo: dict[str, Optional[str]] = {}  # path -> dotted module name; ordered, without repeats
    for file in files:
        if file.path in inspections or file.path in todo:
            continue
        try:
            stats[file.path] = os.stat(file.path)
        except OSError:
            pass  # the inspector reports why it cannot read the file
        entry = cache.lookup(file.path, stats[file.path]) if cache is not None and file.path in stats else None
        if entry is not None:
            inspections[file.path] = entry.inspection
            if entry.probe is not None:
                probes[file.path] = entry.probe
        else:
            todo[file.path] = file.module
    counts.from_cache += len(inspections)
    counts.probes_from_cache += len(probes)
    if todo:
        from nogil_toolkit.inspect.parallel import inspect_files

        # The full module name makes only that module's own marker count as evidence.
        fresh = inspect_files(list(todo), jobs, progress=_counter(progress, "inspecting"), modules=list(todo.values()),
                              python=python)
        counts.inspected += len(todo)
        for path, inspection in zip(todo, fresh):
            inspections[path] = inspection
            if cache is not None and path in stats:
                cache.store(path, stats[path], inspection)

    cached_probes = set(probes)
    if probe is not None:
        wanted = {f.path: f for f in files
                  if f.path not in probes and needs_probe(f, inspections.get(f.path), probe.which)}
        if wanted:
            ran = probe_modules(probe.python, wanted.values(), probe.extra_paths, probe.timeout, jobs,
                                progress=_counter(progress, "probing"))
            counts.probed += len(ran)
            probes.update(ran)
            for path, result in ran.items():
                # Only a conclusive answer is a property of the file: a timeout, a failed load
                # or another module blamed first may differ next time.
                if cache is not None and path in stats and result.needs_gil is not None:
                    cache.store_probe(path, stats[path], result)
    return [Resolution(inspections.get(f.path), probes.get(f.path), f.path not in todo, f.path in cached_probes)
            for f in files]


def _counter(progress: Optional[Progress], verb: str) -> Optional[Callable[[int, int], None]]:
    if progress is None:
        return None
    return lambda done, total: progress(f"{verb} {done}/{total}")


class CheckRequest(NamedTuple):
    """Everything ``nogil-check-env`` can be asked, as values."""

    python: Optional[str] = None
    """The target interpreter; None: the one running this code."""
    paths: tuple[str, ...] = ()
    """Extra folders, imported before site-packages (as ``PYTHONPATH`` would be)."""
    include_stdlib: bool = False
    mode: Optional[Mode] = None
    """None: ``nogil`` on a free-threaded target, ``gil`` otherwise."""
    allow: tuple[AllowRule, ...] = ()
    policy_source: Optional[str] = None
    """Where ``mode``/``allow`` came from (a pyproject.toml), shown in reports."""
    probe: ProbeChoice = ProbeChoice.NONE
    timeout: float = 30
    """Per-module probe timeout, in seconds."""
    jobs: int = 1
    use_cache: bool = True
    cache_dir: Optional[Path] = None
    """None: :func:`nogil_toolkit.cache_location.default_cache_dir`."""
    progress: Optional[Progress] = None


class ScanStats(NamedTuple):
    """How the check went: what was scanned, how long it took, what was reused."""

    folders: tuple[str, ...]
    files: int
    seconds: float
    cached: int
    """Inspections taken from the cache."""
    probed: int = 0
    """Import probes run (module code executed) in this check."""
    probes_cached: int = 0
    """Probe results taken from the cache instead of run again."""


class CheckOutcome(NamedTuple):
    result: CheckResult
    target: TargetInterpreter
    stats: ScanStats


def check_environment(request: CheckRequest) -> CheckOutcome:
    """Check the target's environment as ``request`` says. Raises :class:`CheckEnvError`."""
    started = time.perf_counter()
    try:
        identity = interpreter_identity(request.python)
    except OSError as exc:
        raise CheckEnvError(f"--python {request.python}: {exc.strerror or exc}") from None
    cache = CheckCache(request.cache_dir or default_cache_dir(), identity[0]) if request.use_cache else None
    target = _target(request.python, cache, [*identity, _pyvenv_stamp(request.python)])
    mode = request.mode or (Mode.NOGIL if target.free_threaded else Mode.GIL)
    if request.probe is not ProbeChoice.NONE and not target.free_threaded:
        raise CheckEnvError(f"--probe needs a free-threaded interpreter; {target.executable} is {target.name}")
    extra = tuple(os.path.realpath(p) for p in request.paths)
    missing = [p for p in extra if not os.path.isdir(p)]
    if missing:
        raise CheckEnvError(f"--path {missing[0]} is not a directory")
    folders = search_path(target, extra, request.include_stdlib)
    files = _extension_files(target, folders, cache)
    # Shadowed files are never imported, so they are neither read nor judged on content.
    readable = [f for f in files if f.shadowed_by is None]
    settings = (ProbeSettings(target.executable, request.probe, extra, request.timeout)
                if request.probe is not ProbeChoice.NONE else None)
    counts = ResolveCounts()
    try:
        resolved = dict(zip((f.path for f in readable),
                            resolve_modules(readable, cache, jobs=request.jobs, probe=settings,
                                            progress=request.progress, counts=counts,
                                            python=target.version[:2])))
    finally:
        if cache is not None:
            cache.forget_missing({f.path for f in files})
            cache.save()
    probes = {path: r.probe for path, r in resolved.items() if r.probe is not None}
    result = check(((f, resolved[f.path].inspection if f.path in resolved else None) for f in files),
                   mode, request.allow, probes, request.policy_source)
    # The folders counted include those the .pth files add.
    stats = ScanStats(tuple(scanned_folders(target, folders)), len(files), time.perf_counter() - started,
                      counts.from_cache,
                      counts.probed, counts.probes_from_cache)
    return CheckOutcome(result, target, stats)


def _target(python: Optional[str], cache: Optional[CheckCache], identity: list[object]) -> TargetInterpreter:
    if cache is not None:
        facts = cache.target_facts(identity)
        if facts is not None:
            return TargetInterpreter.from_json(facts)
    try:
        target = query_target(python, while_waiting=_load_readers)
    except TargetError as exc:
        raise CheckEnvError(str(exc)) from None
    if cache is not None:
        cache.store_target_facts(identity, target.to_json())
    return target


def _load_readers() -> None:
    """Import the binary readers while the target starts: a target asked (not found in the
    cache) means a first or a --no-cache check, which reads binaries next."""
    import nogil_toolkit.inspect.parallel  # noqa: F401


def _extension_files(target: TargetInterpreter, folders: list[str], cache: Optional[CheckCache]) -> list[ExtensionFile]:
    """The environment's extension files, from the cache while nothing the scan read changed.

    The scan reports every folder it listed and file it read; each one's mtime is kept with
    the answer. A file added, removed or renamed anywhere the scan looked changes its
    folder's mtime, so checking these (a stat each, no listing, no metadata) is enough."""
    key = [target.to_json(), folders]
    if cache is not None:
        entry = cache.scan(key)
        if entry is not None and all(_mtime(path) == mtime for path, mtime in entry[0]):
            return entry[1]
    started = time.time_ns()
    scanned: list[str] = []
    files = find_extensions(target, folders, _owners(folders, cache), scanned)
    stamps = [[path, _mtime(path)] for path in dict.fromkeys(scanned)]
    if cache is not None and not _changing(stamps, started):
        cache.store_scan(key, stamps, files)
    return files


def _mtime(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _changing(stamps: list[list[object]], started: int) -> bool:
    """Whether something was modified since the scan started, or within a second before:
    it may change again within the same mtime tick (racy-git's problem), so an answer read
    from it is not kept."""
    return any(isinstance(m, int) and m >= started - 1_000_000_000 for _, m in stamps)


def _owners(folders: list[str], cache: Optional[CheckCache]) -> dict[str, Distribution]:
    """Which distribution owns which file, from the cache while no site folder changed.

    Installing, removing or upgrading a distribution adds or renames its ``.dist-info``
    folder, which changes the mtime of the site folder holding it; that mtime is the key.
    Which files exist is never taken from here: the folders are walked on every run."""
    started = time.time_ns()
    stamp = [[folder, _mtime(folder)] for folder in folders]
    cached = cache.owners(stamp) if cache is not None else None
    if cached is not None:
        return cached
    owners = find_owners(folders)
    if cache is not None and not _changing(stamp, started):
        cache.store_owners(stamp, owners)
    return owners


def _pyvenv_stamp(python: Optional[str]) -> Optional[int]:
    """The venv's configuration decides which site-packages count: part of the facts' key."""
    folder = Path(python or sys.executable).absolute().parent
    for candidate in (folder / "pyvenv.cfg", folder.parent / "pyvenv.cfg"):
        try:
            return candidate.stat().st_mtime_ns
        except OSError:
            continue
    return None
