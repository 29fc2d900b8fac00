"""``[tool.nogil]`` parsing: values, resolution rules, and errors that point at the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from nogil_toolkit.config import ConfigError, load_config, parse_config, unmatched_overrides_error
from nogil_toolkit.declaration import GilDeclaration

NOT_USED, USED = GilDeclaration.NOT_USED, GilDeclaration.USED
PATH = Path("pyproject.toml")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, PATH)
    return [str(p) for p in info.value.problems]


def test_absent_file_or_table_means_no_configuration(tmp_path: Path) -> None:
    assert load_config(tmp_path) is None
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.other]\na = 1\n')
    assert load_config(tmp_path) is None
    assert load_config(tmp_path / "pyproject.toml") is None


def test_empty_table_declares_nothing() -> None:
    config = parse_config("[tool.nogil]\n", PATH)
    assert config is not None and config.thread_safe is None
    assert config.declaration_for("pkg.mod") is None


@pytest.mark.parametrize(("value", "expected"), [("true", NOT_USED), ("false", USED)])
def test_package_default(value: str, expected: GilDeclaration) -> None:
    config = parse_config(f"[tool.nogil]\nthread-safe = {value}\n", PATH)
    assert config is not None and config.declaration_for("any.module") is expected


def test_exact_beats_glob_and_specific_glob_beats_general() -> None:
    config = parse_config(
        '[tool.nogil]\nthread-safe = true\n[tool.nogil.modules]\n'
        '"pkg.*" = false\n"pkg.fast.*" = true\n"pkg.fast.legacy" = false\n"pkg._c?" = true\n', PATH)
    assert config is not None
    assert config.declaration_for("pkg.slow") is USED
    assert config.declaration_for("pkg.fast.x") is NOT_USED
    assert config.declaration_for("pkg.fast.legacy") is USED
    assert config.declaration_for("pkg._c1") is NOT_USED
    assert config.declaration_for("other") is NOT_USED


def test_overrides_without_default_leave_other_modules_alone() -> None:
    config = parse_config('[tool.nogil.modules]\n"a.b" = true\n', PATH)
    assert config is not None
    assert config.declaration_for("a.b") is NOT_USED and config.declaration_for("a.c") is None


def test_equally_specific_conflicting_globs_are_an_error_naming_both() -> None:
    config = parse_config('[tool.nogil.modules]\n"pkg.a*" = true\n"pkg.*b" = false\n', PATH)
    assert config is not None and config.declaration_for("pkg.ax") is NOT_USED
    with pytest.raises(ConfigError, match=r"'pkg.a\*' and 'pkg.\*b' both match module 'pkg.ab'"):
        config.declaration_for("pkg.ab")


def test_every_problem_is_reported_with_line_and_column() -> None:
    text = (
        '[project]\nname = "x"\n\n'
        "[tool.nogil]\n"
        "thread_safe = true\n"       # line 5
        '  thread-safe = "yes"\n'    # line 6, indented
        "[tool.nogil.modules]\n"
        '"pkg.a" = 1\n'              # line 8
        '"pkg..b" = true\n'          # line 9
    )
    assert problems(text) == [
        "pyproject.toml:5:1: tool.nogil.thread_safe: unknown key (did you mean 'thread-safe'?); "
        "known keys: thread-safe, modules, check",
        'pyproject.toml:6:3: tool.nogil.thread-safe: expected a boolean (true or false), got string "yes"',
        'pyproject.toml:8:1: tool.nogil.modules."pkg.a": expected a boolean (true or false), got integer 1',
        'pyproject.toml:9:1: tool.nogil.modules."pkg..b": expected a dotted module name (pkg.mod) or a glob '
        '(pkg.*), got "pkg..b"',
    ]


@pytest.mark.parametrize(("text", "where"), [
    ('tool.nogil.thread-safe = "x"\n', "1:1"),
    ('[tool]\nnogil = { thread-safe = "x" }\n', "2:11"),
    ('[tool.nogil]\n# a comment with thread-safe = 1\nthread-safe = "x"\n', "3:1"),
    ('[tool.nogil]\ndoc = """\nthread-safe = 1\n"""\nthread-safe = "x"\n', "5:1"),
])
def test_positions_follow_the_way_the_key_is_written(text: str, where: str) -> None:
    assert any(p.startswith(f"pyproject.toml:{where}: tool.nogil.thread-safe") for p in problems(text)), problems(text)


def test_wrong_types_for_tables() -> None:
    assert problems('[tool]\nnogil = "yes"\n') == ['pyproject.toml:2:1: tool.nogil: expected a table, got string "yes"']
    assert problems("[tool.nogil]\nmodules = [1]\n") == [
        'pyproject.toml:2:1: tool.nogil.modules: expected a table of module names to booleans, '
        'like "pkg.mod" = true, got array']


def test_syntax_error_has_the_parser_position() -> None:
    (message,) = problems("[tool.nogil]\nthread-safe = tru\n")
    assert message.startswith("pyproject.toml:2:15: pyproject.toml: is not valid TOML")


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.nogil]\nthread-safe = \xff\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path)


def test_unmatched_overrides_are_listed_with_what_the_build_produces() -> None:
    config = parse_config('[tool.nogil.modules]\n"pkg.fast" = true\n"pkg.gone.*" = false\n"pkg.typo" = true\n', PATH)
    assert config is not None
    error = unmatched_overrides_error(config, ["pkg.fast", "pkg.slow"])
    assert error is not None
    assert [str(p) for p in error.problems] == [
        'pyproject.toml:3:1: tool.nogil.modules."pkg.gone.*": names no extension module this build produces '
        "(it builds: pkg.fast, pkg.slow)",
        'pyproject.toml:4:1: tool.nogil.modules."pkg.typo": names no extension module this build produces '
        "(it builds: pkg.fast, pkg.slow)",
    ]
    assert unmatched_overrides_error(config, ["pkg.fast", "pkg.gone.x", "pkg.typo"]) is None


def test_check_policy_table() -> None:
    config = parse_config('[tool.nogil.check]\nmode = "unsafe-nogil"\n'
                          '[tool.nogil.check.allow]\n"legacy._c" = "audited: one lock"\n"vendor.*" = " ok "\n', PATH)
    assert config is not None and config.thread_safe is None
    assert config.check.mode == "unsafe-nogil"
    assert [(r.pattern, r.reason, r.line) for r in config.check.allow] == [
        ("legacy._c", "audited: one lock", 4), ("vendor.*", "ok", 5)]
    assert config.check.allow[1].matches("vendor.x._y") and not config.check.allow[0].matches("legacy._d")


def test_check_policy_errors() -> None:
    assert problems('[tool.nogil.check]\nmode = "strict"\nallow = { "a.b" = "" }\nallowed = 1\n') == [
        "pyproject.toml:4:1: tool.nogil.check.allowed: unknown key (did you mean 'allow'?); known keys: mode, allow",
        "pyproject.toml:2:1: tool.nogil.check.mode: expected one of 'gil', 'nogil', 'unsafe-nogil', got string \"strict\"",
        'pyproject.toml:3:11: tool.nogil.check.allow."a.b": expected a non-empty string saying why the module is '
        'accepted, got string ""',
    ]
