"""Choose, per project, the wheel a target interpreter should install, as pip would choose it.

pip ranks the wheels it may install by ``(version, tag priority, build tag)``, where a wheel's
tag priority is the position of its best tag in the interpreter's ``packaging.tags.sys_tags()``.
That order depends on the *target* (free-threaded or not, glibc version, architecture), so
the target computes its own tags, once, with the ``packaging`` this toolkit imports; the
ranking itself (``rank_wheels``) is a pure function of wheel file names and that tag list.

``require_declared`` then walks each project's ranking from the top and drops wheels whose
extension modules would re-enable the GIL, reading only as many wheels as it takes to find one
that qualifies: the next-best wheel, often the pure ``none-any`` one, takes the dropped one's place.
"""

from __future__ import annotations

import enum
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from typing import Any, Iterable, Optional, Sequence

import packaging
from packaging.tags import Tag
from packaging.utils import BuildTag, InvalidWheelFilename, NormalizedName, parse_wheel_filename
from packaging.version import Version

from nogil_toolkit.abi import abi_is_free_threaded
from nogil_toolkit.console import plural
from nogil_toolkit.inspect import Verdict
from nogil_toolkit.target import TargetError, ask_target
from nogil_toolkit.wheel.reading import WheelError, WheelModule, read_wheel

SCHEMA_VERSION = 1

# Run by the target with -I -S: no environment variables, no user site and no ``site`` (so no
# ``.pth`` code runs and the target's own, possibly older, ``packaging`` cannot shadow ours).
# Our directory is appended, not prepended, so nothing in it can shadow the standard library.
_TAGS_SCRIPT = r"""
import json, sys, sysconfig
sys.path.append(sys.argv[1])
import packaging
from packaging import tags
print(json.dumps({
    "executable": sys.executable,
    "implementation": sys.implementation.name,
    "version": list(sys.version_info[:3]),
    "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "packaging": packaging.__version__,
    "tags": [[t.interpreter, t.abi, t.platform] for t in tags.sys_tags()],
}))
"""

_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalPy"}


class SelectError(Exception):
    """Bad input (a path, a file name, the target interpreter, the link directory); the message says which."""


@dataclass(frozen=True)
class TargetTags:
    """The tags a target interpreter installs, most preferred first, and what it is."""

    executable: str
    implementation: str
    version: tuple[int, int, int]
    free_threaded: bool
    packaging_version: str
    """The ``packaging`` that computed ``tags`` (ours); pip uses its vendored copy."""
    tags: tuple[Tag, ...]

    @property
    def name(self) -> str:
        """``CPython 3.13t``: how reasons name the target."""
        implementation = _IMPLEMENTATIONS.get(self.implementation, self.implementation)
        return f"{implementation} {self.version[0]}.{self.version[1]}{'t' if self.free_threaded else ''}"


@dataclass(frozen=True)
class WheelCandidate:
    """A wheel file, known by its name only: everything ranking needs."""

    path: str
    filename: str
    project: NormalizedName
    version: Version
    build: BuildTag
    tags: frozenset[Tag]

    @property
    def pure(self) -> bool:
        """Tagged for any platform: it carries no extension module a target could load."""
        return all(tag.platform == "any" for tag in self.tags)


@dataclass(frozen=True)
class RankedWheel:
    """A wheel the target supports, with the position of its best tag in the target's list."""

    wheel: WheelCandidate
    priority: int
    """0 is the target's most preferred tag."""
    best_tag: Tag


class DropKind(enum.Enum):
    """Why a wheel was not chosen."""

    UNSUPPORTED = "unsupported"
    """None of its tags is among the target's."""
    PRERELEASE = "pre-release"
    """A pre-release, and a final release is available (pip's default)."""
    NOT_DECLARED = "not-declared"
    """``--require-declared``: an extension module would re-enable the GIL."""
    UNREADABLE = "unreadable"
    """``--require-declared`` had to read it and could not."""
    OUTRANKED = "outranked"
    """Supported, but another wheel of the project ranks higher."""


@dataclass(frozen=True)
class ModuleProblem:
    """An extension module that keeps a wheel from qualifying under ``--require-declared``."""

    module: str
    member: str
    verdict: Verdict
    detail: str


@dataclass(frozen=True)
class Rejection:
    wheel: WheelCandidate
    kind: DropKind
    reason: str
    modules: tuple[ModuleProblem, ...] = ()


