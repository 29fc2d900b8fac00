"""``nogil-toolkit validate``: the check behind the nogil-declaration pre-commit hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from nogil_toolkit.__main__ import main


def write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pyproject.toml"
    path.write_text(text)
    return path


def test_valid_and_absent_tables_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    declared = write(tmp_path / "a", '[tool.nogil]\nthread-safe = true\n[tool.nogil.modules]\n"a._x" = false\n')
    plain = write(tmp_path / "b", '[project]\nname = "b"\n')
    assert main(["validate", str(declared), str(plain.parent)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"{declared}: [tool.nogil] is valid",
                                         f"{plain}: no [tool.nogil] table, nothing declared"]


def test_every_problem_is_one_error_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, '[tool.nogil]\nthread_safe = true\n[tool.nogil.check]\nmode = "none"\n')
    assert main(["validate", str(bad)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: tool.nogil.thread_safe: unknown key (did you mean 'thread-safe'?); known keys: thread-safe, "
        f"modules, check, audit ({bad}:2:1)",
        f"error: tool.nogil.check.mode: expected one of 'gil', 'nogil', 'unsafe-nogil', got string \"none\" ({bad}:4:1)",
    ]


def test_not_toml_is_exit_1_with_the_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "[tool.nogil\n")
    assert main(["validate", str(bad)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: pyproject.toml is not valid TOML") and line.endswith(f"({bad}:1:12)")


def test_the_worst_status_of_several_files_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path / "good", "[tool.nogil]\nthread-safe = false\n")
    bad = write(tmp_path / "bad", "[tool.nogil]\nthread-safe = 1\n")
    assert main(["validate", str(good), str(bad)]) == 1
    assert main(["validate", str(good), str(tmp_path / "missing" / "pyproject.toml"), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"error: no pyproject.toml found ({tmp_path / 'missing' / 'pyproject.toml'})" in err


def test_a_directory_named_pyproject_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").mkdir()
    assert main(["validate", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and line.endswith(f"({tmp_path / 'pyproject.toml'})")
