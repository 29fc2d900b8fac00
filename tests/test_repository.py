"""The repository's promises about itself: CI runs the README's command, packaging ships
every package and template."""

from __future__ import annotations

import re
import sys

from support import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def readme_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert block, "README must start with a sh code block"
    return block.group(1).strip().splitlines()


def test_readme_starts_with_the_two_commands() -> None:
    head = (REPO / "README.md").read_text().split("```sh", 1)[0]
    assert head.strip().count("\n") <= 1, "the commands must be the README's first lines"
    install_and_run, test = readme_commands()
    assert "nogil-check-env" in install_and_run
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command() -> None:
    lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == readme_commands()[1]


def test_every_package_directory_is_listed_for_packaging() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(REPO / "src").parts) for p in (REPO / "src").rglob("__init__.py")}
    assert found | {"nogil_toolkit.templates"} == listed
