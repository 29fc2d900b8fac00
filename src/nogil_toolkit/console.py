"""Terminal conventions shared by every command: errors, warnings, colour, progress.

Machine output goes to stdout; diagnostics and progress to stderr. Colour only on a
terminal, never with ``NO_COLOR``, always with ``FORCE_COLOR`` (https://no-color.org).
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_STYLES = {"red": "31", "yellow": "33", "green": "32", "bold": "1", "dim": "2"}


def use_colour(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def style(text: str, name: str, stream: TextIO) -> str:
    return f"\033[{_STYLES[name]}m{text}\033[0m" if use_colour(stream) else text


def plural(count: int, singular: str, plural_form: str = "") -> str:
    """``1 module``, ``2 modules``."""
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


def error(message: str, where: str | None = None) -> None:
    """``error: <what> (<where>)`` on stderr."""
    suffix = f" ({where})" if where else ""
    print(f"{style('error', 'red', sys.stderr)}: {message}{suffix}", file=sys.stderr)


def warning(message: str) -> None:
    print(f"{style('warning', 'yellow', sys.stderr)}: {message}", file=sys.stderr)


def info(message: str) -> None:
    print(message, file=sys.stderr)
