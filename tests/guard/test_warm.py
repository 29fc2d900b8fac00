"""The guard's warm path reads the cache ``CheckCache`` writes, without importing it: pinned
here to the same file, the same constants, and the answer ``check.judge`` gives for every kind
of cached entry."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from nogil_toolkit import cache as check_cache
from nogil_toolkit.abi import classify
from nogil_toolkit.check import Mode, Status, judge
from nogil_toolkit.environment import ExtensionFile
from nogil_toolkit.guard import verdict, warm
from nogil_toolkit.inspect import ModuleInspection, Verdict
from nogil_toolkit.probe import ProbeResult
from nogil_toolkit.target import TargetInterpreter

SUFFIX = ".cpython-313t-x86_64-linux-gnu.so"


def test_constants_are_the_checkers() -> None:
    assert warm.CACHE_FORMAT == check_cache.FORMAT
    assert warm.KEEPS_GIL_OFF == Verdict.NOT_USED.value
    assert warm.UNDECIDED == Verdict.UNKNOWN.value
    assert (warm.KEEPS_GIL_OFF_STATUS, warm.NEEDS_GIL_STATUS) == (Status.KEEPS_GIL_OFF.value, Status.NEEDS_GIL.value)
    assert verdict.ALLOWED == Status.ALLOWED.value
    assert set(warm.VERDICT_WORDS) == {v.value for v in Verdict}


@pytest.mark.parametrize(("env", "expected"), [({"NOGIL_TOOLKIT_CACHE": "/somewhere/else"}, "/somewhere/else"),
                                             ({"XDG_CACHE_HOME": "/xdg"}, "/xdg/nogil-toolkit"),
                                             ({}, os.path.expanduser("~/.cache/nogil-toolkit"))])
def test_same_cache_file_as_check_cache(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    for key in ("NOGIL_TOOLKIT_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert warm.default_cache_dir() == expected
    assert warm.current_cache_file() == str(check_cache.CheckCache(expected, os.path.abspath(sys.executable)).path)


def _target() -> TargetInterpreter:
    return TargetInterpreter("/x/python3.13t", "cpython", (3, 13, 5), True, (SUFFIX, ".abi3.so", ".so"),
                             "linux-x86_64", (), "", "", None)


PROBE_OFF = ProbeResult(False, None, None, "m")
PROBE_ON = ProbeResult(True, "m", None, "m")
PROBE_FAILED = ProbeResult(None, None, "ImportError: nope", "m")


@pytest.mark.parametrize(("verdict_", "probe"), [
    (Verdict.NOT_USED, None), (Verdict.USED, None), (Verdict.UNDECLARED, None), (Verdict.UNKNOWN, None),
    (Verdict.UNKNOWN, PROBE_OFF), (Verdict.UNKNOWN, PROBE_ON), (Verdict.NOT_A_MODULE, None),
    (Verdict.UNDECLARED, PROBE_OFF), (Verdict.UNKNOWN, PROBE_FAILED),
])
def test_warm_answer_is_what_judge_decides(tmp_path: Path, verdict_: Verdict, probe: ProbeResult | None) -> None:
    binary = tmp_path / f"m{SUFFIX}"
    binary.write_bytes(b"\x7fELF fixture")
    stat = os.stat(binary)
    cache = check_cache.CheckCache(tmp_path / "cache", "/x/python3.13t")
    inspection = ModuleInspection(str(binary), "elf", "x86_64", ("PyInit_m",), verdict_, ())
    cache.store(str(binary), stat, inspection)
    if probe is not None:
        cache.store_probe(str(binary), stat, probe)
    cache.save()
    reader = warm.WarmVerdicts(str(cache.path))
    file = ExtensionFile(str(binary), "m", classify(binary.name, _target()), None)
    stored = cache.lookup(str(binary), stat)
    assert stored is not None
    status = judge(file, stored.inspection, Mode.NOGIL, (), stored.probe).status
    warm_answer = reader.status(str(binary), stat)
    if status in (Status.KEEPS_GIL_OFF, Status.NEEDS_GIL):
        assert warm_answer is not None and warm_answer[0] == status.value
    else:  # the cold path decides what the entry alone does not
        assert warm_answer is None

    # The file changes: the entry no longer counts, whatever it said.
    os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert reader.status(str(binary), os.stat(binary)) is None


def test_reader_follows_the_cache_file_and_ignores_other_versions(tmp_path: Path) -> None:
    binary = tmp_path / f"m{SUFFIX}"
    binary.write_bytes(b"\x7fELF fixture")
    stat = os.stat(binary)
    cache = check_cache.CheckCache(tmp_path, "/x/python3.13t")
    reader = warm.WarmVerdicts(str(cache.path))
    assert reader.status(str(binary), stat) is None  # no file yet
    cache.store(str(binary), stat, ModuleInspection(str(binary), "elf", "x86_64", ("PyInit_m",), Verdict.NOT_USED, ()))
    cache.save()
    assert reader.status(str(binary), stat) == ("keeps-gil-off", "declares that it runs without the GIL")
    cache.path.write_text(cache.path.read_text().replace('"toolkit":"', '"toolkit":"0.0.0-old'))
    assert reader.status(str(binary), stat) is None


def test_allowlist_matches_like_the_checkers_allow_rules() -> None:
    from nogil_toolkit.config import AllowRule
    from nogil_toolkit.guard import GuardPolicy

    rules = [("pkg._c", "exact"), ("pkg.*", "glob"), ("other.sub?", "one char"), ("[ab].x", "set")]
    policy = GuardPolicy(rules)
    checker = [AllowRule(pattern, reason) for pattern, reason in rules]
    for module in ("pkg._c", "pkg.deep.mod", "pkg", "other.sub1", "other.sub12", "a.x", "c.x", "PKG._c"):
        expected = next((r.reason for r in checker if r.matches(module)), None)
        assert policy.allowed_because(module) == expected
