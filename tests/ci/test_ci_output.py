"""CI-native output of ``nogil-check-env`` and ``wheel verify``: GitHub workflow commands that
survive hostile file names, SARIF 2.1.0 valid against the official schema, exit codes unchanged."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest

from ci_support import parse_workflow_command
from nogil_toolkit import main_check_env
from nogil_toolkit.__main__ import main as toolkit_main
from nogil_toolkit.workflow_commands import annotation, escape_data, escape_property
from support import install, make_venv, run, site_packages

pytestmark = pytest.mark.freethreaded

# A folder name with every character the format gives a meaning to, and a forged command.
HOSTILE = "we,ird: dir 100% %0A done\nnext::error file=x.py::forged\rback"


def validate_sarif(log: dict[str, Any], schema: dict[str, Any]) -> None:
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator(schema, format_checker=validator.FORMAT_CHECKER).iter_errors(log)]
    assert errors == []


def check_env(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = main_check_env.main([*map(str, args)])
    return code, capsys.readouterr().out


def wheel_verify(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = toolkit_main(["wheel", "verify", *map(str, args)])
    return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory, ci_wheels: dict[str, Path]) -> Path:
    """A --path folder with a hostile name holding ``_ext``, a module that declares nothing."""
    folder = tmp_path_factory.mktemp("hostile") / HOSTILE
    folder.mkdir()
    with zipfile.ZipFile(ci_wheels["plain"]) as archive:
        (member,) = [n for n in archive.namelist() if n.startswith("plain/_ext.") and n.endswith(".so")]
        (folder / Path(member).name).write_bytes(archive.read(member))
    return folder


USED_C = """
#include <Python.h>
static PyModuleDef_Slot slots[] = {{Py_mod_gil, Py_MOD_GIL_USED}, {0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_used", NULL, 0, NULL, slots};
PyMODINIT_FUNC PyInit__used(void) { return PyModuleDef_Init(&def); }
"""


@pytest.fixture(scope="module")
def other_verdicts(tmp_path_factory: pytest.TempPathFactory, ft_python: str, ft_abi: tuple[str, str],
                   hostile_dir: Path) -> Path:
    """A --path folder with ``_used`` (declares Py_MOD_GIL_USED) and ``_gil``, a file built for
    the GIL build's suffix, which the free-threaded interpreter cannot load."""
    folder = tmp_path_factory.mktemp("other-verdicts")
    include = run([ft_python, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"]).stdout.strip()
    (folder / "used.c").write_text(USED_C)
    run(["cc", "-shared", "-fPIC", f"-I{include}", folder / "used.c", "-o", folder / f"_used{ft_abi[1]}"])
    (folder / "used.c").unlink()
    shutil.copy(next(hostile_dir.iterdir()), folder / f"_gil{ft_abi[1].replace('t-', '-', 1)}")
    return folder


@pytest.fixture(scope="module")
def venv(ft_python: str, ci_wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A free-threaded venv with twins (declares not-used) and plain (declares nothing)."""
    python = make_venv(ft_python, tmp_path_factory.mktemp("ci-venv") / "venv")
    install(python, ci_wheels["twins"], ci_wheels["plain"])
    return python


def test_escaping_follows_githubs_rules() -> None:
    assert escape_data("a,b: 100%\r\nz") == "a,b: 100%25%0D%0Az"
    assert escape_property("a,b: 100%\r\nz") == "a%2Cb%3A 100%25%0D%0Az"
    line = annotation("warning", "50% of\nit", file="x,y:z.so", line=3, title="t: 1, 2")
    assert line == "::warning file=x%2Cy%3Az.so,line=3,title=t%3A 1%2C 2::50%25 of%0Ait"
    for text in (HOSTILE, "%25", "%%0A", "::", ",=", "\r\n"):
        parsed = parse_workflow_command(annotation("error", text, file=text, title=text))
        assert parsed == ("error", {"file": text, "title": text}, text)
    # A file name that is not UTF-8 (Python keeps its bytes as surrogates) is shown, not a crash.
    parsed = parse_workflow_command(annotation("notice", "m", file=os.fsdecode(b"caf\xe9.so")))
    assert parsed.properties["file"] == "caf\\xe9.so"


def test_check_env_github_annotations_with_a_hostile_path(capsys, monkeypatch, venv: Path, hostile_dir: Path,
                                                          tmp_path: Path) -> None:
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    monkeypatch.chdir(hostile_dir.parent)
    args = ("--python", venv, "--path", hostile_dir, "--no-project", "--mode", "nogil", "--no-cache")
    text_code, _ = check_env(capsys, *args)
    code, out = check_env(capsys, *args, "--format", "github")
    assert code == text_code == 1
    lines = out.splitlines()
    assert all(line.startswith("::") for line in lines), out  # no name broke a line
    commands = [parse_workflow_command(line) for line in lines]
    assert [c.command for c in commands if c.command != "error"] == ["notice"]
    blamed = {c.properties["title"]: c for c in commands if c.command == "error"}
    assert set(blamed) == {"nogil-check-env: _ext needs-gil", "nogil-check-env: plain._ext needs-gil"}
    ext = blamed["nogil-check-env: _ext needs-gil"]
    so_name = next(hostile_dir.iterdir()).name
    assert ext.properties["file"] == f"{HOSTILE}/{so_name}"  # relative to the workspace, exact after unescaping
    assert ext.data.startswith("_ext re-enables the GIL when imported (undeclared; ")
    plain = blamed["nogil-check-env: plain._ext needs-gil"]
    assert plain.properties["file"] == str(site_packages(venv) / "plain" / so_name)  # outside: absolute
    assert plain.data.startswith("plain._ext (plain 1.0) re-enables the GIL when imported (undeclared")
    assert commands[-1].data.endswith("result: FAILED (exit 1); importing a module listed above re-enables the GIL")
    assert "forged" not in "".join(c.command for c in commands)

    # GITHUB_WORKSPACE names the workspace; gil mode makes the same modules notices, exit 0.
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    code, out = check_env(capsys, *args[:-3], "--mode", "gil", "--format", "github")
    commands = [parse_workflow_command(line) for line in out.splitlines()]
    assert code == 0 and {c.command for c in commands} == {"notice"}
    assert {c.properties.get("file") for c in commands} == {
        str(hostile_dir / so_name), str(site_packages(venv) / "plain" / so_name), None}


def test_check_env_sarif_is_valid_and_located(capsys, venv: Path, hostile_dir: Path, other_verdicts: Path,
                                              sarif_schema: dict[str, Any]) -> None:
    args = ("--python", venv, "--path", hostile_dir, "--path", other_verdicts, "--no-project", "--mode", "nogil",
            "--no-cache", "--allow", "_ext=audited, one lock")
    text_code, _ = check_env(capsys, *args)
    code, out = check_env(capsys, *args, "--format", "sarif")
    assert code == text_code == 1
    log = json.loads(out)
    validate_sarif(log, sarif_schema)
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert run["invocations"] == [{"executionSuccessful": True, "exitCode": 1}]
    bases = {base: value["uri"] for base, value in run["originalUriBaseIds"].items()}
    assert bases["SEARCHPATH1"] == hostile_dir.as_uri() + "/"  # --path comes first, as on sys.path
    assert site_packages(venv).as_uri() + "/" in bases.values()
    by_module = {r["message"]["text"].split(" ")[0]: r for r in run["results"]}
    # twins keeps the GIL off: no result.
    assert {m: r["ruleId"] for m, r in by_module.items()} == {
        "_ext": "undeclared", "plain._ext": "undeclared", "_used": "declares-gil-used", "_gil": "wrong-abi"}
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert bases["SEARCHPATH2"] == other_verdicts.as_uri() + "/"
    for module in ("_used", "_gil"):
        location = by_module[module]["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location["uriBaseId"] == "SEARCHPATH2" and location["uri"].startswith(module + ".cpython-3")
        assert by_module[module]["level"] == "error"
    plain = by_module["plain._ext"]
    location = plain["locations"][0]["physicalLocation"]["artifactLocation"]
    assert plain["level"] == "error" and "suppressions" not in plain
    assert bases[location["uriBaseId"]] == site_packages(venv).as_uri() + "/"
    assert location["uri"].startswith("plain/_ext.") and location["uri"].endswith(".so")
    allowed = by_module["_ext"]
    assert allowed["suppressions"] == [{"kind": "external", "justification": "audited, one lock"}]
    assert allowed["level"] == "none"
    location = allowed["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": next(hostile_dir.iterdir()).name, "uriBaseId": "SEARCHPATH1"}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory, ci_wheels: dict[str, Path]) -> Path:
    """A folder holding: plain's wheel under a hostile folder name, twins' wheel, a broken one."""
    root = tmp_path_factory.mktemp("ci-wheels")
    (root / HOSTILE).mkdir()
    shutil.copy(ci_wheels["plain"], root / HOSTILE)
    shutil.copy(ci_wheels["twins"], root)
    (root / "broken-1.0-cp313-cp313t-linux_x86_64.whl").write_bytes(b"not a zip")
    return root


def wheel_args(root: Path) -> list[Path]:
    return [*(root / HOSTILE).glob("plain-*.whl"), *root.glob("twins-*.whl"), *root.glob("broken-*.whl")]


def test_wheel_verify_github_annotations(capsys, monkeypatch, wheels: Path) -> None:
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    monkeypatch.chdir(wheels)
    text_code, _ = wheel_verify(capsys, *wheel_args(wheels))
    code, out = wheel_verify(capsys, "--format", "github", *wheel_args(wheels))
    assert code == text_code == 2  # the broken wheel; the others are still checked
    commands = [parse_workflow_command(line) for line in out.splitlines()]
    plain, broken = commands
    (plain_wheel,) = (wheels / HOSTILE).glob("plain-*.whl")
    assert plain.command == "error"
    assert plain.properties["file"] == f"{HOSTILE}/{plain_wheel.name}"
    assert plain.properties["title"].startswith("nogil-toolkit wheel verify [tag]: plain/_ext.")
    assert plain.data.startswith("the wheel is tagged cp313t (free-threaded) but plain._ext declares nothing")
    assert broken.command == "error" and broken.properties["file"] == "broken-1.0-cp313-cp313t-linux_x86_64.whl"
    assert broken.properties["title"] == "nogil-toolkit wheel verify: unreadable wheel"
    # Without the broken wheel: exit 1 for the wrong claim, in both formats.
    assert wheel_verify(capsys, *wheel_args(wheels)[:2])[0] == 1
    assert wheel_verify(capsys, "--format", "github", *wheel_args(wheels)[:2])[0] == 1


def test_wheel_verify_sarif_locates_findings_at_wheel_members(capsys, monkeypatch, wheels: Path,
                                                              sarif_schema: dict[str, Any]) -> None:
    monkeypatch.chdir(wheels)
    code, out = wheel_verify(capsys, "--format", "sarif", *wheel_args(wheels))
    assert code == 2
    log = json.loads(out)
    validate_sarif(log, sarif_schema)
    (run,) = log["runs"]
    assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": wheels.as_uri() + "/"}}
    artifacts, rules = run["artifacts"], run["tool"]["driver"]["rules"]
    wheel_uris = [unquote(a["location"]["uri"]) for a in artifacts if "parentIndex" not in a]
    assert sorted(wheel_uris) == sorted(str(p.relative_to(wheels)) for p in wheel_args(wheels))
    tag, unreadable = run["results"]
    assert rules[tag["ruleIndex"]]["id"] == tag["ruleId"] == "tag" and tag["level"] == "error"
    location = tag["locations"][0]["physicalLocation"]["artifactLocation"]
    member = artifacts[location["index"]]
    assert location["uri"] == member["location"]["uri"]
    assert location["uri"].startswith("/plain/_ext.") and location["uri"].endswith(".so")
    parent = artifacts[member["parentIndex"]]
    assert unquote(parent["location"]["uri"]).startswith(f"{HOSTILE}/plain-")
    assert parent["location"]["uriBaseId"] == "SRCROOT"
    assert unreadable["ruleId"] == "unreadable"
    assert unquote(unreadable["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) == \
        "broken-1.0-cp313-cp313t-linux_x86_64.whl"
