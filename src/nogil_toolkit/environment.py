"""Every extension file an interpreter can import, with its module name and distribution.

Reads directories and metadata only: ``.dist-info/RECORD`` (and ``.egg-info`` file lists) of
the distributions installed in each folder, for ownership; the path lines of ``.pth`` files
read as ``site`` reads them; and the static ``MAPPING`` of setuptools' editable finders for
editable installs. Nothing installed is imported or run.

Everything here is hostile input: a FIFO where a file should be (opening it would wait for a
writer forever), bytes in no encoding, folders nested thousands deep, symbolic link loops. Each
is read the way the import system and ``site`` treat it, never with a traceback or a hang.
"""

from __future__ import annotations

import io
import operator
import os
import re
import stat
from typing import Any, Iterator, NamedTuple, Optional

from nogil_toolkit.abi import AbiStatus, ExtensionName, classify, dotted_module_name, is_extension_file, is_identifier
from nogil_toolkit.regular_file import read_regular
from nogil_toolkit.target import TargetInterpreter

_SKIPPED_DIRS = ("__pycache__",)
_NAME = operator.attrgetter("name")
_MAX_METADATA_SIZE = 64 * 1024 * 1024
# RECORD lines (path,hash,size) worth resolving: extension files, .pth files, editable finders.
_OWNED_LINE = re.compile(r"(\.so|\.pyd|\.pth|__editable__[^,]*)(,|$)")


class Distribution(NamedTuple):
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name} {self.version}" if self.version else self.name


class ExtensionFile(NamedTuple):
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


class _Root(NamedTuple):
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
    roots = list(_expand_roots(folders, owners, target, scanned))
    found: list[ExtensionFile] = []
    for root in roots:
        for path, relative, linked in _walk(root.folder, scanned):
            abi = classify(os.path.basename(path), target)
            module = dotted_module_name([*filter(None, root.package.split(".")), *relative, abi.module_basename])
            owner = owners.get(os.path.realpath(path) if linked else path, root.owner)
            found.append(ExtensionFile(path, module, abi, owner))
    return _mark_shadowed(found, target)


def scanned_folders(target: TargetInterpreter, folders: list[str]) -> list[str]:
    """The folders :func:`find_extensions` walks: ``folders`` and what their ``.pth`` files add."""
    return list(dict.fromkeys(root.folder for root in _expand_roots(folders, {}, target)))


def _walk(root: str, scanned: Optional[list[str]] = None) -> Iterator[tuple[str, tuple[str, ...], bool]]:
    """(path, package parts below the root, whether a symbolic link led there) of every
    extension file an import can reach; every folder listed goes to ``scanned``.

    Folders that are not identifiers (``numpy.libs``, ``*.dist-info``, ``__pycache__``) cannot
    be packages, so what they hold is never imported as a module and is not walked. Symbolic
    links are followed, as the import system follows them; files that are not regular (a FIFO
    named ``*.so``, a dangling link) are skipped, as its ``FileFinder`` skips them.

    Iterative, so that depth is no limit. Each real folder is walked once per root, and the
    plain tree comes before the folders reached through links: a link to an ancestor (a loop)
    adds nothing, and a second name for a folder already walked holds the same files, which
    are judged once (the verdict belongs to the file) under the name the tree gives them."""
    try:
        visited = {_identity(os.stat(root))}
    except OSError:
        return
    tree: list[tuple[str, tuple[str, ...], bool]] = [(root, (), False)]
    links: list[tuple[str, tuple[str, ...], tuple[int, int]]] = []
    while tree or links:
        if tree:
            folder, parts, linked = tree.pop()
        else:
            folder, parts, identity = links.pop(0)
            if identity in visited:
                continue
            visited.add(identity)
            linked = True
        if scanned is not None:
            scanned.append(folder)
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=_NAME)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            name = entry.name
            try:
                if entry.is_dir():
                    if not is_identifier(name) or name in _SKIPPED_DIRS:
                        continue
                    identity = _folder_identity(entry)
                    if entry.is_symlink():
                        links.append((entry.path, (*parts, name), identity))
                    elif identity not in visited:
                        visited.add(identity)
                        subfolders.append((entry.path, (*parts, name), linked))
                elif is_extension_file(name) and entry.is_file():
                    yield entry.path, parts, linked or entry.is_symlink()
            except OSError:
                continue
        tree.extend(reversed(subfolders))


