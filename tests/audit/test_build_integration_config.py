"""``[tool.nogil.audit] build``: the build audit's mode, validated like every other key."""

from __future__ import annotations

from pathlib import Path

import pytest

from nogil_toolkit.config import ConfigError, parse_config

PATH = Path("pyproject.toml")
HEAD = "[tool.nogil]\nthread-safe = true\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, PATH)
    return [str(p) for p in caught.value.problems]


def test_default_is_warn_and_each_mode_is_read_with_its_position() -> None:
    config = parse_config(HEAD, PATH)
    assert config is not None and config.audit.build == "warn" and config.audit.build_position is None
    for mode in ("warn", "error", "off"):
        config = parse_config(f'{HEAD}[tool.nogil.audit]\nignore = []\nbuild = "{mode}"\n', PATH)
        assert config is not None and (config.audit.build, config.audit.build_position) == (mode, (5, 1))


@pytest.mark.parametrize(("value", "shown"), [('"warning"', 'string "warning"'), ("true", "boolean true"),
                                              ("1", "integer 1"), ('["warn"]', "array")])
def test_other_values_are_refused_with_the_place(value: str, shown: str) -> None:
    assert problems(f"{HEAD}[tool.nogil.audit]\nbuild = {value}\n") == [
        f"tool.nogil.audit.build: expected one of 'warn', 'error', 'off', got {shown} (pyproject.toml:4:1)"]


def test_the_mode_written_as_the_issue_first_proposed_points_to_the_table_key() -> None:
    assert problems(f'{HEAD}audit = "error"\n') == [
        'tool.nogil.audit: expected a table, got string "error"; the build audit\'s mode is written '
        '[tool.nogil.audit] build = "error" (pyproject.toml:3:1)']


def test_unknown_audit_keys_list_build_among_the_known_ones() -> None:
    assert problems(f'{HEAD}[tool.nogil.audit]\nbuidl = "off"\n') == [
        "tool.nogil.audit.buidl: unknown key (did you mean 'build'?); known keys: ignore, exclude, build "
        "(pyproject.toml:4:1)"]
