"""The provisioning script's choice of CPython sources, run against this machine's apt
configuration without building anything (``--select-only``), and its ``--find-only`` mode."""

from __future__ import annotations

import re
import sys

from support import PROVISION, run

VERSIONS = ("3.15", "3.14", "3.13")


def test_select_only_tries_newer_sources_first_and_says_which_it_got() -> None:
    result = run([sys.executable, PROVISION, "--select-only"], timeout=900)
    chosen = result.stdout.strip()
    assert chosen in VERSIONS
    message = result.stderr.strip().splitlines()[-1]
    match = re.fullmatch(r"provision: using CPython (?P<version>3\.\d+) sources \(python(?P=version) from "
                         r"(?P<suite>\w+)\)(?:; skipped (?P<skipped>.+))?", message)
    assert match is not None, message
    assert match["version"] == chosen
    newer = VERSIONS[:VERSIONS.index(chosen)]
    skipped = match["skipped"] or ""
    # Every newer version was tried and the reason it was passed over is named.
    assert [part.split(":")[0] for part in skipped.split("; ") if part] == [f"python{v}" for v in newer]
    assert all(re.search(r"(not listed|HTTP \d{3}|unreachable)", part) for part in skipped.split("; ") if part)


def test_find_only_still_finds_the_provisioned_interpreter() -> None:
    result = run([sys.executable, PROVISION, "--find-only"])
    path = result.stdout.strip()
    assert re.search(r"python3\.1[345]t$", path)
    check = run([path, "-c", "import sysconfig; print(sysconfig.get_config_var('Py_GIL_DISABLED'))"])
    assert check.stdout.strip() == "1"
