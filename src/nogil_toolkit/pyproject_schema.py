"""The JSON schema of ``[tool.nogil]``, published for validate-pyproject and editors.

``nogil.schema.json`` (package data) describes the table that :mod:`nogil_toolkit.config`
validates; a test runs one corpus of tables through both so they cannot drift apart. It is
announced through validate-pyproject's ``validate_pyproject.tool_schema`` entry point under
the tool name ``nogil``, so ``validate-pyproject pyproject.toml`` checks the table wherever
the toolkit is installed next to it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SCHEMA_FILE = "nogil.schema.json"


def schema() -> dict[str, Any]:
    """The schema of the table under ``[tool.nogil]``, as parsed JSON."""
    return json.loads(resources.files("nogil_toolkit").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def tool_schema(tool_name: str) -> dict[str, Any]:
    """[tool.$tool]: nogil-toolkit's GIL declaration, environment policy and audit settings ($id)."""
    # validate-pyproject passes the entry point's name; this plugin only ever serves "nogil".
    del tool_name
    return schema()
