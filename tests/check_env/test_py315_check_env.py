"""nogil-check-env for CPython 3.15: export hooks judged for the target's version, abi3t files
classified by the suffixes the target's import system lists."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from py315_support import build_hook_module, include_dir
from support import make_venv

from nogil_toolkit.abi import AbiStatus, classify
from nogil_toolkit.check_env import resolve_modules
from nogil_toolkit.environment import ExtensionFile
from nogil_toolkit.inspect import Verdict
from nogil_toolkit.main_check_env import main
from nogil_toolkit.report import load_schema
from nogil_toolkit.target import TargetInterpreter


def target(version: tuple[int, int], free_threaded: bool, suffixes: list[str]) -> TargetInterpreter:
    """A target's facts as ``query_target`` reports them; 3.15's suffixes as gh-146636 sets them
    (".abi3t.so" on every build, ".abi3.so" only on GIL builds)."""
    return TargetInterpreter.from_json({
        "executable": f"/usr/bin/python{version[0]}.{version[1]}", "implementation": "cpython",
        "version": [*version, 0], "free_threaded": free_threaded, "extension_suffixes": suffixes,
        "platform": "linux-x86_64", "site_packages": [], "user_site": "/nonexistent", "stdlib_extensions": "",
        "venv": None,
    })


FT_315 = target((3, 15), True, [".cpython-315t-x86_64-linux-gnu.so", ".abi3t.so", ".so"])
GIL_315 = target((3, 15), False, [".cpython-315-x86_64-linux-gnu.so", ".abi3t.so", ".abi3.so", ".so"])
FT_313 = target((3, 13), True, [".cpython-313t-x86_64-linux-gnu.so", ".abi3.so", ".so"])


@pytest.mark.parametrize(("name", "on", "status"), [
    ("_x.abi3t.so", FT_315, AbiStatus.LOADABLE),
    ("_x.abi3t.so", GIL_315, AbiStatus.LOADABLE),
    ("_x.abi3t.so", FT_313, AbiStatus.WRONG_ABI),
    ("_x.abi3.so", FT_315, AbiStatus.WRONG_ABI),
    ("_x.abi3.so", GIL_315, AbiStatus.LOADABLE),
])
def test_abi3t_suffix_follows_the_target(name: str, on: TargetInterpreter, status: AbiStatus) -> None:
    assert classify(name, on).status is status


def test_abi3_on_315t_names_abi3t_as_the_fix() -> None:
    reason = classify("_x.abi3.so", FT_315).reason
    assert reason is not None and "a cp315t build is needed or an abi3t one (PEP 803)" in reason


@pytest.fixture(scope="module")
def hook_folder(tmp_path_factory: pytest.TempPathFactory, ft_python: str) -> Path:
    """``--path`` folder with package ``hooked`` whose ``_speed`` has only an export hook without
    a Py_mod_gil slot: undeclared for 3.15, no module at all for 3.13."""
    base = tmp_path_factory.mktemp("hook-folder")
    (base / "hooked").mkdir()
    (base / "hooked" / "__init__.py").write_text("")
    build_hook_module(base / "hooked", "_speed", ".cpython-313t-x86_64-linux-gnu.so", include_dir(ft_python),
                      "PYSLOT_NO_GIL")
    return base


def test_the_pipeline_judges_a_hook_for_the_targets_version(hook_folder: Path) -> None:
    path = hook_folder / "hooked" / "_speed.cpython-313t-x86_64-linux-gnu.so"
    file = ExtensionFile(str(path), "hooked._speed", classify(path.name, FT_313), None)
    (on_315,) = resolve_modules([file], None, python=(3, 15))
    (on_313,) = resolve_modules([file], None, python=(3, 13))
    assert on_315.inspection is not None and on_315.inspection.verdict is Verdict.UNDECLARED
    assert on_313.inspection is not None and on_313.inspection.verdict is Verdict.NOT_A_MODULE


def test_check_env_on_313t_sees_no_module_in_a_hook_only_file(capsys: pytest.CaptureFixture[str], ft_python: str,
                                                              hook_folder: Path, tmp_path: Path) -> None:
    venv = make_venv(ft_python, tmp_path / "venv")
    code = main(["--python", str(venv), "--path", str(hook_folder), "--format", "json", "--no-project",
                 "--cache-dir", str(tmp_path / "cache")])
    document = json.loads(capsys.readouterr().out)
    jsonschema.validate(document, load_schema())
    assert code == 0 and document["result"]["status"] == "ok"
    (module,) = [m for m in document["modules"] if m["module"] == "hooked._speed"]
    assert module["inspection"]["verdict"] == "not-a-module"
    assert "only looked for by CPython 3.15" in module["inspection"]["evidence"][0]["detail"]
