"""``nogil-check-env`` on a venv of real cp313t wheels from PyPI, written by hand in C, by
Cython and by PyO3, one of which declares nothing: each static verdict is confirmed by the
CLI's own import probe, and the libraries auditwheel vendored are not taken for modules."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from support import make_venv, run

pytestmark = pytest.mark.freethreaded

WHEELS = ("MarkupSafe==3.0.3", "xxhash==3.8.2", "frozenlist==1.8.0", "rpds-py==2026.5.1", "google-crc32c==1.7.1")


@pytest.fixture(scope="module")
def real_venv(ft_python: str, ft_abi: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    if ft_abi[0] != "cp313t":
        pytest.skip("the pinned wheels are cp313t")
    venv = make_venv(ft_python, tmp_path_factory.mktemp("real") / "venv")
    run([venv, "-m", "pip", "install", "--only-binary=:all:", "--no-deps", *WHEELS])
    return venv


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
