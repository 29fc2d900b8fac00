"""``nogil-check-env`` on venvs of real cp313t wheels from PyPI, written by hand in C, by
Cython and by PyO3, one of which declares nothing: each static verdict is confirmed by the
CLI's own import probe, the libraries auditwheel vendored are not taken for modules, and
PyO3 modules static reading cannot decide are settled by one probe each, then cached."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jsonschema
import pytest

from nogil_toolkit.report import load_schema
from support import pinned_wheel_venv, run

pytestmark = pytest.mark.freethreaded

WHEELS = ("MarkupSafe==3.0.3", "xxhash==3.8.2", "frozenlist==1.8.0", "rpds-py==2026.5.1", "google-crc32c==1.7.1")


@pytest.fixture(scope="module")
def real_venv(ft_python: str, ft_abi: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pinned_wheel_venv(ft_python, ft_abi, tmp_path_factory.mktemp("real") / "venv", WHEELS)


def test_static_verdicts_match_the_import_probe_on_real_wheels(real_venv: Path, tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "nogil_toolkit.main_check_env", "--python", real_venv, "--no-project",
                  "--cache-dir", tmp_path, "--probe", "--format", "json"], check=False)
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    modules = {m["module"]: m for m in document["modules"] if m["status"] != "not-a-module"}
    assert {name: m["status"] for name, m in modules.items()} == {
        "markupsafe._speedups": "keeps-gil-off",
        "xxhash._xxhash": "keeps-gil-off",
        "frozenlist._frozenlist": "keeps-gil-off",
        "rpds.rpds": "keeps-gil-off",
        "google_crc32c._crc32c": "needs-gil",
    }
    assert {name: m["inspection"]["generator"] for name, m in modules.items()
            if m["inspection"]["generator"]} == {"frozenlist._frozenlist": "cython", "rpds.rpds": "pyo3"}
    assert {name: m["probe"]["needs_gil"] for name, m in modules.items()} == {
        name: m["status"] == "needs-gil" for name, m in modules.items()}
    assert not any(m["probe"]["disagrees"] for m in modules.values())
    # auditwheel's vendored libraries (google_crc32c.libs/) sit where no import reaches them.
    assert not any(".libs" in m["path"] for m in document["modules"])
    assert {m["distribution"]["name"] for m in modules.values()} == {
        "MarkupSafe", "xxhash", "frozenlist", "rpds-py", "google-crc32c"}


# PyO3 0.26 passes #[pymodule(gil_used = ...)] at run time: pydantic-core's init hides the
# constant one call deeper, so static reading cannot decide it; bcrypt's may be decidable.
PYO3_WHEELS = ("pydantic-core==2.41.4", "bcrypt==5.0.0")


@pytest.fixture(scope="module")
def pyo3_venv(ft_python: str, ft_abi: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pinned_wheel_venv(ft_python, ft_abi, tmp_path_factory.mktemp("pyo3") / "venv", PYO3_WHEELS)


def check_env_json(venv: Path, cache: Path, *args: str) -> tuple[int, dict]:
    result = run([sys.executable, "-m", "nogil_toolkit.main_check_env", "--python", venv, "--no-project",
                  "--cache-dir", cache, "--format", "json", *args], check=False)
    assert result.returncode in (0, 1, 3), result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, load_schema())
    return result.returncode, document


def test_probe_undecided_settles_pyo3_modules_once_and_the_cache_keeps_the_answer(pyo3_venv: Path,
                                                                                   tmp_path: Path) -> None:
    code, static = check_env_json(pyo3_venv, tmp_path)
    undecided = {m["module"] for m in static["modules"] if m["status"] == "undecided"}
    assert "pydantic_core._pydantic_core" in undecided and code == 3
    assert static["scan"]["probed"] == 0

    code, probed = check_env_json(pyo3_venv, tmp_path, "--probe=undecided")
    modules = {m["module"]: m for m in probed["modules"]}
    assert code == 0 and probed["result"]["gil_stays_disabled"] is True
    assert {name: m["status"] for name, m in modules.items()} == {
        "pydantic_core._pydantic_core": "keeps-gil-off", "bcrypt._bcrypt": "keeps-gil-off"}
    # Exactly the statically undecided modules were probed, and each is now decided by its probe.
    assert {name for name, m in modules.items() if m["probe"] is not None} == undecided
    assert {name for name, m in modules.items() if m["decided_by"] == "probe"} == undecided
    assert probed["scan"]["probed"] == len(undecided) and probed["scan"]["probes_cached"] == 0
    assert all(modules[name]["probe"]["needs_gil"] is False for name in undecided)

    # Later runs, with or without --probe, run no module code and report the same decisions.
    for args in ((), ("--probe=undecided",)):
        code, again = check_env_json(pyo3_venv, tmp_path, *args)
        assert code == 0 and again["scan"]["probed"] == 0 and again["scan"]["probes_cached"] == len(undecided)
        assert again["modules"] == probed["modules"]

    # A changed file loses its probe with its cached inspection.
    pydantic = modules["pydantic_core._pydantic_core"]["path"]
    os.utime(pydantic)
    code, changed = check_env_json(pyo3_venv, tmp_path)
    assert code == 3 and changed["scan"]["probes_cached"] == len(undecided) - 1
    assert {m["module"]: m["status"] for m in changed["modules"]}["pydantic_core._pydantic_core"] == "undecided"


def test_text_report_says_the_probe_decided(pyo3_venv: Path, tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "nogil_toolkit.main_check_env", "--python", pyo3_venv, "--no-project",
                  "--cache-dir", tmp_path, "--probe=undecided", "--verbose"], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pydantic_core._pydantic_core  (import probe: loaded; the GIL stayed disabled; static: unknown)" \
        in result.stdout
    assert "settled by an import probe" in result.stdout and "--probe" not in result.stdout
