"""GitHub Actions workflow commands: the ``--format github`` of check-env and wheel verify.

A runner reads each line a step prints on stdout that starts with ``::``; ``::error``,
``::warning`` and ``::notice`` become annotations on the run (and on the file, when ``file``
names one of the repository). The format is line based: ``::<command> <key>=<value>,...::<data>``.
A property value therefore escapes ``%``, CR, LF, ``:`` and ``,`` as ``%25 %0D %0A %3A %2C``;
the data (the message) escapes the first three, since the first ``::`` already ended the
properties. A file name with a newline or a comma cannot then start a forged command.
"""

from __future__ import annotations

import os
import re
from typing import Literal, Optional

Kind = Literal["error", "warning", "notice"]
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_data(text: str) -> str:
    """The three escapes of the format, then the other control characters as ``\\xNN`` (the
    runner's log is a terminal: an escape sequence from a file name must not reach it)."""
    escaped = _utf8(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return _CONTROL.sub(lambda match: f"\\x{ord(match[0]):02x}", escaped)


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(kind: Kind, message: str, *, file: Optional[str] = None, line: Optional[int] = None,
               title: Optional[str] = None) -> str:
    """One workflow command line (without the newline)."""
    properties = [(name, str(value)) for name, value in (("file", file), ("line", line), ("title", title))
                  if value is not None]
    head = ",".join(f"{name}={escape_property(value)}" for name, value in properties)
    return f"::{kind}{' ' + head if head else ''}::{escape_data(message)}"


def workspace_path(path: str) -> str:
    """``path`` as annotations name files: relative to the workspace (``GITHUB_WORKSPACE``, else
    the current directory) when inside it, so that GitHub can show it on the file; else absolute."""
    root = os.path.abspath(os.environ.get("GITHUB_WORKSPACE") or os.curdir)
    absolute = os.path.abspath(path)
    shown = os.path.relpath(absolute, root) if os.path.commonpath([root, absolute]) == root else absolute
    return _utf8(shown)


def _utf8(text: str) -> str:
    """Text the runner can read as UTF-8: bytes of a file name that are not UTF-8 (kept by Python
    as lone surrogates) become ``\\xNN``."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no file name produced
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
