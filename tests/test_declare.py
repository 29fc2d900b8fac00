"""``nogil-toolkit declare``: real pyproject.toml files edited in tmp_path, compared byte for byte.

Every expected text below is written out by hand: a golden file is the only way to be sure
that the lines ``declare`` did not mean to touch are exactly as they were.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import NOBODY, console_script, unprivileged

from nogil_toolkit import pyproject_edit
from nogil_toolkit.__main__ import main
from nogil_toolkit.config import load_config, parse_config
from nogil_toolkit.declaration import GilDeclaration
from nogil_toolkit.pyproject_edit import DeclarationChange, DeclareError, FreeThreadingLevel, declare_in_text

BETA = "Programming Language :: Python :: Free Threading :: 2 - Beta"
STABLE = "Programming Language :: Python :: Free Threading :: 3 - Stable"


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    text: str
    path: str


@pytest.fixture
def declare(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Write ``text`` to tmp_path/pyproject.toml, run ``declare ARGS`` in-process, read it back."""

    def run(text: str, *args: str, newline: str = "\n") -> Outcome:
        path = tmp_path / "pyproject.toml"
        path.write_bytes(text.replace("\n", newline).encode("utf-8"))
        code = main(["declare", "--project", str(tmp_path), *args])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err, path.read_bytes().decode("utf-8"), str(path))

    return run


def usage_error(*args: str) -> int:
    """argparse reports bad values by exiting; the code is what a shell would see."""
    with pytest.raises(SystemExit) as exc_info:
        main(["declare", *args])
    return int(exc_info.value.code)


# --- formatting is kept --------------------------------------------------------------------

RICH = """\
# pyproject.toml for demo: keep this header comment
[build-system]
requires = ['setuptools>=77', "nogil-setuptools"]   # single and double quotes
build-backend = "setuptools.build_meta"

[project]
name = "demo"
version = "1.0"
classifiers = [
    # Status
    "Development Status :: 4 - Beta",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: Free Threading :: 1 - Unstable",  # first try
    "Typing :: Typed",
]

[tool.setuptools]
packages = ["demo"]

[tool.nogil]
# Everything is safe, except the legacy module.
thread-safe = false    # flipped by declare

[tool.nogil.modules]
'demo._legacy' = false   # literal-quoted key stays literal

[tool.pytest.ini_options]
addopts = "-ra"
"""

RICH_DECLARED = """\
# pyproject.toml for demo: keep this header comment
[build-system]
requires = ['setuptools>=77', "nogil-setuptools"]   # single and double quotes
build-backend = "setuptools.build_meta"

[project]
name = "demo"
version = "1.0"
classifiers = [
    # Status
    "Development Status :: 4 - Beta",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: Free Threading :: 2 - Beta",  # first try
    "Typing :: Typed",
]

[tool.setuptools]
packages = ["demo"]

[tool.nogil]
# Everything is safe, except the legacy module.
thread-safe = true    # flipped by declare

[tool.nogil.modules]
'demo._legacy' = false   # literal-quoted key stays literal
"demo._fast" = true

[tool.pytest.ini_options]
addopts = "-ra"
"""


def test_only_the_declared_lines_change(declare) -> None:
    result = declare(RICH, "--thread-safe", "true", "--module", "demo._fast=true", "--classifier", "beta")
    assert result.code == 0
    assert result.text == RICH_DECLARED
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "set tool.nogil.thread-safe = true",
        'set tool.nogil.modules."demo._fast" = true',
        'replaced classifier "Programming Language :: Python :: Free Threading :: 1 - Unstable" with '
        f'"{BETA}"',
    ]


def test_edited_file_is_accepted_by_load_config(declare, tmp_path: Path) -> None:
    assert declare(RICH, "--thread-safe", "true", "--module", "demo.vendored.*=false").code == 0
    config = load_config(tmp_path)
    assert config is not None
    assert config.thread_safe is True
    assert config.declaration_for("demo._legacy") is GilDeclaration.USED
    assert config.declaration_for("demo.vendored.zlib") is GilDeclaration.USED
    assert config.declaration_for("demo._speedups") is GilDeclaration.NOT_USED


