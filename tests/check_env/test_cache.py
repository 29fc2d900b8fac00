"""The verdict cache shared by concurrent processes (checks, applications under the guard)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from nogil_toolkit.cache import CheckCache
from nogil_toolkit.inspect import inspect_binary


def test_concurrent_users_keep_each_others_entries(tmp_path: Path) -> None:
    """Two users load the same cache, each learns about another file, both save: the file
    keeps both answers (before, the last to save dropped the other's)."""
    files = [shutil.copy(sys.executable, tmp_path / name) for name in ("one", "two")]
    first, second = CheckCache(tmp_path / "cache", "target"), CheckCache(tmp_path / "cache", "target")
    for cache, path in zip((first, second), files):
        cache.store(str(path), os.stat(path), inspect_binary(str(path)))
    first.save()
    second.save()
    merged = CheckCache(tmp_path / "cache", "target")
    for path in files:
        entry = merged.lookup(str(path), os.stat(path))
        assert entry is not None and entry.inspection.verdict.value == "not-a-module"


def test_forgotten_entries_stay_forgotten_and_unknown_ones_stay(tmp_path: Path) -> None:
    files = [shutil.copy(sys.executable, tmp_path / name) for name in ("kept", "gone", "other")]
    setup = CheckCache(tmp_path / "cache", "target")
    for path in files[:2]:
        setup.store(str(path), os.stat(path), inspect_binary(str(path)))
    setup.save()
    check = CheckCache(tmp_path / "cache", "target")
    guard = CheckCache(tmp_path / "cache", "target")
    guard.store(str(files[2]), os.stat(files[2]), inspect_binary(str(files[2])))
    guard.save()
    check.forget_missing({str(files[0])})  # the check no longer finds "gone" (and never saw "other")
    check.save()
    after = CheckCache(tmp_path / "cache", "target")
    assert [after.lookup(str(p), os.stat(p)) is not None for p in files] == [True, False, True]