def _identity(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


def _folder_identity(entry: "os.DirEntry[str]") -> tuple[int, int]:
    status = entry.stat()
    if status.st_ino == 0:  # Windows: a directory entry's stat leaves the identity out
        status = os.stat(entry.path)
    return _identity(status)


def _read_small(path: str) -> Optional[bytes]:
    """A metadata file, ``.pth`` file or editable finder, if it is a regular file (see
    :mod:`nogil_toolkit.regular_file`) of a sane size: the largest real RECORD is a few MB."""
    return read_regular(path, _MAX_METADATA_SIZE)


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
    owners: dict[str, Distribution] = {}
    real_folders: dict[str, str] = {}
    for info in metadata_folders(folders):
        owner: Optional[Distribution] = None
        for path in filter(_OWNED_LINE.search, _listed_files(info)):
            owner = owner or _distribution(info)
            try:
                owners.setdefault(_real_path(path, real_folders), owner)
            except ValueError:  # a NUL byte: no such file
                continue
    return owners


def _real_path(path: str, real_folders: dict[str, str]) -> str:
    """``os.path.realpath(path)``, resolving each folder once: a distribution lists hundreds of
    files in a few dozen folders, and resolving a path costs a system call per component."""
    folder, name = os.path.split(path)
    if "\0" in name:
        raise ValueError("embedded null byte")
    real_folder = real_folders.get(folder)
    if real_folder is None:
        real_folder = real_folders[folder] = os.path.realpath(folder)
    candidate = os.path.join(real_folder, name)
    if name in ("", ".", "..") or os.path.islink(candidate):
        return os.path.realpath(path)
    return candidate


def metadata_folders(folders: list[str]) -> list[str]:
    """The ``.dist-info``/``.egg-info`` folders of the distributions installed in ``folders``,
    in the order ``importlib.metadata.distributions(path=folders)`` finds them (3.10+): per
    folder, grouped by normalized project name in listing order, then an ``.egg`` folder's
    ``EGG-INFO``. Distributions inside zip files are left out, as their metadata is no folder.

    Read here rather than through ``importlib.metadata``, whose import alone (``zipfile``,
    ``inspect``, ``email``, ``importlib.resources``) cost a free-threaded interpreter more than
    the rest of a cold check's set-up; its finder needs nothing but a listing per folder."""
    found: list[str] = []
    for folder in folders:
        try:
            children = os.listdir(folder or ".")
        except (OSError, ValueError):
            continue
        groups: dict[str, list[str]] = {}
        eggs: list[str] = []
        base_is_egg = os.path.basename(folder).lower().endswith(".egg")
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")):
                name = low.rpartition(".")[0].partition("-")[0]
                groups.setdefault(_normalized(name), []).append(os.path.join(folder, child))
            elif base_is_egg and low == "egg-info":
                eggs.append(os.path.join(folder, child))
        found.extend(path for paths in groups.values() for path in paths if os.path.isdir(path))
        found.extend(path for path in eggs if os.path.isdir(path))
    return found


def _normalized(name: str) -> str:
    """A project name as ``importlib.metadata``'s ``Prepared.normalize`` compares it (PEP 503,
    with underscores)."""
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _read_text(info: str, name: str) -> Optional[str]:
    """A metadata file as text. Bytes that are not UTF-8 survive as surrogates, so that a
    RECORD path in another encoding still names the file it names on disk."""
    data = _read_small(os.path.join(info, name))
    return None if data is None else data.decode("utf-8", "surrogateescape")


def _listed_files(info: str) -> Iterator[str]:
    """Paths of the files a distribution installed, as ``Distribution.files`` finds them:
    RECORD, else (egg-info) ``installed-files.txt``, relative to the metadata folder, else
    ``SOURCES.txt``."""
    site = os.path.dirname(info)
    record = _read_text(info, "RECORD")
    if record is not None:
        for line in filter(_OWNED_LINE.search, record.splitlines()):
            yield os.path.join(site, line.rsplit(",", 2)[0].strip('"'))
        return
    installed = _read_text(info, "installed-files.txt")
    if installed is not None:
        yield from (os.path.join(info, line) for line in installed.splitlines() if line)
        return
    sources = _read_text(info, "SOURCES.txt")
    yield from (os.path.join(site, line) for line in (sources or "").splitlines() if line)


def _distribution(info: str) -> Distribution:
    """Name and version from the metadata; from the folder's name (``Pkg-1.0.dist-info``)
    when the metadata lacks them (an empty or truncated file)."""
    data = _read_small(os.path.join(info, "METADATA")) or _read_small(os.path.join(info, "PKG-INFO"))
    name, version = _name_and_version(data.decode("utf-8", "replace")) if data else (None, None)
    stem_name, _, rest = os.path.basename(info).rpartition(".")[0].partition("-")
    return Distribution(name or stem_name or "<unnamed>", version or rest.partition("-")[0])


def _name_and_version(text: str) -> tuple[Optional[str], Optional[str]]:
    """``Name`` and ``Version`` as ``dist.metadata`` gives them, read from the header lines only.

    ``dist.metadata`` runs the email parser over the whole file, long description included,
    and ``dist.version`` does it again: most of a warm re-check's time. Both headers come
    before the first blank line, so only that part is read; anything unusual (a header
    missing, folded or malformed) falls back to ``dist.metadata`` itself.
    """
    headers = _leading_headers(text, ("name", "version"))
    if headers is not None and len(headers) == 2:
        return headers["name"], headers["version"]
    parsed = _metadata_of(text)
    return parsed.get("Name"), parsed.get("Version")


def _metadata_of(text: str) -> Any:
    """What ``importlib.metadata`` makes of one metadata text already read (safely), folded
    headers included. Only folded or unusual headers come here, so the import waits for them."""
    from importlib import metadata

    class MetadataText(metadata.Distribution):
        def read_text(self, filename: str) -> Optional[str]:
            return text if filename in ("METADATA", "PKG-INFO") else None

        def locate_file(self, path: "os.PathLike[str] | str") -> "os.PathLike[str]":
            raise NotImplementedError("a metadata text has no files")

    return MetadataText().metadata


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


def _expand_roots(folders: list[str], owners: dict[str, Distribution], target: TargetInterpreter,
                  scanned: Optional[list[str]] = None) -> Iterator[_Root]:
    """The folders, each site folder followed by what its ``.pth`` files add, as ``site`` adds
    it. ``site`` reads the ``.pth`` files of site folders only, not of ``PYTHONPATH`` folders
    (``--path``) or the standard library's. Each ``.pth`` file read goes to ``scanned``."""
    seen = set(folders)
    sites = {os.path.realpath(f) for f in (*target.site_packages, target.user_site)}
    for folder in folders:
        yield _Root(folder)
        if folder not in sites:
            continue
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in sorted(n for n in names if _site_reads_pth(n, target)):
            pth = os.path.join(folder, name)
            if target.version >= (3, 13) and _hidden(pth):
                continue
            data = _read_small(pth)
            if data is None:
                continue
            owner = owners.get(os.path.realpath(pth))
            if scanned is not None:
                scanned.append(pth)
            for root in _pth_roots(folder, _pth_lines(data, target), owner, scanned):
                if root.package or root.folder not in seen:
                    seen.add(root.folder)
                    yield root


def _site_reads_pth(name: str, target: TargetInterpreter) -> bool:
    # 3.13 skips names starting with a dot (gh-113659). Reading them for an older target is
    # the safe side: a folder too many is checked, never one too few.
    return name.endswith(".pth") and not (target.version >= (3, 13) and name.startswith("."))


def _hidden(path: str) -> bool:
    """The hidden flag ``site`` honours from 3.13 on (BSD and macOS ``UF_HIDDEN``)."""
    try:
        return bool(getattr(os.lstat(path), "st_flags", 0) & getattr(stat, "UF_HIDDEN", 0))
    except OSError:
        return False


def _pth_lines(data: bytes, target: TargetInterpreter) -> list[str]:
    """The lines of a ``.pth`` file as ``site.addpackage`` of the target's version splits them.

    3.13+ decodes UTF-8 (a BOM allowed), falling back to the locale's encoding, and splits with
    ``str.splitlines``; earlier versions read it as a text file in the locale's encoding
    (universal newlines, a BOM is part of the first line). Where the target's own decoding
    would fail, ``site`` stops the interpreter's start; the bytes are then kept as surrogates,
    so every path line still counts."""
    encoding = target.pth_encoding or "utf-8"
    if target.version >= (3, 13):
        for codec in ("utf-8-sig", encoding):
            try:
                return data.decode(codec).splitlines()
            except (UnicodeDecodeError, LookupError):
                continue
        return data.decode("utf-8", "surrogateescape").splitlines()
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text = data.decode("utf-8", "surrogateescape")
    return [line.rstrip("\n") for line in io.StringIO(text, newline=None)]


def _pth_roots(folder: str, lines: list[str], owner: Optional[Distribution],
               scanned: Optional[list[str]] = None) -> Iterator[_Root]:
    """The folders ``site.addpackage`` appends for these lines: ``#`` lines are comments, blank
    lines nothing, ``import`` lines code (never run here; setuptools' editable finders are
    read instead), and any other line, trailing whitespace removed but not leading, a path
    relative to the folder that counts if it exists."""
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith(("import ", "import\t")):
            yield from _editable_finder_roots(folder, line, owner, scanned)
            continue
        path = os.path.abspath(os.path.join(folder, line.rstrip()))
        if "\0" in path:  # os.path.exists is False for a NUL byte
            continue
        if scanned is not None:
            scanned.append(path)
        if os.path.isdir(path):
            yield _Root(os.path.realpath(path), owner=owner)


def _editable_finder_roots(folder: str, line: str, owner: Optional[Distribution],
                           scanned: Optional[list[str]] = None) -> Iterator[_Root]:
    match = re.match(r"import\s+(__editable___[A-Za-z0-9_]+_finder)\b", line)
    if not match:
        return
    import ast  # only editable installs need it

    finder = os.path.join(folder, match.group(1) + ".py")
    if scanned is not None:
        scanned.append(finder)
    source = _read_small(finder)
    if source is None:
        return
    try:
        tree = ast.parse(source, finder)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "MAPPING" and node.value is not None:
            try:
                mapping = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
                return
            if not isinstance(mapping, dict):
                return
            for package, path in mapping.items():
                if isinstance(package, str) and isinstance(path, str) and scanned is not None:
                    scanned.append(path)
                if isinstance(package, str) and isinstance(path, str) and os.path.isdir(path):
                    yield _Root(os.path.realpath(path), package, owner)
