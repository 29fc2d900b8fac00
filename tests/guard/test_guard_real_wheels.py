"""The guard on real cp313t wheels from PyPI, in a venv of the free-threaded interpreter: a
declared module loads, an undeclared one is refused and its distribution named, and PyO3 0.26
modules static reading cannot decide are settled by one import probe, cached in the cache
``nogil-check-env`` uses, so that the next start runs no subprocess at all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from guard_support import run_guarded

from support import pinned_wheel_venv, run

pytestmark = pytest.mark.freethreaded

WHEELS = ("MarkupSafe==3.0.3", "google-crc32c==1.7.1", "pydantic-core==2.41.4", "bcrypt==5.0.0")

# Records the guard's subprocesses (each one a cold decision) through the audit hook.
PROLOGUE = """
import importlib.machinery, importlib.util, json, sys, sysconfig
spawned = []
sys.addaudithook(lambda event, args: spawned.append(event) if event == "os.posix_spawn" else None)
def load_file(name, relative):
    path = f"{sysconfig.get_paths()['purelib']}/{relative}{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    return importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path, loader=loader))
"""


@pytest.fixture(scope="module")
def wheel_venv(ft_python: str, ft_abi: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pinned_wheel_venv(ft_python, ft_abi, tmp_path_factory.mktemp("guard-wheels") / "venv", WHEELS)


def test_declared_loads_and_undeclared_is_refused_with_its_distribution(wheel_venv: Path, tmp_path: Path) -> None:
    result = run_guarded(str(wheel_venv), """
import json, sys
import markupsafe._speedups
from nogil_toolkit.guard import GilRequiredImportError
try:
    import google_crc32c._crc32c
except GilRequiredImportError as exc:
    print(json.dumps({"distribution": exc.distribution, "message": str(exc), "gil": sys._is_gil_enabled()}))
""", mode="nogil", modules=None, cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert result.data["distribution"] == "google-crc32c 1.7.1"
    assert "distribution: google-crc32c 1.7.1" in result.data["message"]
    assert result.data["gil"] is False


def test_undecided_pyo3_modules_are_probed_once_and_the_next_start_is_warm(wheel_venv: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code = PROLOGUE + """
import bcrypt
load_file("pydantic_core._pydantic_core", "pydantic_core/_pydantic_core")
print(json.dumps({"hash": bcrypt.checkpw(b"pw", bcrypt.hashpw(b"pw", bcrypt.gensalt(4))), "spawned": len(spawned),
                  "gil": sys._is_gil_enabled()}))
"""
    first = run_guarded(str(wheel_venv), code, mode="nogil", modules=None, cache=cache)
    assert first.returncode == 0, first.stderr
    assert first.data["hash"] is True and first.data["gil"] is False and first.data["spawned"] >= 1

    # The probes' conclusive answers sit in the shared cache, next to the static verdicts.
    [cache_file] = cache.glob("check-env-*.json")
    entries = json.loads(cache_file.read_text())["files"]
    probed = {path.split("/site-packages/")[1].split(".")[0] for path, entry in entries.items() if len(entry) > 2}
    assert "pydantic_core/_pydantic_core" in probed
    assert all(entries[p][2]["gil_enabled"] is False for p in entries if len(entries[p]) > 2)

    second = run_guarded(str(wheel_venv), code, mode="nogil", modules=None, cache=cache)
    assert second.returncode == 0, second.stderr
    assert second.data == {"hash": True, "spawned": 0, "gil": False}

    # nogil-check-env reads the same cache: it probes nothing either.
    check = run([sys.executable, "-m", "nogil_toolkit.main_check_env", "--python", wheel_venv, "--no-project",
                 "--cache-dir", cache, "--format", "json", "--probe=undecided"], check=False)
    scan = json.loads(check.stdout)["scan"]
    assert scan["probed"] == 0 and scan["probes_cached"] == len(probed)


def test_what_nogil_check_env_learned_the_guard_reuses(wheel_venv: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    check = run([sys.executable, "-m", "nogil_toolkit.main_check_env", "--python", wheel_venv, "--no-project",
                 "--cache-dir", cache, "--format", "json", "--probe=undecided", "--include-stdlib"], check=False)
    assert json.loads(check.stdout)["scan"]["probed"] >= 1, check.stderr
    result = run_guarded(str(wheel_venv), PROLOGUE + """
import bcrypt, markupsafe._speedups
load_file("pydantic_core._pydantic_core", "pydantic_core/_pydantic_core")
print(json.dumps({"spawned": len(spawned), "gil": sys._is_gil_enabled()}))
""", mode="nogil", modules=None, cache=cache)
    assert result.returncode == 0, result.stderr
    assert result.data == {"spawned": 0, "gil": False}


def test_serialize_locks_an_undeclared_module_and_leaves_a_declared_one(wheel_venv: Path, tmp_path: Path) -> None:
    result = run_guarded(str(wheel_venv), """
import json, sys
import google_crc32c, google_crc32c._crc32c as crc, markupsafe._speedups as speedups
print(json.dumps({"implementation": google_crc32c.implementation, "crc": google_crc32c.value(b"abc"),
                  "locked": type(crc.value).__name__, "original": type(crc.value.__wrapped__).__name__,
                  "declared": type(speedups._escape_inner).__name__, "gil": sys._is_gil_enabled()}))
""", mode="serialize", modules=None, cache=tmp_path / "cache", env={"PYTHON_GIL": "0"})
    assert result.returncode == 0, result.stderr
    assert result.data == {"implementation": "c", "crc": 910901175, "locked": "function",
                           "original": "builtin_function_or_method", "declared": "builtin_function_or_method",
                           "gil": False}
    assert result.stderr.strip().endswith(
        "SerializeCoverageWarning: serialize: google_crc32c._crc32c: 2 functions and 0 types locked; all covered")