# --- creating [tool.nogil] -----------------------------------------------------------------

def test_new_table_goes_after_the_last_tool_table(declare) -> None:
    before = """\
[tool.setuptools]
packages = ["demo"]

[project]
name = "demo"

[tool.pytest.ini_options]
addopts = "-ra"

[project.urls]
Homepage = "https://example.org"
"""
    after = """\
[tool.setuptools]
packages = ["demo"]

[project]
name = "demo"

[tool.pytest.ini_options]
addopts = "-ra"

[tool.nogil]
thread-safe = true

[tool.nogil.modules]
"demo._legacy" = false

[project.urls]
Homepage = "https://example.org"
"""
    result = declare(before, "--thread-safe", "true", "--module", "demo._legacy=false")
    assert (result.code, result.text) == (0, after)


def test_new_table_goes_at_the_end_without_tool_tables(declare) -> None:
    before = '[project]\nname = "demo"  # the name\n'
    after = '[project]\nname = "demo"  # the name\n\n[tool.nogil]\nthread-safe = false\n'
    assert declare(before, "--thread-safe", "false").text == after


def test_only_an_override_creates_just_the_modules_table(declare) -> None:
    before = '[project]\nname = "demo"\n'
    after = '[project]\nname = "demo"\n\n[tool.nogil.modules]\n"demo.*" = true\n'
    assert declare(before, "--module", "demo.*=true").text == after


def test_thread_safe_joins_an_existing_modules_table(declare) -> None:
    before = '[tool.nogil.modules]\n"demo._legacy" = false\n'
    after = '[tool.nogil]\nthread-safe = true\n\n[tool.nogil.modules]\n"demo._legacy" = false\n'
    assert declare(before, "--thread-safe", "true").text == after


def test_a_file_without_final_newline_keeps_lacking_one(declare) -> None:
    result = declare('[project]\nname = "demo"', "--thread-safe", "true")
    assert result.text.endswith("thread-safe = true")
    config = parse_config(result.text, Path("pyproject.toml"))
    assert config is not None and config.thread_safe is True


# --- other styles are edited in place ------------------------------------------------------

def test_dotted_keys_stay_dotted(declare) -> None:
    before = """\
[tool]
nogil.thread-safe = false  # for now
black.line-length = 100
"""
    after = """\
[tool]
nogil.thread-safe = true  # for now
nogil.modules."demo._legacy" = false
black.line-length = 100
"""
    assert declare(before, "--thread-safe", "true", "--module", "demo._legacy=false").text == after


def test_top_level_dotted_keys_stay_dotted(declare) -> None:
    before = 'tool.nogil.modules."demo.a" = true\n\n[project]\nname = "demo"\n'
    after = 'tool.nogil.modules."demo.a" = true\ntool.nogil.modules."demo.b" = false\n\n[project]\nname = "demo"\n'
    assert declare(before, "--module", "demo.b=false").text == after


def test_inline_table_stays_inline(declare) -> None:
    before = '[tool]\nnogil = { thread-safe = true }  # one line\n'
    after = '[tool]\nnogil = { thread-safe = false, modules = { "demo._legacy" = false } }  # one line\n'
    assert declare(before, "--thread-safe", "false", "--module", "demo._legacy=false").text == after


def test_inline_table_keeps_compact_layout_on_removal(declare) -> None:
    before = '[tool]\nnogil = {thread-safe = true, modules = {"a" = false, "b" = true}}\n'
    after = '[tool]\nnogil = {thread-safe = true, modules = {"b" = true}}\n'
    assert declare(before, "--unset-module", "a").text == after


# --- overrides ----------------------------------------------------------------------------

MODULES = """\
[tool.nogil]
thread-safe = true

[tool.nogil.modules]
# the C parts that still use globals
"demo._legacy" = false
"demo._older" = false  # remove me

[tool.other]
key = "value"
"""


