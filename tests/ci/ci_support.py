"""Helpers of the CI tests: read GitHub workflow commands back as the runner does, take the
recipes' snippets out of the README, and the environment a recipe's shell commands run in."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from support import REPO


class WorkflowCommand(NamedTuple):
    command: str
    properties: dict[str, str]
    data: str


# The runner's unescaping (actions/runner, ActionCommand.TryParseV2): each escape in this
# order, %25 last, so that an escaped "%0A" in a name comes back as the three characters.
_DATA_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%25", "%"))
_PROPERTY_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))


def _unescape(text: str, escapes: tuple[tuple[str, str], ...]) -> str:
    for escaped, plain in escapes:
        text = text.replace(escaped, plain)
    return text


def parse_workflow_command(line: str) -> WorkflowCommand:
    """``::name k=v,k=v::data`` as the runner splits it: the command ends at the first ``::``
    after the leading one, properties at ``,``, a key at its first ``=``."""
    assert line.startswith("::"), line
    head, separator, data = line[2:].partition("::")
    assert separator, line
    name, _, props = head.partition(" ")
    properties = {}
    for pair in filter(None, props.split(",")):
        key, equals, value = pair.partition("=")
        assert equals, line
        properties[key] = _unescape(value, _PROPERTY_ESCAPES)
    return WorkflowCommand(name, properties, _unescape(data, _DATA_ESCAPES))


def readme_block(heading: str, language: str) -> str:
    """The first fenced ``language`` block after the README heading that starts with ``heading``."""
    text = (REPO / "README.md").read_text("utf-8")
    start = re.search(rf"^#+ {re.escape(heading)}.*$", text, re.MULTILINE)
    assert start, f"no README heading {heading!r}"
    block = re.compile(rf"^```{language}\n(.*?)^```$", re.MULTILINE | re.DOTALL).search(text, start.end())
    assert block, f"no {language} block after {heading!r}"
    return block.group(1)


def shell_env(bin_dirs: list[Path], wheelhouse: Path, **extra: str) -> dict[str, str]:
    """The environment of a recipe's commands: ``bin_dirs`` first on ``PATH`` (as the CI
    service puts its Python there), ``nogil-toolkit`` found by pip in ``wheelhouse`` (it is not
    on an index) besides the machine's own configuration, and no variable that forces the GIL."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHON_GIL", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "GITHUB_WORKSPACE")}
    env["PATH"] = os.pathsep.join([*map(str, bin_dirs), env.get("PATH", os.defpath)])
    env["PIP_FIND_LINKS"] = " ".join(filter(None, [str(wheelhouse), os.environ.get("PIP_FIND_LINKS", "")]))
    env.update(extra)
    return env