@dataclass(frozen=True)
class ProjectChoice:
    """One project's wheels: the eligible ones in pip's order, and the ones dropped on the way."""

    project: NormalizedName
    ranked: tuple[RankedWheel, ...]
    """Supported and eligible, best first; the first is the choice."""
    rejected: tuple[Rejection, ...]

    @property
    def chosen(self) -> Optional[RankedWheel]:
        return self.ranked[0] if self.ranked else None

    def dropped(self, target: TargetTags) -> tuple[Rejection, ...]:
        """Every wheel not chosen, each with its reason, in the order they were dropped."""
        outranked = tuple(Rejection(r.wheel, DropKind.OUTRANKED, _outranked_reason(r, self.ranked[0], target))
                          for r in self.ranked[1:])
        return self.rejected + outranked


@dataclass(frozen=True)
class Selection:
    target: TargetTags
    projects: tuple[ProjectChoice, ...]
    """Sorted by project name."""

    @property
    def chosen(self) -> tuple[RankedWheel, ...]:
        return tuple(p.chosen for p in self.projects if p.chosen is not None)

    @property
    def unsatisfied(self) -> tuple[NormalizedName, ...]:
        return tuple(p.project for p in self.projects if p.chosen is None)


def wheel_candidate(path: str) -> WheelCandidate:
    """The candidate for one wheel path; raises ``InvalidWheelFilename``."""
    filename = os.path.basename(path)
    project, version, build, tags = parse_wheel_filename(filename)
    return WheelCandidate(path, filename, project, version, build, tags)


def collect_wheels(arguments: Iterable[str]) -> tuple[list[WheelCandidate], list[str]]:
    """The wheels named by ``arguments`` (files, and ``*.whl`` directly inside directories).

    Returns the candidates and warnings about files skipped. A named file that does not exist
    or is not a wheel raises ``SelectError``; a badly named ``*.whl`` inside a directory is
    skipped with a warning, as pip's ``--find-links`` skips it. Two files with the same name
    are the same wheel to pip (and would collide in a link directory): the first one given wins.
    """
    candidates: dict[str, WheelCandidate] = {}
    warnings: list[str] = []

    def add(path: str, named: bool) -> None:
        try:
            candidate = wheel_candidate(path)
        except InvalidWheelFilename as exc:
            if named:
                raise SelectError(f"not a wheel file name: {exc}", path) from None
            warnings.append(f"{path}: skipped, not a valid wheel file name ({exc})")
            return
        first = candidates.setdefault(candidate.filename, candidate)
        if first is not candidate and not os.path.samefile(first.path, path):
            warnings.append(f"{path}: skipped, same file name as {first.path} (given first)")

    for argument in arguments:
        if os.path.isdir(argument):
            for entry in _wheel_entries(argument):
                try:
                    regular = entry.is_file()
                except OSError as exc:  # a symlink loop (ELOOP): pip's --find-links skips it too
                    warnings.append(f"{entry.path}: skipped, cannot be read ({exc.strerror})")
                    continue
                if regular:
                    add(entry.path, named=False)
                else:  # a FIFO would block whoever opens it; pip's --find-links skips it too
                    warnings.append(f"{entry.path}: skipped, not a regular file")
        elif os.path.isfile(argument):
            add(argument, named=True)
        elif os.path.exists(argument):
            raise SelectError("not a regular file or directory (a FIFO, socket or device), so not read", argument)
        else:
            raise SelectError("no such file or directory", argument)
    return list(candidates.values()), warnings