def test_override_is_changed_and_removed(declare) -> None:
    after = """\
[tool.nogil]
thread-safe = true

[tool.nogil.modules]
# the C parts that still use globals
"demo._legacy" = true

[tool.other]
key = "value"
"""
    result = declare(MODULES, "--module", "demo._legacy=true", "--unset-module", "demo._older")
    assert (result.code, result.text) == (0, after)
    assert result.stderr.splitlines() == ['set tool.nogil.modules."demo._legacy" = true',
                                          'removed tool.nogil.modules."demo._older"']


def test_removing_the_last_override_drops_the_table(declare) -> None:
    after = """\
[tool.nogil]
thread-safe = true

[tool.other]
key = "value"
"""
    result = declare(MODULES, "--unset-module", "demo._legacy", "--unset-module", "demo._older")
    assert result.text == after


def test_unset_thread_safe(declare) -> None:
    result = declare(MODULES, "--unset-thread-safe")
    assert result.text == MODULES.replace("thread-safe = true\n", "")
    assert result.stderr == "removed tool.nogil.thread-safe\n"


# --- classifiers --------------------------------------------------------------------------

def test_classifier_goes_in_sorted_place_of_a_multiline_array(declare) -> None:
    before = """\
[project]
name = "demo"
classifiers = [
  "Development Status :: 5 - Production/Stable",
  "Programming Language :: Python :: 3",
  "Topic :: Software Development",
]
"""
    after = """\
[project]
name = "demo"
classifiers = [
  "Development Status :: 5 - Production/Stable",
  "Programming Language :: Python :: 3",
  "Programming Language :: Python :: Free Threading :: 3 - Stable",
  "Topic :: Software Development",
]
"""
    result = declare(before, "--classifier", "3")
    assert (result.code, result.text) == (0, after)
    assert result.stderr == f'added classifier "{STABLE}"\n'


def test_classifier_is_appended_to_an_unsorted_array(declare) -> None:
    before = '[project]\nname = "demo"\nclassifiers = ["Typing :: Typed", "Framework :: Pytest"]\n'
    after = f'[project]\nname = "demo"\nclassifiers = ["Typing :: Typed", "Framework :: Pytest", "{BETA}"]\n'
    assert declare(before, "--classifier", "2 - Beta").text == after


def test_classifier_array_is_created_multiline(declare) -> None:
    before = '[project]\nname = "demo"\n\n[tool.x]\ny = 1\n'
    after = f'[project]\nname = "demo"\nclassifiers = [\n    "{STABLE}",\n]\n\n[tool.x]\ny = 1\n'
    assert declare(before, "--classifier", "stable").text == after


def test_other_free_threading_levels_are_replaced(declare) -> None:
    before = f'[project]\nname = "demo"\nclassifiers = [\n    "{BETA}",\n    "Typing :: Typed",\n    "{STABLE}",\n]\n'
    after = ('[project]\nname = "demo"\nclassifiers = [\n'
             '    "Programming Language :: Python :: Free Threading :: 4 - Resilient",\n    "Typing :: Typed",\n]\n')
    assert declare(before, "--classifier", "Resilient").text == after


@pytest.mark.parametrize(("name", "level"), [
    ("1", FreeThreadingLevel.UNSTABLE), ("unstable", FreeThreadingLevel.UNSTABLE),
    ("2", FreeThreadingLevel.BETA), ("BETA", FreeThreadingLevel.BETA),
    ("3", FreeThreadingLevel.STABLE), ("3 - Stable", FreeThreadingLevel.STABLE),
    ("4", FreeThreadingLevel.RESILIENT), ("resilient", FreeThreadingLevel.RESILIENT),
])
def test_classifier_levels(name: str, level: FreeThreadingLevel) -> None:
    assert FreeThreadingLevel.from_name(name) is level
    assert level.classifier == f"Programming Language :: Python :: Free Threading :: {level.value}"


def test_dynamic_classifiers_are_refused(declare) -> None:
    before = '[project]\nname = "demo"\ndynamic = ["version", "classifiers"]\n'
    result = declare(before, "--classifier", "stable", "--thread-safe", "true")
    assert (result.code, result.text) == (1, before)
    assert "error: \"classifiers\" is listed in project.dynamic" in result.stderr
    assert "pyproject.toml:3:1)" in result.stderr


