"""The declaration record: what a wheel's build declared, in ``.dist-info/nogil-declaration.json``.

There is no standard wheel field for "declared safe without the GIL", so the toolkit writes a
small JSON file next to ``METADATA`` (extra ``.dist-info`` files are allowed; it is listed in
``RECORD`` with hash and size like every file)::

    {
      "schema_version": 1,
      "generator": "nogil-toolkit 0.1.0",
      "thread_safe": true,
      "modules": {"pkg._speedups": "not-used", "pkg.legacy._old": "used"}
    }

``thread_safe`` is the package default from ``[tool.nogil]`` (``null`` when absent);
``modules`` maps every extension module of the wheel to the declaration compiled into it.
The text is deterministic (sorted keys, two-space indent, final newline) so rebuilding or
re-annotating an unchanged wheel gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from nogil_toolkit import __version__
from nogil_toolkit.declaration import GilDeclaration

RECORD_NAME = "nogil-declaration.json"
SCHEMA_VERSION = 1


class RecordError(ValueError):
    """The record is not valid JSON of this schema; the message says what is wrong."""


@dataclass(frozen=True)
class DeclarationRecord:
    modules: Mapping[str, GilDeclaration]
    thread_safe: Optional[bool] = None
    generator: str = field(default=f"nogil-toolkit {__version__}")

    def to_text(self) -> str:
        data = {
            "schema_version": SCHEMA_VERSION,
            "generator": self.generator,
            "thread_safe": self.thread_safe,
            "modules": {name: self.modules[name].value for name in sorted(self.modules)},
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> DeclarationRecord:
        """The record as stored in a wheel, whose bytes are untrusted (not even UTF-8 for sure)."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordError(f"{RECORD_NAME} is not UTF-8 ({exc})") from None
        return cls.from_text(text)

    @classmethod
    def from_text(cls, text: str) -> DeclarationRecord:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RecordError(f"{RECORD_NAME} is not valid JSON: {exc}") from None
        except RecursionError:
            # json's decoder recurses once per nesting level: "[" * 100000 exhausts the stack.
            raise RecordError(f"{RECORD_NAME} is nested too deeply to be read as JSON") from None
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: Any) -> DeclarationRecord:
        if not isinstance(data, dict):
            raise RecordError(f"{RECORD_NAME}: expected a JSON object, got {type(data).__name__}")
        if data.get("schema_version") != SCHEMA_VERSION:
            raise RecordError(f"{RECORD_NAME}: schema_version {data.get('schema_version')!r} is not supported "
                              f"(this toolkit reads {SCHEMA_VERSION})")
        thread_safe = data.get("thread_safe")
        if thread_safe is not None and not isinstance(thread_safe, bool):
            raise RecordError(f"{RECORD_NAME}: thread_safe must be true, false or null, got {thread_safe!r}")
        modules = data.get("modules")
        if not isinstance(modules, dict):
            raise RecordError(f"{RECORD_NAME}: modules must be an object of module name to declaration")
        parsed = {}
        for name, value in modules.items():
            try:
                parsed[name] = GilDeclaration(value)
            except ValueError:
                raise RecordError(f"{RECORD_NAME}: modules.{name}: expected 'not-used' or 'used', "
                                  f"got {value!r}") from None
        generator = data.get("generator")
        return cls(parsed, thread_safe, generator if isinstance(generator, str) else "unknown")