def _wheel_entries(folder: str) -> list[os.DirEntry[str]]:
    """The ``*.whl`` entries directly in ``folder``, by name; ``SelectError`` if it cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return sorted((e for e in entries if e.name.endswith(".whl")), key=lambda e: e.name)
    except OSError as exc:
        raise SelectError(f"cannot list the directory: {exc.strerror}", folder) from None


def query_target_tags(python: str, timeout: float = 60) -> TargetTags:
    """Ask ``python`` for its supported tags, in its order of preference, in one subprocess.

    The target runs ``packaging.tags.sys_tags()`` itself because only it knows its ABI flags,
    its libc and its platform; the ``packaging`` it runs is ours, so the answer does not depend
    on what is installed in the target.
    """
    packaging_parent = os.path.dirname(os.path.dirname(os.path.abspath(packaging.__file__)))
    try:
        data = ask_target(python, _TAGS_SCRIPT, packaging_parent, timeout=timeout)
        return TargetTags(
            executable=data["executable"], implementation=data["implementation"],
            version=tuple(data["version"]),  # type: ignore[arg-type]
            free_threaded=data["free_threaded"], packaging_version=data["packaging"],
            tags=tuple(Tag(*tag) for tag in data["tags"]),
        )
    except TargetError as exc:
        raise SelectError(f"cannot compute the target's wheel tags: {exc}", python) from None
    except (KeyError, TypeError) as exc:
        raise SelectError(f"the interpreter answered unexpectedly: {exc}", python) from None


def rank_wheels(wheels: Iterable[WheelCandidate], target: TargetTags, *,
                allow_prereleases: bool = False) -> Selection:
    """Group ``wheels`` by project and rank each group as pip's ``CandidateEvaluator`` does.

    Unsupported wheels are dropped with the component (interpreter, ABI, platform) the target
    lacks. Pre-releases are dropped when the project has a supported final release, unless
    ``allow_prereleases`` (pip's ``--pre``). The rest sort by highest version, then best tag,
    then highest build tag; among equals the wheel given first wins, as with pip's ``max``.
    """
    priorities: dict[Tag, int] = {}
    for index, tag in enumerate(target.tags):
        priorities.setdefault(tag, index)
    groups: dict[NormalizedName, list[WheelCandidate]] = {}
    for wheel in wheels:
        groups.setdefault(wheel.project, []).append(wheel)

    projects = []
    for project, group in sorted(groups.items()):
        supported: list[RankedWheel] = []
        rejected: list[Rejection] = []
        for wheel in group:
            priority = min((priorities[tag] for tag in wheel.tags if tag in priorities), default=None)
            if priority is None:
                rejected.append(Rejection(wheel, DropKind.UNSUPPORTED, explain_unsupported(wheel.tags, target)))
            else:
                supported.append(RankedWheel(wheel, priority, target.tags[priority]))
        if not allow_prereleases and any(not r.wheel.version.is_prerelease for r in supported):
            for ranked in [r for r in supported if r.wheel.version.is_prerelease]:
                supported.remove(ranked)
                rejected.append(Rejection(
                    ranked.wheel, DropKind.PRERELEASE,
                    f"pre-release {ranked.wheel.version}: a final release is available, and pip then "
                    f"skips pre-releases (--pre includes them)"))
        # sorted(reverse=True) keeps equal keys in input order: the wheel given first wins.
        supported.sort(key=lambda r: (r.wheel.version, -r.priority, r.wheel.build), reverse=True)
        projects.append(ProjectChoice(project, tuple(supported), tuple(rejected)))
    return Selection(target, tuple(projects))


def explain_unsupported(tags: frozenset[Tag], target: TargetTags) -> str:
    """Which part of a wheel's tags the target lacks: ``cp311 ABI not supported by CPython 3.13t``.

    A part is named when none of the wheel's values for it is supported (compressed tag sets
    such as ``manylinux_2_17_x86_64.manylinux2014_x86_64`` fail only if every value fails).
    """
    missing = []
    for part, label in (("interpreter", "interpreter"), ("abi", "ABI"), ("platform", "platform")):
        offered = sorted({getattr(tag, part) for tag in tags})
        if not {getattr(tag, part) for tag in target.tags} & set(offered):
            missing.append((part, f"{'/'.join(offered)} {label}" if part != "platform"
                            else f"platform {'/'.join(offered)}"))
    if not missing:
        shown = ", ".join(sorted(str(t) for t in tags))
        return f"no tag of this wheel ({shown}) is among the {len(target.tags)} tags {target.name} supports"
    hints = []
    parts = {part for part, _ in missing}
    # abi3t (PEP 803) comes from packaging's own tags (26.x yields it for free-threaded builds);
    # only the explanation is ours. Its gap: it offers cp3X-abi3t down to cp32 to 3.13t/3.14t,
    # which have no ".abi3t.so" suffix; ``wheel verify`` warns about such tags.
    if "abi" in parts and target.free_threaded and any(tag.abi == "abi3" for tag in tags):
        hints.append("free-threaded CPython cannot load stable-ABI (abi3) modules; from 3.15 on it loads "
                     "the free-threaded stable ABI, abi3t (PEP 803)")
    elif "abi" in parts and not target.free_threaded and any(tag.abi == "abi3t" for tag in tags):
        hints.append("abi3t is the free-threaded stable ABI; a CPython with the GIL installs a wheel's abi3 tag")
    elif "abi" in parts and target.free_threaded and any(abi_is_free_threaded(tag.abi) is False for tag in tags):
        hints.append("built for a CPython with the GIL")
    elif "abi" in parts and not target.free_threaded and any(abi_is_free_threaded(tag.abi) for tag in tags):
        hints.append("built for a free-threaded CPython")
    if "platform" in parts and target.tags:
        hints.append(f"its most preferred platform is {target.tags[0].platform}")
    hint = f" ({'; '.join(hints)})" if hints else ""
    return f"{' and '.join(text for _, text in missing)} not supported by {target.name}{hint}"


def _outranked_reason(ranked: RankedWheel, chosen: RankedWheel, target: TargetTags) -> str:
    """Why pip prefers ``chosen``: the first of version, tag priority and build tag that differs."""
    if ranked.wheel.version != chosen.wheel.version:
        return f"version {ranked.wheel.version} is older than the chosen {chosen.wheel.version}"
    if ranked.priority != chosen.priority:
        return (f"its best tag {ranked.best_tag} is preference {ranked.priority + 1} of {len(target.tags)} for "
                f"{target.name}; the chosen wheel's {chosen.best_tag} is preference {chosen.priority + 1}")
    if ranked.wheel.build != chosen.wheel.build:
        return f"build tag {_build_text(ranked.wheel.build) or 'none'} is lower than the chosen " \
               f"{_build_text(chosen.wheel.build)}"
    return f"ranks equal to {chosen.wheel.filename}, which was given first"


def _build_text(build: BuildTag) -> Optional[str]:
    return f"{build[0]}{build[1]}" if build else None


def require_declared(selection: Selection) -> Selection:
    """Drop, from the top of each ranking, wheels with a module that would re-enable the GIL.

    A wheel qualifies when every importable extension module in it declares
    ``Py_MOD_GIL_NOT_USED``; pure wheels qualify without being read. Each ranking is walked
    only until a wheel qualifies, so lower-ranked wheels are never read. A wheel that cannot be
    read is dropped as ``UNREADABLE`` and the walk goes on.
    """
    projects = []
    for project in selection.projects:
        ranked = list(project.ranked)
        rejected = list(project.rejected)
        while ranked and not ranked[0].wheel.pure:
            wheel = ranked[0].wheel
            try:
                problems = declaration_problems(read_wheel(wheel.path).modules)
            except WheelError as exc:
                rejected.append(Rejection(wheel, DropKind.UNREADABLE, str(exc)))
                ranked.pop(0)
                continue
            if not problems:
                break
            rejected.append(Rejection(wheel, DropKind.NOT_DECLARED,
                                      f"{plural(len(problems), 'extension module')} not known to declare Py_MOD_GIL_NOT_USED",
                                      problems))
            ranked.pop(0)
        projects.append(replace(project, ranked=tuple(ranked), rejected=tuple(rejected)))
    return replace(selection, projects=tuple(projects))


def declaration_problems(modules: Sequence[WheelModule]) -> tuple[ModuleProblem, ...]:
    """The importable modules whose verdict is not ``NOT_USED``.

    Binaries whose import name is not an identifier path (helper libraries) cannot be imported.
    A binary that could not be read at all is kept (``UNKNOWN``) even without a recognised
    ``PyInit_*``: not knowing is not a declaration.
    """
    problems = []
    for module in modules:
        verdict = module.inspection.verdict
        if module.module is None or verdict in (Verdict.NOT_USED, Verdict.NOT_A_MODULE):
            continue
        problems.append(ModuleProblem(module.module, module.member, verdict, _verdict_detail(module)))
    return tuple(sorted(problems, key=lambda p: p.module))


def _verdict_detail(module: WheelModule) -> str:
    inspection = module.inspection
    meaning = {
        Verdict.UNDECLARED: "declares nothing, so CPython re-enables the GIL when it is imported",
        Verdict.USED: "declares Py_MOD_GIL_USED",
        Verdict.UNKNOWN: "its declaration could not be read",
    }[inspection.verdict]
    evidence = inspection.reason or (inspection.evidence[0].detail if inspection.evidence else None)
    return f"{inspection.verdict.value}: {meaning}" + (f" ({evidence})" if evidence else "")


def link_wheels(wheels: Sequence[WheelCandidate], directory: str, *, copy: bool = False) -> list[str]:
    """Make ``directory`` a ``--find-links`` source holding exactly ``wheels``; returns the entries.

    Each wheel is symlinked (absolute target) or copied. Any other ``*.whl`` already there is
    refused, because pip would consider it too and might install it instead. Entries of the
    same name are replaced atomically, so running the same selection again is harmless; an entry
    that already is the wheel (the directory is where the wheel lives) is left alone. A directory
    that cannot be made or written (under a file, not ours) is a ``SelectError`` naming it.
    """
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise SelectError("exists and is not a directory", directory)
    names = {wheel.filename for wheel in wheels}
    strangers = [e.name for e in _wheel_entries(directory) if e.name not in names] \
        if os.path.isdir(directory) else []
    if strangers:
        raise SelectError(f"already holds other wheels that pip --find-links would also consider: "
                          f"{', '.join(strangers)}; use a new or empty directory", directory)
    try:
        return _fill(directory, wheels, copy)
    except OSError as exc:
        raise SelectError(f"cannot place the chosen wheels there: {exc.strerror or exc}", directory) from None


def _fill(directory: str, wheels: Sequence[WheelCandidate], copy: bool) -> list[str]:
    """Link or copy each of ``wheels`` into ``directory``, made if need be; returns the entries."""
    os.makedirs(directory, exist_ok=True)
    entries = []
    for wheel in wheels:
        entry = os.path.join(directory, wheel.filename)
        entries.append(entry)
        already_there = os.path.exists(entry) and os.path.samefile(entry, wheel.path)
        # A symlink to the wheel is kept unless a copy was asked for; the wheel itself always is.
        if already_there and not (copy and os.path.islink(entry)):
            continue
        _place(wheel.path, entry, copy)
    return entries


def _place(source: str, entry: str, copy: bool) -> None:
    """Symlink or copy ``source`` to ``entry`` through a temporary name, replacing ``entry``."""
    folder = os.path.dirname(entry) or "."
    handle, temporary = tempfile.mkstemp(prefix=".select-", suffix=".tmp", dir=folder)
    os.close(handle)
    try:
        if copy:
            shutil.copy2(source, temporary)
        else:
            os.unlink(temporary)
            os.symlink(os.path.abspath(source), temporary)
        os.replace(temporary, entry)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise


def selection_json(selection: Selection, *, require_declared: bool, allow_prereleases: bool,
                   link_dir: Optional[str], links: Sequence[str]) -> dict[str, Any]:
    """The ``--format json`` document, described by ``wheel_select.schema.json``."""
    target = selection.target
    return {
        "schema_version": SCHEMA_VERSION,
        "target": {
            "executable": target.executable,
            "name": target.name,
            "implementation": target.implementation,
            "version": list(target.version),
            "free_threaded": target.free_threaded,
            "packaging_version": target.packaging_version,
            "tag_count": len(target.tags),
            "most_preferred_tags": [str(tag) for tag in target.tags[:5]],
            "interpreters": list(dict.fromkeys(tag.interpreter for tag in target.tags)),
            "abis": list(dict.fromkeys(tag.abi for tag in target.tags)),
            "platforms": list(dict.fromkeys(tag.platform for tag in target.tags)),
        },
        "options": {"require_declared": require_declared, "pre": allow_prereleases, "link_dir": link_dir},
        "projects": [
            {
                "name": project.project,
                "chosen": None if project.chosen is None else _ranked_json(project.chosen),
                "rejected": [_rejection_json(r) for r in project.dropped(target)],
            }
            for project in selection.projects
        ],
        "unsatisfied": list(selection.unsatisfied),
        "links": list(links),
    }


def _wheel_json(wheel: WheelCandidate) -> dict[str, Any]:
    return {
        "path": wheel.path,
        "filename": wheel.filename,
        "version": str(wheel.version),
        "build": _build_text(wheel.build),
        "tags": sorted(str(tag) for tag in wheel.tags),
    }


def _ranked_json(ranked: RankedWheel) -> dict[str, Any]:
    return {**_wheel_json(ranked.wheel), "best_tag": str(ranked.best_tag), "priority": ranked.priority}


def _rejection_json(rejection: Rejection) -> dict[str, Any]:
    return {
        **_wheel_json(rejection.wheel),
        "kind": rejection.kind.value,
        "reason": rejection.reason,
        "modules": [{"module": p.module, "member": p.member, "verdict": p.verdict.value, "detail": p.detail}
                    for p in rejection.modules],
    }