def test_classifier_needs_a_project_table(declare) -> None:
    result = declare("[tool.x]\ny = 1\n", "--classifier", "stable")
    assert (result.code, result.text) == (1, "[tool.x]\ny = 1\n")
    assert "no [project] table" in result.stderr


# --- refusals -----------------------------------------------------------------------------

def test_unparsable_file_is_refused_and_left_byte_identical(declare, tmp_path: Path) -> None:
    before = '[project]\nname = "demo"\n\n[tool.nogil\nthread-safe = true\n'
    result = declare(before, "--thread-safe", "false")
    assert result.code == 2
    assert result.text == before
    path = tmp_path / "pyproject.toml"
    assert result.stderr.startswith("error: refusing to edit a file that is not valid TOML")
    assert f"({path}:4:12)" in result.stderr


@pytest.mark.parametrize("option", [("--thread-safe", "false"), ("--build-system",)])
def test_nesting_tomlkit_cannot_edit_is_refused_and_left_byte_identical(declare, option: tuple[str, ...]) -> None:
    """tomllib reads 150 levels of arrays, tomlkit stops at 100: one line, exit 1, no edit."""
    before = '[project]\nname = "demo"\n[tool.other]\nx = ' + "[" * 150 + "]" * 150 + "\n"
    result = declare(before, *option)
    assert (result.code, result.text) == (1, before)
    assert result.stderr == ("error: tomlkit cannot edit this file (TOML value nested more than 100 levels deep at "
                             f"line 4 col 104); nothing was written ({result.path})\n")


def test_invalid_result_is_refused(declare) -> None:
    before = "[tool.nogil]\nthreadsafe = true\n"
    result = declare(before, "--thread-safe", "true")
    assert (result.code, result.text) == (1, before)
    assert result.stderr.splitlines() == [
        "error: tool.nogil.threadsafe: unknown key (did you mean 'thread-safe'?); known keys: thread-safe, modules, "
        f"check, audit ({Path(result.path)}:2:1)",
        "nothing was written: [tool.nogil] would still not validate after this edit"]


def test_a_bare_dotted_module_key_is_refused_with_a_hint(declare) -> None:
    before = "[tool.nogil.modules]\npkg.mod = false\n"
    result = declare(before, "--thread-safe", "true")
    assert (result.code, result.text) == (1, before)
    assert ('error: tool.nogil.modules.pkg.mod: unquoted, the dots make nested tables, not the module name '
            f'"pkg.mod": did you mean "pkg.mod" = false (quoted)? ({result.path}:2:1)') in result.stderr.splitlines()


def test_invalid_declaration_is_fixed_with_a_note(declare) -> None:
    result = declare('[tool.nogil]\nthread-safe = "yes"\n', "--thread-safe", "true")
    assert (result.code, result.text) == (0, "[tool.nogil]\nthread-safe = true\n")
    assert "note: the existing [tool.nogil] did not validate; this edit fixes it:" in result.stderr
    assert 'tool.nogil.thread-safe: expected a boolean (true or false), got string "yes"' in result.stderr


def test_a_non_table_in_the_way_is_refused(declare) -> None:
    before = '[tool.nogil]\nmodules = ["demo._legacy"]\n'
    result = declare(before, "--module", "demo._legacy=false")
    assert (result.code, result.text) == (1, before)
    assert "tool.nogil.modules is an array, not a table" in result.stderr
    assert "pyproject.toml:2:1)" in result.stderr


