"""Every extension file an interpreter can import, with its module name and distribution.

Reads directories and metadata only: ``.dist-info/RECORD`` (and ``.egg-info`` file lists)
through ``importlib.metadata`` for ownership, the path lines of ``.pth`` files and the static
``MAPPING`` of setuptools' editable finders for editable installs. Nothing installed is
imported or run.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional

from nogil_toolkit.abi import AbiStatus, ExtensionName, classify, dotted_module_name, is_extension_file, is_identifier
from nogil_toolkit.target import TargetInterpreter

if TYPE_CHECKING:
    from importlib import metadata

_SKIPPED_DIRS = ("__pycache__",)
# RECORD lines (path,hash,size) worth resolving: extension files, .pth files, editable finders.
_OWNED_LINE = re.compile(r"(\.so|\.pyd|\.pth|__editable__[^,]*)(,|$)")


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class ExtensionFile:
    """One shared library found on the target's path."""

    path: str
    module: Optional[str]
    """Dotted import name; None when no import can reach the file (``numpy.libs/libx.so``)."""
    abi: ExtensionName
    distribution: Optional[Distribution]
    shadowed_by: Optional[str] = None
    """Path of the file the import system loads instead of this one."""

    @property
    def importable(self) -> bool:
        return self.module is not None and self.shadowed_by is None and self.abi.status is AbiStatus.LOADABLE


@dataclass(frozen=True)
class _Root:
    """A folder on the path; ``package`` is the dotted prefix of an editable mapping."""

    folder: str
    package: str = ""
    owner: Optional[Distribution] = None


def find_extensions(target: TargetInterpreter, folders: list[str], owners: Optional[dict[str, Distribution]] = None,
                    scanned: Optional[list[str]] = None) -> list[ExtensionFile]:
    """Extension files under ``folders`` (in import order), with ownership and shadowing.

    ``owners`` is :func:`find_owners` of the same folders, when the caller has it cached: it
    is most of a scan's time. ``scanned``, if given, receives every folder listed and every
    file read (and every path looked for), so that a cache of the answer can be checked
    against their mtimes: the answer cannot change while none of them does."""
    owners = find_owners(folders) if owners is None else owners
    roots = list(_expand_roots(folders, owners, scanned))
    found: list[ExtensionFile] = []
    for order, root in enumerate(roots):
        for path, relative in _walk(root.folder, (), scanned):
            abi = classify(os.path.basename(path), target)
            module = dotted_module_name([*filter(None, root.package.split(".")), *relative, abi.module_basename])
            found.append(ExtensionFile(path, module, abi, owners.get(path, root.owner)))
    return _mark_shadowed(found, target)


def _walk(folder: str, parts: tuple[str, ...] = (),
          scanned: Optional[list[str]] = None) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(path, package parts below the root) of every extension-looking file an import can reach.

    Folders that are not identifiers (``numpy.libs``, ``*.dist-info``, ``__pycache__``) cannot
    be packages, so what they hold is never imported as a module and is not walked."""
    if scanned is not None:
        scanned.append(folder)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if is_dir:
            if is_identifier(name) and name not in _SKIPPED_DIRS:
                yield from _walk(entry.path, (*parts, name), scanned)
        elif is_extension_file(name):
            yield entry.path, parts


def _mark_shadowed(found: list[ExtensionFile], target: TargetInterpreter) -> list[ExtensionFile]:
    """The first folder on the path wins; inside one folder the suffix order of the importer."""
    priority = {suffix: index for index, suffix in enumerate(target.extension_suffixes)}
    winners: dict[str, ExtensionFile] = {}
    for entry in found:
        if entry.module is None or entry.abi.suffix not in priority:
            continue
        best = winners.get(entry.module)
        same_folder = best is not None and os.path.dirname(best.path) == os.path.dirname(entry.path)
        if best is None or (same_folder and priority[entry.abi.suffix] < priority[best.abi.suffix]):
            winners[entry.module] = entry
    result = []
    for entry in found:
        winner = winners.get(entry.module) if entry.module else None
        if winner is not None and winner is not entry:
            entry = ExtensionFile(entry.path, entry.module, entry.abi, entry.distribution, shadowed_by=winner.path)
        result.append(entry)
    return result


def find_owners(folders: list[str]) -> dict[str, Distribution]:
    """Real path of each extension file (and ``.pth``) a distribution lists → that distribution.

    RECORD is scanned as text: building a path object for each of its lines (what
    ``Distribution.files`` does) costs more than the rest of the scan together, and only the
    few lines naming extension files matter. Metadata is parsed only for their owners."""
    from importlib import metadata  # costs more to import than the rest of a cached check

    owners: dict[str, Distribution] = {}
    for dist in metadata.distributions(path=folders):
        record = dist.read_text("RECORD")
        if record is not None:
            wanted = [line.rsplit(",", 2)[0] for line in record.splitlines() if _OWNED_LINE.search(line)]
        else:  # .egg-info: its file lists are relative to other folders; the slow path is rare
            wanted = [str(f) for f in dist.files or () if _OWNED_LINE.search(str(f))]
        if not wanted:
            continue
        name, version = _name_and_version(dist)
        owner = Distribution(name or "<unnamed>", version)
        for relative in wanted:
            owners.setdefault(os.path.realpath(dist.locate_file(relative.strip('"'))), owner)
    return owners


def _name_and_version(dist: metadata.Distribution) -> tuple[Optional[str], Optional[str]]:
    """``Name`` and ``Version`` as ``dist.metadata`` gives them, read from the header lines only.

    ``dist.metadata`` runs the email parser over the whole file, long description included,
    and ``dist.version`` does it again: most of a warm re-check's time. Both headers come
    before the first blank line, so only that part is read; anything unusual (a header
    missing, folded or malformed) falls back to ``dist.metadata``.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    headers = _leading_headers(text, ("name", "version")) if text else None
    if headers is not None and len(headers) == 2:
        return headers["name"], headers["version"]
    return dist.metadata["Name"], dist.version


