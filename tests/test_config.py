"""``[tool.nogil]`` parsing: values, resolution rules, and errors that point at the text."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support import NOBODY, console_script, unprivileged

from nogil_toolkit.config import ConfigError, load_config, parse_config, unmatched_overrides_error
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.pyproject_file import find_pyproject

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
        "tool.nogil.thread_safe: unknown key (did you mean 'thread-safe'?); "
        "known keys: thread-safe, modules, check, audit (pyproject.toml:5:1)",
        'tool.nogil.thread-safe: expected a boolean (true or false), got string "yes" (pyproject.toml:6:3)',
        'tool.nogil.modules."pkg.a": expected a boolean (true or false), got integer 1 (pyproject.toml:8:1)',
        'tool.nogil.modules."pkg..b": expected a dotted module name (pkg.mod) or a glob '
        '(pkg.*), got "pkg..b" (pyproject.toml:9:1)',
    ]


@pytest.mark.parametrize(("text", "where"), [
    ('tool.nogil.thread-safe = "x"\n', "1:1"),
    ('[tool]\nnogil = { thread-safe = "x" }\n', "2:11"),
    ('[tool.nogil]\n# a comment with thread-safe = 1\nthread-safe = "x"\n', "3:1"),
    ('[tool.nogil]\ndoc = """\nthread-safe = 1\n"""\nthread-safe = "x"\n', "5:1"),
])
def test_positions_follow_the_way_the_key_is_written(text: str, where: str) -> None:
    assert any(p.startswith("tool.nogil.thread-safe: ") and p.endswith(f"(pyproject.toml:{where})")
               for p in problems(text)), problems(text)


def test_wrong_types_for_tables() -> None:
    assert problems('[tool]\nnogil = "yes"\n') == [
        'tool.nogil: expected a table, got string "yes" (pyproject.toml:2:1)']
    assert problems("[tool.nogil]\nmodules = [1]\n") == [
        'tool.nogil.modules: expected a table of module names to booleans, '
        'like "pkg.mod" = true, got array (pyproject.toml:2:1)']


def test_syntax_error_has_the_parser_position() -> None:
    (message,) = problems("[tool.nogil]\nthread-safe = tru\n")
    assert message == "pyproject.toml is not valid TOML: Invalid value (pyproject.toml:2:15)"


# --- hostile files: the same one line and exit 2 from every command that reads pyproject.toml ---

def read_with_each_cli(project: Path, unprivileged_user: bool = False) -> list[subprocess.CompletedProcess[str]]:
    """``declare`` and ``nogil-check-env`` on ``project``, as real processes that must not hang."""
    commands = [[console_script("nogil-toolkit"), "declare", "--project", project, "--thread-safe", "true"],
                [console_script("nogil-check-env"), "--project", project, "--no-cache", "--quiet"]]
    env = {**os.environ, "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return [subprocess.run(unprivileged(cmd) if unprivileged_user else [str(c) for c in cmd],
                           capture_output=True, text=True, env=env, timeout=120, check=False)
            for cmd in commands]


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_directory(path: Path) -> None:
    path.mkdir()


def make_symlink_loop(path: Path) -> None:
    path.symlink_to(path.name)


def make_latin1(path: Path) -> None:
    path.write_bytes("[project]\nname = 'caf\xe9'\n".encode("latin-1"))


def make_nul(path: Path) -> None:
    path.write_bytes(b"[tool.nogil]\nthread-safe = true\0\n")


def make_huge(path: Path) -> None:
    with path.open("wb") as stream:  # sparse: 8 GiB of zeros that take no disk space
        stream.truncate(8 * 1024 ** 3)


def make_invalid_toml(path: Path) -> None:
    path.write_text("[tool.nogil]\nthread-safe = tru\n")


@pytest.mark.parametrize(("make", "message"), [
    (make_fifo, "pyproject.toml is a FIFO (named pipe), not a regular file"),
    (make_directory, "pyproject.toml is a directory, not a regular file"),
    (make_symlink_loop, "pyproject.toml is a symlink loop"),
    (make_latin1, "pyproject.toml is not UTF-8 text (byte 0xe9 at line 2, column 12); TOML files are UTF-8"),
    (make_nul, "pyproject.toml contains a NUL byte at line 2, column 19: it is not a text file"),
    (make_huge, "pyproject.toml is larger than 4 MiB, so it is not a pyproject.toml"),
])
def test_hostile_pyproject_is_one_line_and_exit_2(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "pyproject.toml"
    make(path)
    for result in read_with_each_cli(tmp_path):
        assert (result.returncode, result.stdout) == (2, ""), result
        assert result.stderr == f"error: {message} ({path})\n"
    assert load_config_error(tmp_path) == f"{message} ({path})"


def test_invalid_toml_is_one_line_and_exit_2(tmp_path: Path) -> None:
    make_invalid_toml(tmp_path / "pyproject.toml")
    declare, check_env = read_with_each_cli(tmp_path)
    where = f"({tmp_path / 'pyproject.toml'}:2:15)"
    assert (declare.returncode, declare.stderr) == (
        2, f"error: refusing to edit a file that is not valid TOML: Invalid value {where}\n")
    assert (check_env.returncode, check_env.stderr) == (
        2, f"error: pyproject.toml is not valid TOML: Invalid value {where}\n")


def test_nesting_deeper_than_the_parser_recursion_is_one_line(tmp_path: Path) -> None:
    """A 6 kB file of brackets: tomllib recurses once per level, so without a bound it is a
    RecursionError traceback (and the runtime guard, reading the policy, stopped enforcing)."""
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.nogil]\nthread-safe = true\nx = " + "[" * 3000 + "]" * 3000 + "\n")
    declare, check_env = read_with_each_cli(tmp_path)
    message = "is not valid TOML: arrays or inline tables nested too deeply to read"
    assert (declare.returncode, declare.stderr) == (2, f"error: refusing to edit a file that {message} ({path})\n")
    assert (check_env.returncode, check_env.stderr) == (2, f"error: pyproject.toml {message} ({path})\n")
    assert load_config_error(tmp_path) == f"pyproject.toml {message} ({path})"


def test_unreadable_pyproject_as_an_unprivileged_user(unprivileged_dir: Path) -> None:
    path = unprivileged_dir / "pyproject.toml"
    path.write_text("[tool.nogil]\nthread-safe = false\n")
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    path.chmod(0)
    for result in read_with_each_cli(unprivileged_dir, unprivileged_user=True):
        assert (result.returncode, result.stderr) == (
            2, f"error: pyproject.toml cannot be read: permission denied ({path})\n")
    assert path.read_bytes() == b"[tool.nogil]\nthread-safe = false\n"


def load_config_error(project: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(project)
    return str(info.value)


def test_a_missing_file_named_explicitly_is_named_in_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "pyproject.toml"
    assert load_config(missing) is None
    assert find_pyproject(missing) == missing and find_pyproject(tmp_path) == tmp_path / "pyproject.toml"


# --- unquoted dotted keys -----------------------------------------------------------------------

def test_a_bare_dotted_module_name_gets_a_hint_to_quote_it() -> None:
    text = ('[tool.nogil.modules]\npkg.mod = false\n"ok.mod" = true\npkg.sub._c = 1\n'
            '[tool.nogil.check]\nallow = { legacy._c = "audited" }\n')
    assert problems(text) == [
        'tool.nogil.modules.pkg.mod: unquoted, the dots make nested tables, not the module name "pkg.mod": '
        'did you mean "pkg.mod" = false (quoted)? (pyproject.toml:2:1)',
        'tool.nogil.modules.pkg.sub._c: unquoted, the dots make nested tables, not the module name "pkg.sub._c": '
        'did you mean "pkg.sub._c" = true or false (quoted)? (pyproject.toml:4:1)',
        'tool.nogil.check.allow.legacy._c: unquoted, the dots make nested tables, not the module name "legacy._c": '
        'did you mean "legacy._c" = "audited" (quoted)? (pyproject.toml:6:11)',
    ]


def test_a_sub_table_header_under_modules_gets_the_hint_too() -> None:
    assert problems("[tool.nogil.modules.pkg]\nmod = true\n") == [
        'tool.nogil.modules.pkg.mod: unquoted, the dots make nested tables, not the module name "pkg.mod": '
        'did you mean "pkg.mod" = true (quoted)? (pyproject.toml:2:1)']


def test_unmatched_overrides_are_listed_with_what_the_build_produces() -> None:
    config = parse_config('[tool.nogil.modules]\n"pkg.fast" = true\n"pkg.gone.*" = false\n"pkg.typo" = true\n', PATH)
    assert config is not None
    error = unmatched_overrides_error(config, ["pkg.fast", "pkg.slow"])
    assert error is not None
    assert [str(p) for p in error.problems] == [
        'tool.nogil.modules."pkg.gone.*": names no extension module this build produces '
        "(it builds: pkg.fast, pkg.slow) (pyproject.toml:3:1)",
        'tool.nogil.modules."pkg.typo": names no extension module this build produces '
        "(it builds: pkg.fast, pkg.slow) (pyproject.toml:4:1)",
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
        "tool.nogil.check.allowed: unknown key (did you mean 'allow'?); known keys: mode, allow (pyproject.toml:4:1)",
        "tool.nogil.check.mode: expected one of 'gil', 'nogil', 'unsafe-nogil', got string \"strict\" "
        "(pyproject.toml:2:1)",
        'tool.nogil.check.allow."a.b": expected a non-empty string saying why the module is '
        'accepted, got string "" (pyproject.toml:3:11)',
    ]