def test_an_edit_that_changes_meaning_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last line of defence against layout bugs: the result must mean what was asked."""
    monkeypatch.setattr(pyproject_edit, "_apply", lambda text, change: text + "[project]\nname = 'x'\n")
    with pytest.raises(DeclareError, match="would not mean what was asked"):
        declare_in_text("[tool.nogil]\nthread-safe = true\n", [DeclarationChange.thread_safe(False)])


# --- newlines, dry run, no-op ---------------------------------------------------------------

def test_crlf_is_preserved(declare) -> None:
    result = declare(MODULES, "--thread-safe", "false", "--module", "demo.new=true", newline="\r\n")
    expected = MODULES.replace("thread-safe = true", "thread-safe = false").replace(
        '"demo._older" = false  # remove me\n', '"demo._older" = false  # remove me\n"demo.new" = true\n')
    assert result.text == expected.replace("\n", "\r\n")


def test_dry_run_prints_a_diff_and_writes_nothing(declare, tmp_path: Path) -> None:
    result = declare(MODULES, "--thread-safe", "false", "--dry-run")
    assert (result.code, result.text) == (0, MODULES)
    path = tmp_path / "pyproject.toml"
    assert result.stdout == (f"--- {path} (current)\n+++ {path} (declared)\n"
                             "@@ -1,5 +1,5 @@\n [tool.nogil]\n-thread-safe = true\n+thread-safe = false\n"
                             " \n [tool.nogil.modules]\n # the C parts that still use globals\n")
    assert result.stderr == "set tool.nogil.thread-safe = false\ndry run: nothing written\n"


def test_no_change_writes_nothing(declare, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(MODULES, encoding="utf-8")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    inode = path.stat().st_ino
    code = main(["declare", "--project", str(path), "--thread-safe", "true", "--module", "demo._legacy=false",
                 "--unset-module", "demo.absent"])
    assert code == 0
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert path.stat().st_ino == inode
    assert capsys.readouterr().err == f"{path}: no change needed, nothing written\n"


def test_show_prints_the_declaration_as_json(declare, tmp_path: Path) -> None:
    result = declare(RICH, "--show", "--dry-run", "--classifier", "stable")
    assert result.text == RICH
    assert json.loads(result.stdout) == {
        "pyproject": str((tmp_path / "pyproject.toml").resolve()),
        "thread-safe": False,
        "modules": {"demo._legacy": False},
        "classifier": STABLE,
    }


# --- writing ------------------------------------------------------------------------------

def test_write_replaces_the_file_and_keeps_its_permissions(declare, tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(MODULES, encoding="utf-8")
    path.chmod(0o640)
    inode = path.stat().st_ino
    assert main(["declare", "--project", str(tmp_path), "--thread-safe", "false"]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != inode  # a new file was renamed over the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


def test_a_symlinked_pyproject_is_edited_through_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    real.write_text(MODULES, encoding="utf-8")
    (tmp_path / "pyproject.toml").symlink_to(real)
    assert main(["declare", "--project", str(tmp_path), "--thread-safe", "false"]) == 0
    assert (tmp_path / "pyproject.toml").is_symlink()
    assert "thread-safe = false" in real.read_text(encoding="utf-8")


def test_failed_rename_leaves_the_original_and_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(MODULES, encoding="utf-8")

    def crash(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    assert main(["declare", "--project", str(tmp_path), "--thread-safe", "false"]) == 1
    assert path.read_text(encoding="utf-8") == MODULES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]
    # Only the error: no "set ..." line claims a change that did not happen.
    assert capsys.readouterr().err == \
        f"error: cannot write pyproject.toml, it was left unchanged: No space left on device ({path})\n"


def test_a_failed_directory_sync_after_the_rename_says_the_file_was_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(MODULES, encoding="utf-8")
    real_fsync = os.fsync

    def fsync_failing_on_directories(descriptor: int) -> None:
        if stat.S_ISDIR(os.fstat(descriptor).st_mode):
            raise OSError(5, "Input/output error")
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync_failing_on_directories)
    assert main(["declare", "--project", str(tmp_path), "--thread-safe", "false"]) == 3
    assert "thread-safe = false" in path.read_text(encoding="utf-8")
    assert capsys.readouterr().err.splitlines() == [
        f"warning: {path} was written, but syncing its directory failed (Input/output error): "
        "a crash or power loss may still undo the change",
        "set tool.nogil.thread-safe = false"]


def test_an_interrupt_while_writing_leaves_the_original_and_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where signals cannot be held back (not the main thread), Ctrl-C still cleans up."""
    path = tmp_path / "pyproject.toml"
    path.write_text(MODULES, encoding="utf-8")

    def interrupted(descriptor: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    # The command ends as interrupted (130, one line), the original file intact.
    assert main(["declare", "--project", str(tmp_path), "--thread-safe", "false"]) == 130
    assert path.read_text(encoding="utf-8") == MODULES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


SIGINT_AFTER_MKSTEMP = """
import os, signal, sys, tempfile
from nogil_toolkit.__main__ import main
real_mkstemp = tempfile.mkstemp
def mkstemp(*args, **kwargs):
    created = real_mkstemp(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGINT)   # the temporary file exists, its name is not returned yet
    return created
tempfile.mkstemp = mkstemp
sys.exit(main(["declare", "--project", sys.argv[1], "--thread-safe", "false"]))
"""


def test_sigint_between_creating_and_naming_the_temp_file_leaves_no_file(tmp_path: Path) -> None:
    """The one window a try/finally cannot cover: the signal is held back until the file is in place."""
    path = tmp_path / "pyproject.toml"
    path.write_text(MODULES, encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", SIGINT_AFTER_MKSTEMP, str(tmp_path)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0, result  # the interrupt still ends the command...
    assert path.read_text(encoding="utf-8") == MODULES.replace("thread-safe = true", "thread-safe = false")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]  # ...once the file is whole


def test_a_read_only_file_is_refused_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Root could write it, but its owner marked it read-only: that is not for a tool to overrule."""
    path = tmp_path / "pyproject.toml"
    path.write_text(MODULES, encoding="utf-8")
    path.chmod(0o444)
    assert main(["declare", "--project", str(tmp_path), "--thread-safe", "false"]) == 1
    owner = path.stat().st_uid
    assert capsys.readouterr().err == (
        f"error: pyproject.toml is read-only (mode 0444, owner uid {owner}); nothing was written; "
        f"run with --force to replace it anyway (it stays read-only) ({path})\n")
    assert path.read_text(encoding="utf-8") == MODULES
    assert main(["declare", "--project", str(tmp_path), "--thread-safe", "false", "--force"]) == 0
    assert "thread-safe = false" in path.read_text(encoding="utf-8")
    assert (stat.S_IMODE(path.stat().st_mode), path.stat().st_uid) == (0o444, owner)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can edit another user's file")
def test_root_keeps_the_owner_group_and_mode_of_another_users_file(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(MODULES, encoding="utf-8")
    os.chown(path, NOBODY, NOBODY)
    path.chmod(0o640)
    assert main(["declare", "--project", str(tmp_path), "--thread-safe", "false"]) == 0
    status = path.stat()
    assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (NOBODY, NOBODY, 0o640)
    assert "thread-safe = false" in path.read_text(encoding="utf-8")


def declare_unprivileged(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(unprivileged([console_script(), "declare", "--project", str(project), "--thread-safe",
                                        "false", *args]),
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"})


def own_file(directory: Path, mode: int, owner: int = NOBODY) -> Path:
    """``directory/pyproject.toml`` with MODULES, owned by ``owner`` (when root can arrange it)."""
    path = directory / "pyproject.toml"
    path.write_text(MODULES, encoding="utf-8")
    if os.geteuid() == 0:
        os.chown(path, owner, owner)
    path.chmod(mode)
    return path


def test_read_only_directory_leaves_the_original_intact(unprivileged_dir: Path) -> None:
    path = own_file(unprivileged_dir, 0o644)
    unprivileged_dir.chmod(0o555)
    result = declare_unprivileged(unprivileged_dir)
    assert (result.returncode, result.stderr) == (1, (
        f"error: the directory {unprivileged_dir} is not writable by you, so pyproject.toml cannot be replaced; "
        f"nothing was written ({path})\n"))
    assert path.read_text(encoding="utf-8") == MODULES


def test_an_unprivileged_owner_may_force_a_read_only_file(unprivileged_dir: Path) -> None:
    path = own_file(unprivileged_dir, 0o444)
    refused = declare_unprivileged(unprivileged_dir)
    assert refused.returncode == 1 and "is read-only (mode 0444" in refused.stderr, refused
    assert path.read_text(encoding="utf-8") == MODULES
    forced = declare_unprivileged(unprivileged_dir, "--force")
    assert (forced.returncode, forced.stderr) == (0, "set tool.nogil.thread-safe = false\n")
    status = path.stat()
    assert (status.st_uid, stat.S_IMODE(status.st_mode)) == (os.geteuid() if os.geteuid() else NOBODY, 0o444)
    assert sorted(p.name for p in unprivileged_dir.iterdir()) == ["pyproject.toml"]


@pytest.mark.parametrize(("mode", "message"), [
    (0o644, "pyproject.toml is not writable by you (mode 0644, owner uid 0); nothing was written"),
    (0o666, "pyproject.toml belongs to uid 0: a replacement written by you (uid 65534) would belong to you; "
            "nothing was written. Run as its owner"),
    (0o444, "pyproject.toml is read-only (mode 0444, owner uid 0); nothing was written"),
])
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_another_users_file_is_never_replaced(unprivileged_dir: Path, mode: int, message: str) -> None:
    path = own_file(unprivileged_dir, mode, owner=0)
    result = declare_unprivileged(unprivileged_dir, "--force")
    assert (result.returncode, result.stderr) == (1, f"error: {message} ({path})\n")
    assert path.read_text(encoding="utf-8") == MODULES and path.stat().st_uid == 0


def test_write_that_fails_midway_leaves_the_original_intact(tmp_path: Path) -> None:
    """A real failure while writing (no byte may be written: RLIMIT_FSIZE=0), even as root."""
    path = tmp_path / "pyproject.toml"
    path.write_text(MODULES, encoding="utf-8")
    result = subprocess.run(
        [console_script(), "declare", "--project", str(tmp_path), "--thread-safe", "false"],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0)))
    assert result.returncode == 1, result.stderr
    assert "cannot write pyproject.toml, it was left unchanged" in result.stderr
    assert "File too large" in result.stderr
    assert path.read_text(encoding="utf-8") == MODULES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


def test_console_script(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "demo"\n', encoding="utf-8")
    result = subprocess.run([console_script(), "declare", "--project", str(tmp_path), "--thread-safe", "true"],
                            capture_output=True, text=True, check=False, env={**os.environ, "NO_COLOR": "1"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "set tool.nogil.thread-safe = true\n")
    assert path.read_text(encoding="utf-8") == '[project]\nname = "demo"\n\n[tool.nogil]\nthread-safe = true\n'


# --- usage errors -------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--module", "demo._legacy"],
    ["--module", "demo._legacy=maybe"],
    ["--module", "demo legacy=true"],
    ["--module", "=true"],
    ["--unset-module", "demo..x"],
    ["--thread-safe", "yes"],
    ["--thread-safe", "true", "--unset-thread-safe"],
    ["--classifier", "5"],
])
def test_bad_options_are_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert usage_error(*args) == 2
    assert "error:" in capsys.readouterr().err


def test_bad_module_says_what_was_expected(capsys: pytest.CaptureFixture[str]) -> None:
    assert usage_error("--module", "demo._legacy") == 2
    assert "expected NAME=true or NAME=false, got 'demo._legacy'" in capsys.readouterr().err


@pytest.mark.parametrize("args", [[], ["--module", "a=true", "--unset-module", "a"],
                                  ["--module", "a=true", "--module", "a=false"]])
def test_nothing_or_contradictions_to_declare(args: list[str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(MODULES, encoding="utf-8")
    assert main(["declare", "--project", str(tmp_path), *args]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert (tmp_path / "pyproject.toml").read_text(encoding="utf-8") == MODULES


def test_missing_pyproject(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["declare", "--project", str(tmp_path), "--thread-safe", "true"]) == 2
    assert capsys.readouterr().err == f"error: no pyproject.toml found ({tmp_path / 'pyproject.toml'})\n"


@pytest.mark.parametrize(("given", "message"), [
    ("missing/pyproject.toml", "no pyproject.toml found"),
    ("missing", "no such file or directory"),
])
def test_a_missing_project_path_is_named_as_given(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  given: str, message: str) -> None:
    assert main(["declare", "--project", str(tmp_path / given), "--thread-safe", "true"]) == 2
    assert capsys.readouterr().err == f"error: {message} ({tmp_path / given})\n"
