"""Helpers of the ecosystem tests: a git repository holding exactly this checkout's files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from support import REPO

GIT_IDENTITY = {"GIT_AUTHOR_NAME": "nogil-toolkit tests", "GIT_AUTHOR_EMAIL": "tests@localhost",
                "GIT_COMMITTER_NAME": "nogil-toolkit tests", "GIT_COMMITTER_EMAIL": "tests@localhost"}


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd)}
    return subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args], cwd=cwd,
                          env=env, check=True, capture_output=True, text=True).stdout.strip()


def commit_all(repo: Path, message: str = "snapshot") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def snapshot_of_checkout(destination: Path, source: Optional[Path] = None) -> tuple[Path, str]:
    """A new git repository with the files of this checkout as they are on disk (tracked and
    untracked, not ignored), committed once: what a hook user's ``repo:``/``rev:`` would fetch,
    including changes not committed yet. Returns the repository and the commit."""
    source = source or REPO
    listed = git(source, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    destination.mkdir(parents=True)
    for name in filter(None, listed):
        path = source / name
        if not path.is_file():  # deleted but still in the index
            continue
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination / name)
    git(destination, "init", "-q")
    return destination, commit_all(destination)
