"""Session fixtures of the CI tests: sample wheels built on the free-threaded interpreter."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import SAMPLES, build_wheel


@pytest.fixture(scope="session")
def ci_wheels(ft_venv: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``twins`` (every module declares not-used) and ``plain`` (its module declares nothing),
    built for the free-threaded interpreter."""
    return {sample: build_wheel(ft_venv, SAMPLES / sample, tmp_path_factory.mktemp(f"ci-{sample}"), wheelhouse)
            for sample in ("twins", "plain")}
