"""Downloads for the audit tests, once per session: real sdists."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

from support import run

SDISTS = ("markupsafe==3.0.3", "greenlet==3.2.4", "simplejson==3.20.2", "msgpack==1.1.2")


@pytest.fixture(scope="session")
def real_sdists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Pinned sdists of real extension packages, unpacked: name -> source folder."""
    out = tmp_path_factory.mktemp("audit-sdists")
    names = ",".join(r.partition("==")[0] for r in SDISTS)
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", names, "-d", out, *SDISTS])
    found = {}
    for requirement in SDISTS:
        name, _, version = requirement.partition("==")
        (archive,) = out.glob(f"{name}-{version}.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(out, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        found[name] = out / f"{name}-{version}"
    return found
