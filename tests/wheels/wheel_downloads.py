"""Real PyPI wheels for the wheel tests, each pinned to its exact file by its SHA-256.

Every machine tests the same binaries: pip downloads in hash-checking mode, so a re-upload, a
new build tag or another platform's file is a failure, not a silent change of test input.
"""

from __future__ import annotations

import sys
from pathlib import Path

from support import run

# (python version, abi, requirement, file name, sha256)
PINNED = {
    "markupsafe-cp313t": ("3.13", "cp313t", "markupsafe==3.0.2",
                          "MarkupSafe-3.0.2-cp313-cp313t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                          "c0ef13eaeee5b615fb07c9a7dadb38eac06a0608b41570d8ade51c56539e509d"),
    "markupsafe-cp313": ("3.13", "cp313", "markupsafe==3.0.2",
                         "MarkupSafe-3.0.2-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                         "15ab75ef81add55874e7ab7055e9c397312385bd9ced94920f2802310c930396"),
    "markupsafe-cp311": ("3.11", "cp311", "markupsafe==3.0.2",
                         "MarkupSafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                         "a123e330ef0853c6e822384873bef7507557d8e4a082961e1defa947aa59ba84"),
    "bcrypt-abi3": ("3.13", "abi3", "bcrypt==4.2.1",
                    "bcrypt-4.2.1-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                    "cde78d385d5e93ece5479a0a87f73cd6fa26b171c786a884f955e165032b262c"),
    "six-1.16.0": (None, None, "six==1.16.0", "six-1.16.0-py2.py3-none-any.whl",
                   "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"),
    "six-1.17.0": (None, None, "six==1.17.0", "six-1.17.0-py2.py3-none-any.whl",
                   "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"),
    "packaging-25.0": (None, None, "packaging==25.0", "packaging-25.0-py3-none-any.whl",
                       "29572ef2b1f17581046b3a2227d5c611fb25ec70ca1ba8554b24b0e69331a484"),
}


def download(out: Path, *keys: str) -> list[Path]:
    """Download the pinned wheels ``keys`` into ``out``, one pip call each (two versions of one
    project conflict in a single resolve); returns their paths."""
    paths = []
    for key in keys:
        python_version, abi, requirement, filename, sha256 = PINNED[key]
        requirements = out.parent / f"{out.name}-{key}.txt"
        requirements.write_text(f"{requirement} --hash=sha256:{sha256}\n")
        target = ["--python-version", python_version, "--abi", abi, "--platform", "manylinux_2_17_x86_64"] \
            if abi else []
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
             *target, "-d", out, "-r", requirements])
        paths.append(out / filename)
        assert paths[-1].is_file(), f"pip downloaded another file than {filename}"
    return paths
