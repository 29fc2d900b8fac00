"""Edit the GIL declaration in ``pyproject.toml`` text, keeping every other byte as it was.

People format ``pyproject.toml`` by hand, so an edit must look hand-made: tomlkit keeps the
comments, blank lines, quoting and key order, and this module decides where new things go
(``[tool.nogil]`` after the other ``[tool.*]`` tables, keys in the style of their siblings).
Before the new text is handed back it is parsed again with ``tomllib`` and compared with what
was asked for, so neither a mistake here nor a tomlkit quirk in an unusual layout can reach
the file: the caller gets an error and the file stays as it was.

Writing is separate (:mod:`nogil_toolkit.replace_file`) so the edit itself is a pure function of text.
"""

from __future__ import annotations

import copy
import enum
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, MutableSequence, Optional, Sequence, Union

import tomlkit
from tomlkit.container import OutOfOrderTableProxy
from tomlkit.exceptions import ParseError as TomlkitParseError
from tomlkit.items import DottedKey, InlineTable, Key, KeyType, SingleKey, Table
from tomlkit.toml_document import TOMLDocument

# Shared with config.py so that `declare` accepts exactly the names and reports exactly the
# positions that the configuration loader does.
from nogil_toolkit.config import (KNOWN_KEYS, NESTED_TOO_DEEPLY, TABLE, decode_error_message, decode_error_position,
                                  is_module_pattern)
from nogil_toolkit.declaration import FREE_THREADING_CLASSIFIER_PREFIX as FREE_THREADING_PREFIX
from nogil_toolkit.tomlpos import locate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on the 3.9/3.10 CI interpreters
    import tomli as tomllib

THREAD_SAFE_KEY = (*TABLE, "thread-safe")
MODULES_KEY = (*TABLE, "modules")
CLASSIFIERS_KEY = ("project", "classifiers")

Value = Union[bool, "FreeThreadingLevel", None]


class FreeThreadingLevel(enum.Enum):
    """The levels of the ``Programming Language :: Python :: Free Threading`` trove classifiers."""

    UNSTABLE = "1 - Unstable"
    BETA = "2 - Beta"
    STABLE = "3 - Stable"
    RESILIENT = "4 - Resilient"

    @property
    def classifier(self) -> str:
        return FREE_THREADING_PREFIX + self.value

    @classmethod
    def from_name(cls, text: str) -> FreeThreadingLevel:
        """Accept the number (``3``), the word (``stable``) or the whole level (``3 - Stable``)."""
        wanted = " ".join(text.lower().split())
        for level in cls:
            number, word = level.value.lower().split(" - ")
            if wanted in (number, word, level.value.lower()):
                return level
        raise ValueError(f"expected one of {cls.choices()}, got {text!r}")

    @classmethod
    def choices(cls) -> str:
        return ", ".join("/".join(level.value.lower().split(" - ")) for level in cls)