def _leading_headers(text: str, wanted: tuple[str, ...]) -> Optional[dict[str, str]]:
    """The first value of each ``wanted`` header (lower-case names) before the first blank
    line, as the email parser's compat32 policy returns it; ``None`` when one of them is
    folded or a line is not a ``Name: value`` header, so that the caller asks the parser."""
    found: dict[str, str] = {}
    keeping = False  # whether the previous header line gave one of the kept values
    # Only the header block is split into lines: the long description can be large.
    ends = [i for i in (text.find("\n\n"), text.find("\n\r\n")) if i >= 0]
    for line in text[:min(ends) if ends else len(text)].split("\n"):
        line = line.rstrip("\r")
        if not line:
            break
        if line[0] in " \t":  # a folded value continues the previous header
            if keeping:
                return None
            continue
        if len(found) == len(wanted):
            break
        key, colon, value = line.partition(":")
        if not colon:
            return None
        key = key.lower()
        keeping = key in wanted and key not in found
        if keeping:
            found[key] = value.lstrip(" \t")
    return found


def _expand_roots(folders: list[str], owners: dict[str, Distribution],
                  scanned: Optional[list[str]] = None) -> Iterator[_Root]:
    """The folders, each followed by what its ``.pth`` files add, as ``site`` would add it."""
    seen = set(folders)
    for folder in folders:
        yield _Root(folder)
        try:
            pth_files = sorted(n for n in os.listdir(folder) if n.endswith(".pth"))
        except OSError:
            continue
        for name in pth_files:
            pth = os.path.join(folder, name)
            owner = owners.get(os.path.realpath(pth))
            if scanned is not None:
                scanned.append(pth)
            for root in _pth_roots(folder, pth, owner, scanned):
                if root.package or root.folder not in seen:
                    seen.add(root.folder)
                    yield root


def _pth_roots(folder: str, pth: str, owner: Optional[Distribution],
               scanned: Optional[list[str]] = None) -> Iterator[_Root]:
    try:
        with open(pth, encoding="utf-8", errors="replace") as stream:
            lines = stream.read().splitlines()
    except OSError:
        return
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("import ", "import\t")):
            # Executable lines are never run; setuptools' editable finders are read instead.
            yield from _editable_finder_roots(folder, line, owner, scanned)
            continue
        path = os.path.realpath(os.path.join(folder, line))
        if scanned is not None:
            scanned.append(path)
        if os.path.isdir(path):
            yield _Root(path, owner=owner)


def _editable_finder_roots(folder: str, line: str, owner: Optional[Distribution],
                           scanned: Optional[list[str]] = None) -> Iterator[_Root]:
    match = re.match(r"import\s+(__editable___[A-Za-z0-9_]+_finder)\b", line)
    if not match:
        return
    import ast  # only editable installs need it

    finder = os.path.join(folder, match.group(1) + ".py")
    if scanned is not None:
        scanned.append(finder)
    try:
        with open(finder, encoding="utf-8") as stream:
            tree = ast.parse(stream.read(), finder)
    except (OSError, SyntaxError, ValueError):
        return
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "MAPPING" and node.value is not None:
            try:
                mapping = ast.literal_eval(node.value)
            except ValueError:
                return
            for package, path in mapping.items():
                if isinstance(package, str) and isinstance(path, str) and scanned is not None:
                    scanned.append(path)
                if isinstance(package, str) and isinstance(path, str) and os.path.isdir(path):
                    yield _Root(os.path.realpath(path), package, owner)
