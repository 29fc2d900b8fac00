"""The one rule both build plugins apply to Py_LIMITED_API (the builds that hit it are in
test_build_errors.py and tests/buildsys/test_meson.py): refused on free-threaded 3.13 and 3.14,
allowed on free-threaded 3.15 and later (abi3t, PEP 803) and on every GIL build."""

from __future__ import annotations

import pytest

from nogil_toolkit.stable_abi import limited_api_refusal


@pytest.mark.parametrize("version", [(3, 13), (3, 14)])
def test_free_threaded_313_and_314_are_refused_with_the_reason(version: tuple[int, int]) -> None:
    reason = limited_api_refusal(version, free_threaded=True)
    assert reason is not None
    assert f"free-threaded CPython {version[0]}.{version[1]} can neither compile nor load" in reason
    assert "abi3t, PEP 803" in reason and "in 3.15" in reason


@pytest.mark.parametrize("version", [(3, 15), (3, 16), (4, 0)])
def test_free_threaded_315_and_later_build_abi3t(version: tuple[int, int]) -> None:
    assert limited_api_refusal(version, free_threaded=True) is None


@pytest.mark.parametrize("version", [(3, 9), (3, 13), (3, 14), (3, 15)])
def test_gil_builds_always_have_abi3(version: tuple[int, int]) -> None:
    assert limited_api_refusal(version, free_threaded=False) is None