class DeclareError(ValueError):
    """The edit cannot be made to this document; the message says why, ``where`` says where."""

    def __init__(self, message: str, where: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class TomlSyntaxError(DeclareError):
    """The document is not TOML, so nothing in it can be edited safely."""

    def __init__(self, message: str, line: Optional[int], column: Optional[int]) -> None:
        super().__init__(message, f"{line}:{column or 1}" if line is not None else None)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class DeclarationChange:
    """One edit: set a key of ``[tool.nogil]`` or remove it (``value`` is ``None``), or set the
    Free Threading classifier (``key`` is ``CLASSIFIERS_KEY``, ``value`` a level).

    ``key`` is the full path in the document, so two changes to the same key compare equal
    in their ``key`` and a caller can spot contradictory requests.
    """

    key: tuple[str, ...]
    value: Value

    @classmethod
    def thread_safe(cls, value: Optional[bool]) -> DeclarationChange:
        return cls(THREAD_SAFE_KEY, value)

    @classmethod
    def module(cls, name: str, value: Optional[bool]) -> DeclarationChange:
        """Raises ValueError for a name the configuration loader would reject."""
        if not is_module_pattern(name):
            raise ValueError(f"expected a dotted module name (pkg.mod) or a glob (pkg.*), got {name!r}")
        return cls((*MODULES_KEY, name), value)

    @classmethod
    def classifier(cls, level: FreeThreadingLevel) -> DeclarationChange:
        return cls(CLASSIFIERS_KEY, level)

    @property
    def dotted_key(self) -> str:
        return tomlkit.key(list(self.key)).as_string()

    def describe(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> Optional[str]:
        """One line saying what this change did between two parsed documents, ``None`` if nothing."""
        old, new = _lookup(before, self.key), _lookup(after, self.key)
        if _strictly_equal(old, new):
            return None
        if isinstance(self.value, FreeThreadingLevel):
            replaced = [c for c in old or () if c.startswith(FREE_THREADING_PREFIX) and c != self.value.classifier]
            if replaced:
                return f'replaced classifier "{replaced[0]}" with "{self.value.classifier}"'
            return f'added classifier "{self.value.classifier}"'
        if new is None:
            return f"removed {self.dotted_key}"
        return f"set {self.dotted_key} = {tomlkit.item(new).as_string()}"


def parse_toml(text: str) -> dict[str, Any]:
    """The document as plain data; TomlSyntaxError (with line and column) if it is not TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, column = decode_error_position(exc)
        raise TomlSyntaxError(f"not valid TOML: {decode_error_message(exc)}", line, column) from exc
    except RecursionError:
        raise TomlSyntaxError(f"not valid TOML: {NESTED_TOO_DEEPLY}", None, None) from None


def parse_for_editing(text: str) -> TOMLDocument:
    """``text`` as tomlkit's editable document. DeclareError where tomlkit refuses what
    ``tomllib`` read: it stops at 100 levels of nesting, ``tomllib`` at its recursion bound."""
    try:
        return tomlkit.parse(text)
    except (TomlkitParseError, RecursionError) as exc:
        detail = str(exc) if isinstance(exc, TomlkitParseError) else NESTED_TOO_DEEPLY
        raise DeclareError(f"tomlkit cannot edit this file ({detail}); nothing was written") from None


def declare_in_text(text: str, changes: Sequence[DeclarationChange]) -> str:
    """``text`` with ``changes`` applied in order; every byte outside the edited keys is kept.

    Raises TomlSyntaxError if ``text`` is not TOML and DeclareError if a change cannot be made
    (the key holds something other than a table, ``classifiers`` is dynamic, ...) or if the
    edited text would not mean exactly what was asked.
    """
    before = parse_toml(text)
    for change in changes:
        _check_applicable(before, text, change)
    crlf = uses_crlf(text)
    edited = text.replace("\r\n", "\n") if crlf else text
    for change in changes:
        # A fresh parse per change: tomlkit's views of a document go stale after some edits.
        edited = _apply(edited, change)
    edited = with_ending_of(text.replace("\r\n", "\n") if crlf else text, edited)
    result = edited.replace("\n", "\r\n") if crlf else edited
    _check_meaning(before, result, changes)
    return result


def _lookup(data: Mapping[str, Any], key: Sequence[str]) -> Any:
    for part in key:
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def _check_applicable(before: Mapping[str, Any], text: str, change: DeclarationChange) -> None:
    """Refuse, before touching anything, a change this document cannot take."""
    if change.key == CLASSIFIERS_KEY:
        _check_classifiers_editable(before, text)
        return
    if change.value is None:
        return
    for depth in range(1, len(change.key)):
        found = _lookup(before, change.key[:depth])
        if found is not None and not isinstance(found, Mapping):
            dotted = tomlkit.key(list(change.key[:depth])).as_string()
            raise DeclareError(f"{dotted} is {_kind(found)}, not a table, so {change.dotted_key} cannot be set; "
                               "fix it by hand first", _where(text, change.key[:depth]))


def _check_classifiers_editable(before: Mapping[str, Any], text: str) -> None:
    project = before.get("project")
    if not isinstance(project, Mapping):
        raise DeclareError("there is no [project] table to add the classifier to")
    if "classifiers" in (project.get("dynamic") or ()):
        raise DeclareError('"classifiers" is listed in project.dynamic, so the build backend provides them; '
                           "add the Free Threading classifier where the backend reads them",
                           _where(text, ("project", "dynamic")))
    classifiers = project.get("classifiers")
    if classifiers is not None and not (isinstance(classifiers, list) and all(isinstance(c, str) for c in classifiers)):
        raise DeclareError(f"project.classifiers is {_kind(classifiers)}, not an array of strings",
                           _where(text, CLASSIFIERS_KEY))


def _where(text: str, key: Sequence[str]) -> Optional[str]:
    position = locate(text, key)
    return f"{position[0]}:{position[1]}" if position else None


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "an array"}.get(type(value), f"a {type(value).__name__}")


def uses_crlf(text: str) -> bool:
    """Only a file that is CRLF throughout is edited as CRLF; a mixed one is left mixed."""
    return "\r\n" in text and text.count("\r\n") == text.count("\n")


def with_ending_of(original: str, edited: str) -> str:
    """Keep how the file ended (final newline or not, trailing blank lines).

    tomlkit ends a table it appends with a newline and new tables carry a blank line after
    them; at the end of the file that would change a byte the user did not ask to change.
    """
    if not original.strip():
        return edited.rstrip("\n") + "\n"
    return edited.rstrip("\n") + original[len(original.rstrip("\n")):]


def _apply(text: str, change: DeclarationChange) -> str:
    data = tomllib.loads(text)
    if _strictly_equal(_after(data, change), data):
        return text  # already so: not even the layout of an inline table is touched
    document = parse_for_editing(text)
    nogil = _lookup(document, TABLE)
    inline_padding = _is_padded(nogil) if isinstance(nogil, InlineTable) else None
    if isinstance(change.value, FreeThreadingLevel):
        _set_classifier(document, change.value)
    elif change.value is None:
        _remove(document, change.key)
    else:
        _assign(document, change.key, change.value)
    if inline_padding is not None and change.key != CLASSIFIERS_KEY:
        _relay_out_inline_nogil(document, inline_padding)
    return document.as_string()


# --- [tool.nogil] ------------------------------------------------------------------------

AnyTable = Union[TOMLDocument, Table, InlineTable, OutOfOrderTableProxy]


def _assign(document: TOMLDocument, key: tuple[str, ...], value: bool) -> None:
    parent: AnyTable = document
    for depth, part in enumerate(key[:-1]):
        child = parent.get(part)
        if child is None:
            _create(parent, key, depth, value)
            return
        parent = child
    _set_leaf(parent, key[-1], value)


def _set_leaf(table: AnyTable, name: str, value: bool) -> None:
    if name in table:
        table[name] = value  # tomlkit keeps the key's quoting and the comment after it
    else:
        table.append(_single_key(name), value)


def _create(parent: AnyTable, key: tuple[str, ...], depth: int, value: bool) -> None:
    """Create ``key[depth]`` (and what lies below it) under ``parent`` in the parent's style."""
    if isinstance(parent, InlineTable):
        parent.append(key[depth], _new_inline_table(key[depth + 1:], value))
        return
    if isinstance(parent, Table) and depth >= len(TABLE) and written_with_dotted_keys(parent):
        # `nogil.thread-safe = true` gets a sibling `nogil.modules."a" = false`, not a [header].
        parent.append(_dotted_key(key[depth:]), value)
        return
    _host_for_new_table(parent).append(key[depth], _new_table(key[depth + 1:], value))


def _new_inline_table(rest: tuple[str, ...], value: bool) -> InlineTable:
    table = tomlkit.inline_table()
    if len(rest) == 1:
        table.append(_single_key(rest[0]), value)
    else:
        table.append(rest[0], _new_inline_table(rest[1:], value))
    return table


def _new_table(rest: tuple[str, ...], value: bool) -> Table:
    """A ``[header]`` table holding ``rest = value``; header-only if it holds just a sub-table.

    The blank line after it keeps it apart from whatever table follows; at the end of the
    file :func:`with_ending_of` removes it again.
    """
    table = tomlkit.table()
    if len(rest) == 1:
        table.append(_single_key(rest[0]), value)
        table.append(None, tomlkit.nl())
    else:
        table.append(rest[0], _new_table(rest[1:], value))
    return table


def _host_for_new_table(parent: AnyTable) -> AnyTable:
    """Where a new sub-table of ``parent`` goes: after the last of its ``[header]`` parts.

    tomlkit appends to the first part of a table written in several places (``[tool.a]``,
    ``[project]``, ``[tool.b]``); the new ``[tool.nogil]`` belongs after ``[tool.b]``.
    """
    if isinstance(parent, OutOfOrderTableProxy):
        # tomlkit offers the parts only as this attribute; a change in it is caught by
        # _check_meaning, and the edit is then refused rather than misplaced.
        parts = [t for t in parent._tables if not t.is_super_table() or not written_with_dotted_keys(t)]
        return parts[-1] if parts else parent
    return parent


def written_with_dotted_keys(table: Table) -> bool:
    """True for ``nogil.thread-safe = true``: a table no ``[header]`` at or below it defines."""
    return table.is_super_table() and all(
        written_with_dotted_keys(child) for child in table.values() if isinstance(child, Table))


def _single_key(name: str) -> Key:
    """Module names are always double-quoted, as in the documented ``"pkg._legacy" = false``."""
    return tomlkit.key(name) if name in KNOWN_KEYS else SingleKey(name, KeyType.Basic)


def _dotted_key(parts: Iterable[str]) -> DottedKey:
    return DottedKey([_single_key(part) for part in parts])


def _remove(document: TOMLDocument, key: tuple[str, ...]) -> None:
    parent = _lookup(document, key[:-1])
    if not isinstance(parent, (Table, InlineTable, OutOfOrderTableProxy)) or key[-1] not in parent:
        return
    del parent[key[-1]]
    if key[:-1] == MODULES_KEY and not parent:
        nogil = _lookup(document, TABLE)
        if "modules" in nogil:
            del nogil["modules"]


def _is_padded(table: InlineTable) -> bool:
    """``{ a = 1 }`` rather than ``{a = 1}``."""
    return table.as_string().startswith("{ ")


def _relay_out_inline_nogil(document: TOMLDocument, padded: bool) -> None:
    """Lay an edited inline ``nogil = { ... }`` out uniformly, padded or compact as it was.

    tomlkit versions differ in the spaces and commas they leave behind when a key is added
    to or removed from an inline table; the line is being edited anyway, so it is rebuilt
    from its keys and values, and parsed back so the result is tomlkit's own structure.
    """
    parent = _lookup(document, TABLE[:-1])
    nogil = parent.get(TABLE[-1])
    if isinstance(nogil, InlineTable):
        parent[TABLE[-1]] = _relaid(nogil, padded)  # replacing keeps the comment after it


def _relaid(table: InlineTable, padded: bool) -> InlineTable:
    fresh = tomlkit.inline_table()
    for key, value in table.value.body:
        if key is None:  # the old separators and padding
            continue
        value.trivia.indent = value.trivia.trail = ""
        fresh.append(key, _relaid(value, padded) if isinstance(value, InlineTable) else value)
    compact = fresh.as_string()
    layout = f"{{ {compact[1:-1].strip()} }}" if padded and fresh else compact
    return tomlkit.parse(f"x = {layout}")["x"]


# --- classifiers ------------------------------------------------------------------------


def _set_classifier(document: TOMLDocument, level: FreeThreadingLevel) -> None:
    project = document["project"]
    if "classifiers" not in project:
        array = tomlkit.array()
        array.multiline(True)
        project.append("classifiers", array)
    _put_classifier(project["classifiers"], level.classifier)


def _put_classifier(classifiers: MutableSequence[Any], classifier: str) -> None:
    """Make ``classifier`` the only Free Threading one, where a person would have put it.

    An existing Free Threading classifier is replaced where it stands; otherwise the new one
    goes in sorted position if the list is sorted, else at the end. Works on a plain list and
    on a tomlkit array alike, so the expected result is computed by the same code.
    """
    present = [i for i, c in enumerate(classifiers) if str(c).startswith(FREE_THREADING_PREFIX)]
    if present:
        if str(classifiers[present[0]]) != classifier:
            classifiers[present[0]] = classifier
        for index in reversed(present[1:]):
            del classifiers[index]
        return
    names = [str(c) for c in classifiers]
    if names == sorted(names):
        classifiers.insert(sum(1 for n in names if n < classifier), classifier)
    else:
        classifiers.append(classifier)


# --- checking the result ------------------------------------------------------------------


def _check_meaning(before: Mapping[str, Any], result: str, changes: Sequence[DeclarationChange]) -> None:
    """The edited text parses and says what was asked, and nothing else changed meaning."""
    try:
        after = tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        raise DeclareError(f"the edited text would not be valid TOML ({exc}); nothing was written. "
                           "This is a bug in nogil-toolkit or tomlkit: please report it") from exc
    expected = dict(before)
    for change in changes:
        expected = _after(expected, change)
    if not _strictly_equal(_pruned(expected), _pruned(after)):
        raise DeclareError("the edited text would not mean what was asked (tomlkit "
                           f"{tomlkit.__version__} laid the document out unexpectedly); nothing was written. "
                           "Please report this with your pyproject.toml")


def _after(data: Mapping[str, Any], change: DeclarationChange) -> dict[str, Any]:
    """``data`` as ``change`` should leave it."""
    changed = copy.deepcopy(dict(data))
    _apply_to_data(changed, change)
    return changed


def _apply_to_data(data: dict[str, Any], change: DeclarationChange) -> None:
    if isinstance(change.value, FreeThreadingLevel):
        _put_classifier(data["project"].setdefault("classifiers", []), change.value.classifier)
        return
    parent = data
    for part in change.key[:-1]:
        if change.value is None and part not in parent:
            return
        parent = parent.setdefault(part, {})
    if change.value is None:
        parent.pop(change.key[-1], None)
    else:
        parent[change.key[-1]] = change.value


def _strictly_equal(a: Any, b: Any) -> bool:
    """``==`` that tells ``true`` from ``1``, as TOML does."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_strictly_equal, a, b))
    return bool(a == b)


def _pruned(data: Mapping[str, Any]) -> dict[str, Any]:
    """Without the empty tables an edit may leave or drop: ``{}`` means the same as absent here."""
    pruned = copy.deepcopy(dict(data))
    for key in (MODULES_KEY, TABLE, TABLE[:1]):
        parent = _lookup(pruned, key[:-1])
        if isinstance(parent, dict) and parent.get(key[-1]) == {}:
            del parent[key[-1]]
    return pruned
