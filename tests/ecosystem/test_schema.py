"""``[tool.nogil]``'s JSON schema: the real ``validate-pyproject`` CLI finds it through the
entry point, and the schema and :mod:`nogil_toolkit.config` accept and reject the same tables."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from validate_pyproject import api as validate_pyproject_api
from validate_pyproject.error_reporting import ValidationError

from nogil_toolkit import config
from nogil_toolkit.audit.rules import rule_ids
from nogil_toolkit.config import ConfigError, is_module_pattern, parse_config
from nogil_toolkit.pyproject_schema import schema

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PROJECT = 'project.name = "demo"\nproject.version = "1.0"\n\n'  # dotted: any table may follow

VALID = {
    "empty": "[tool.nogil]\n",
    "thread-safe": "[tool.nogil]\nthread-safe = false\n",
    "modules": '[tool.nogil]\nthread-safe = true\n[tool.nogil.modules]\n"pkg._x" = false\n"pkg.vendored.*" = true\n'
               '"pkg.[ab]?" = false\n_top = true\n',
    "check": '[tool.nogil.check]\nmode = "unsafe-nogil"\nallow = { "legacy._c" = "audited", "old.*" = "one lock" }\n',
    "check-modes": '[tool.nogil.check]\nmode = "gil"\n',
    "audit": '[tool.nogil.audit]\nignore = ["object-malloc", "borrowed-dict-item"]\nexclude = ["vendor", "src/*.c"]\n',
    "audit-empty-arrays": "[tool.nogil.audit]\nignore = []\nexclude = []\n",
    "dotted": "tool.nogil.thread-safe = true\n",
}
VALID_BUILD = {f"audit-build-{value}": f'[tool.nogil.audit]\nbuild = "{value}"\n' for value in ("warn", "error", "off")}

INVALID = {
    "unknown-key": "[tool.nogil]\nthread_safe = true\n",
    "thread-safe-string": '[tool.nogil]\nthread-safe = "yes"\n',
    "thread-safe-integer": "[tool.nogil]\nthread-safe = 1\n",
    "table-not-a-table": "[tool]\nnogil = true\n",
    "modules-not-a-table": '[tool.nogil]\nmodules = ["pkg"]\n',
    "module-value-string": '[tool.nogil.modules]\n"pkg._x" = "false"\n',
    "module-unquoted-dotted": "[tool.nogil.modules]\npkg.mod = false\n",
    "module-empty-table": "[tool.nogil.modules]\npkg = {}\n",
    "module-name-space": '[tool.nogil.modules]\n"pkg. mod" = false\n',
    "module-name-digit": '[tool.nogil.modules]\n"pkg.1mod" = false\n',
    "module-name-empty-part": '[tool.nogil.modules]\n"pkg..mod" = false\n',
    "module-name-dash": '[tool.nogil.modules]\n"my-pkg.mod" = false\n',
    "check-unknown-key": '[tool.nogil.check]\nmodes = "nogil"\n',
    "check-mode": '[tool.nogil.check]\nmode = "no-gil"\n',
    "check-mode-boolean": "[tool.nogil.check]\nmode = true\n",
    "check-not-a-table": '[tool.nogil]\ncheck = "nogil"\n',
    "allow-empty-reason": '[tool.nogil.check.allow]\n"legacy._c" = "  "\n',
    "allow-boolean-reason": '[tool.nogil.check.allow]\n"legacy._c" = true\n',
    "allow-bad-name": '[tool.nogil.check.allow]\n"legacy c" = "audited"\n',
    "allow-not-a-table": '[tool.nogil.check]\nallow = ["legacy._c"]\n',
    "audit-unknown-key": '[tool.nogil.audit]\nexcludes = ["vendor"]\n',
    "audit-unknown-rule": '[tool.nogil.audit]\nignore = ["object-mallok"]\n',
    "audit-ignore-string": '[tool.nogil.audit]\nignore = "object-malloc"\n',
    "audit-exclude-absolute": '[tool.nogil.audit]\nexclude = ["/usr/include"]\n',
    "audit-exclude-parent": '[tool.nogil.audit]\nexclude = ["src/../vendor"]\n',
    "audit-exclude-parent-end": '[tool.nogil.audit]\nexclude = ["src/.."]\n',
    "audit-exclude-backslash": '[tool.nogil.audit]\nexclude = ["src\\\\vendor"]\n',
    "audit-exclude-empty": '[tool.nogil.audit]\nexclude = [" "]\n',
    "audit-exclude-number": "[tool.nogil.audit]\nexclude = [1]\n",
    "audit-not-a-table": "[tool.nogil]\naudit = []\n",
    "audit-build-value": '[tool.nogil.audit]\nbuild = "fatal"\n',
    "audit-build-boolean": "[tool.nogil.audit]\nbuild = true\n",
}


def config_accepts(text: str) -> bool:
    try:
        parse_config(text, Path("pyproject.toml"))
    except ConfigError:
        return False
    return True


def schema_accepts(text: str) -> bool:
    """jsonschema (draft 7, as editors read it) and validate-pyproject (fastjsonschema) must agree."""
    document = tomllib.loads(text)
    table: Any = document["tool"]["nogil"]
    by_jsonschema = jsonschema.Draft7Validator(schema()).is_valid(table)
    try:
        validate_pyproject_api.Validator()(document)
        by_validate_pyproject = True
    except ValidationError:
        by_validate_pyproject = False
    assert by_jsonschema == by_validate_pyproject, "the two JSON schema implementations disagree"
    return by_jsonschema


def cases(table: dict[str, str]) -> list[Any]:
    return [pytest.param(PROJECT + text, id=name) for name, text in table.items()]


@pytest.mark.parametrize("text", cases(VALID) + cases(VALID_BUILD))
def test_schema_and_config_accept(text: str) -> None:
    assert config_accepts(text)
    assert schema_accepts(text)


@pytest.mark.parametrize("text", cases(INVALID))
def test_schema_and_config_reject(text: str) -> None:
    assert not config_accepts(text)
    assert not schema_accepts(text)


def _keys(node: dict[str, Any]) -> set[str]:
    return set(node["properties"])


def test_schema_has_exactly_the_keys_config_knows() -> None:
    tables = schema()["properties"]
    assert _keys(schema()) == set(config.KNOWN_KEYS)
    assert _keys(tables["check"]) == set(config.CHECK_KEYS)
    assert _keys(tables["audit"]) == set(config.AUDIT_KEYS)


def test_schema_enumerates_what_config_enumerates() -> None:
    tables = schema()["properties"]
    assert tables["check"]["properties"]["mode"]["enum"] == list(config.CHECK_MODES)
    assert tables["audit"]["properties"]["ignore"]["items"]["enum"] == list(rule_ids())
    assert tables["audit"]["properties"]["build"] == {**tables["audit"]["properties"]["build"],
                                                      "enum": ["warn", "error", "off"], "default": "warn"}
    for table in (schema(), tables["check"], tables["audit"]):
        assert table["additionalProperties"] is False


def test_the_schema_is_a_valid_draft_7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(schema())


# --- the real validate-pyproject command -------------------------------------------------------

def validate_pyproject(path: Path) -> subprocess.CompletedProcess[str]:
    command = shutil.which("validate-pyproject", path=str(Path(sys.executable).parent))
    assert command, "validate-pyproject is in the test extra"
    return subprocess.run([command, str(path)], capture_output=True, text=True, timeout=120)


def test_validate_pyproject_lists_the_plugin() -> None:
    command = shutil.which("validate-pyproject", path=str(Path(sys.executable).parent))
    assert command
    listed = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=120).stdout
    assert "'nogil'" in listed and "nogil_toolkit.pyproject_schema.tool_schema" in listed


def test_validate_pyproject_accepts_a_full_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(PROJECT + VALID["modules"] + VALID["check"]
                    + VALID["audit"])
    result = validate_pyproject(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid file" in result.stdout


# One file per kind of mistake, each with the key validate-pyproject must name (in backquotes).
CLI_INVALID = {
    "unknown-key": "`tool.nogil` must not contain {'thread_safe'}",
    "thread-safe-string": "`tool.nogil.thread-safe`",
    "module-value-string": "`tool.nogil.modules.pkg._x` must be boolean",
    "module-name-space": "`tool.nogil.modules` keys must be named by",
    "check-mode": "`tool.nogil.check.mode`",
    "allow-empty-reason": "`tool.nogil.check.allow.legacy._c` must match pattern",
    "audit-unknown-rule": "`tool.nogil.audit.ignore[0]`",
    "audit-exclude-parent": "`tool.nogil.audit.exclude[0]`",
    "audit-build-value": "`tool.nogil.audit.build`",
    "table-not-a-table": "`tool.nogil` must be object",
}


@pytest.mark.parametrize("kind", sorted(CLI_INVALID))
def test_validate_pyproject_rejects(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(PROJECT + INVALID[kind])
    result = validate_pyproject(path)
    assert result.returncode != 0
    assert CLI_INVALID[kind] in result.stdout + result.stderr


def test_module_names_are_judged_alike_by_schema_and_config() -> None:
    """Every string of up to three characters from an alphabet of the interesting ones."""
    patterns = {schema()["properties"]["modules"]["propertyNames"]["pattern"],
                schema()["properties"]["check"]["properties"]["allow"]["propertyNames"]["pattern"]}
    (pattern,) = patterns
    names = ["".join(chars) for length in range(4) for chars in itertools.product("a1_.*?[]! \t\nZé-", repeat=length)]
    # re.search is how both jsonschema and fastjsonschema apply "pattern" (ECMA 262 semantics, unanchored).
    disagreements = [name for name in names if bool(re.search(pattern, name)) != is_module_pattern(name)]
    assert disagreements == []
    assert len(names) > 3000


@pytest.mark.slow
def test_the_wheel_ships_the_schema_and_the_entry_point(wheelhouse: Path) -> None:
    (wheel,) = wheelhouse.glob("nogil_toolkit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = json.loads(archive.read("nogil_toolkit/nogil.schema.json"))
        (entry_points,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        announced = archive.read(entry_points).decode()
    assert shipped == schema()
    assert "[validate_pyproject.tool_schema]\nnogil = nogil_toolkit.pyproject_schema:tool_schema\n" in announced
