#!/usr/bin/env python3
"""Find or build a free-threaded CPython for the test suite.

Order of preference, first hit wins:

1. ``$NOGIL_TEST_PYTHON`` (must really be free-threaded, else it is an error);
2. ``python3.14t`` or ``python3.13t`` on ``PATH``;
3. a previous build in the cache directory;
4. a fresh build of CPython 3.13 with ``--disable-gil`` from Debian's ``python3.13``
   source package, fetched with ``apt-get source`` through a private apt state whose
   ``deb-src`` line reuses the mirror URI (and keyring) of the machine's own apt
   configuration, so no registry address is written here.

The interpreter's path is the only thing printed on stdout; progress goes to stderr.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

SOURCE_PACKAGE = "python3.13"
BINARY_NAME = "python3.13t"
# Suites tried in order for the source package; the machine's own release may predate 3.13.
SUITES = ("trixie", "stable", "testing", "unstable")
BUILD_DEPENDENCIES = ("libssl-dev", "zlib1g-dev", "libffi-dev", "libbz2-dev", "liblzma-dev")
APT_SOURCE_FILES = ("/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*")))


class AptSource(NamedTuple):
    """One ``deb`` entry of the machine's apt configuration."""

    uri: str
    suites: tuple[str, ...]
    signed_by: Optional[str]


def log(message: str) -> None:
    print(f"provision: {message}", file=sys.stderr, flush=True)


def is_free_threaded(python: str) -> bool:
    """True if ``python`` runs and was built with ``--disable-gil``."""
    try:
        out = subprocess.run(
            [python, "-I", "-c", "import sysconfig; print(sysconfig.get_config_var('Py_GIL_DISABLED'))"],
            capture_output=True, text=True, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "1"


def default_cache_dir() -> Path:
    explicit = os.environ.get("NOGIL_TOOLKIT_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nogil-toolkit"


def parse_apt_sources(paths: tuple[str, ...] = APT_SOURCE_FILES) -> Iterator[AptSource]:
    """Yield the binary (``deb``) entries of one-line ``.list`` and deb822 ``.sources`` files."""
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if path.endswith(".sources"):
            yield from _parse_deb822(text)
        elif path.endswith(".list") or path == "/etc/apt/sources.list":
            yield from _parse_one_line(text)


def _parse_one_line(text: str) -> Iterator[AptSource]:
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)\s+(?P<comps>.+)$", line)
        if not match or "main" not in match["comps"].split():
            continue
        options = dict(o.split("=", 1) for o in (match["opts"] or "").split() if "=" in o)
        yield AptSource(match["uri"], (match["suite"],), options.get("signed-by"))


def _parse_deb822(text: str) -> Iterator[AptSource]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in fields.get("types", "").split() or "main" not in fields.get("components", "").split():
            continue
        for uri in fields.get("uris", "").split():
            yield AptSource(uri, tuple(fields.get("suites", "").split()), fields.get("signed-by"))


def debian_mirror() -> AptSource:
    """The machine's main Debian archive entry (not the security archive)."""
    for source in parse_apt_sources():
        if "security" in source.uri or not source.uri.rstrip("/").endswith("/debian"):
            continue
        return source
    raise SystemExit("provision: error: no Debian main archive found in the apt sources (/etc/apt)")


def run(cmd: list[str], log_file: Path, cwd: Optional[Path] = None) -> None:
    """Run ``cmd`` with its output in ``log_file``; on failure show the log's tail."""
    with log_file.open("ab") as sink:
        sink.write(f"\n$ {' '.join(cmd)}\n".encode())
        sink.flush()
        result = subprocess.run(cmd, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = log_file.read_text(errors="replace").splitlines()[-40:]
        sys.stderr.write("\n".join(tail) + "\n")
        raise SystemExit(f"provision: error: {' '.join(cmd)} failed with exit {result.returncode} (log: {log_file})")


def ensure_build_dependencies(log_file: Path) -> None:
    missing = [pkg for pkg in BUILD_DEPENDENCIES
               if subprocess.run(["dpkg", "-s", pkg], capture_output=True, check=False).returncode != 0]
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"provision: error: missing build dependencies {missing}; install them as root")
    log(f"installing build dependencies: {' '.join(missing)}")
    run(["apt-get", "update"], log_file)
    run(["apt-get", "install", "-y", "--no-install-recommends", *missing], log_file)


def fetch_source(work: Path, log_file: Path) -> Path:
    """Download Debian's source package into ``work`` and return the upstream tarball."""
    mirror = debian_mirror()
    apt_dir = work / "apt"
    (apt_dir / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt_dir / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    options = f"[signed-by={mirror.signed_by}] " if mirror.signed_by else ""
    sources_list = apt_dir / "sources.list"
    apt_options = [
        "-o", f"Dir::Etc::SourceList={sources_list}",
        "-o", "Dir::Etc::SourceParts=-",
        "-o", f"Dir::State::Lists={apt_dir / 'lists'}",
        "-o", f"Dir::Cache={apt_dir / 'cache'}",
        "-o", "APT::Sandbox::User=root",
        "-o", "Debug::NoLocking=1",
    ]
    apt = ["apt-get", "-q", *apt_options]
    for suite in SUITES:
        sources_list.write_text(f"deb-src {options}{mirror.uri} {suite} main\n")
        log(f"looking for {SOURCE_PACKAGE} sources in suite {suite} of the machine's Debian mirror")
        run([*apt, "update"], log_file)
        probe = subprocess.run(["apt-cache", *apt_options, "showsrc", SOURCE_PACKAGE], capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip():
            break
    else:
        raise SystemExit(f"provision: error: no suite of {SUITES} offers the {SOURCE_PACKAGE} source package")
    run([*apt, "source", "--download-only", SOURCE_PACKAGE], log_file, cwd=work)
    tarballs = sorted(p for p in work.glob(f"{SOURCE_PACKAGE}_*.orig.tar.*") if not p.name.endswith(".asc"))
    if not tarballs:
        raise SystemExit(f"provision: error: apt-get source left no upstream tarball in {work}")
    return tarballs[-1]


def build(prefix: Path, log_file: Path) -> Path:
    """Build and install a free-threaded CPython into ``prefix``; return its interpreter."""
    ensure_build_dependencies(log_file)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nogil-provision-", dir=prefix.parent) as tmp:
        work = Path(tmp)
        tarball = fetch_source(work, log_file)
        log(f"unpacking {tarball.name} (upstream sources, Debian patches not applied)")
        run(["tar", "-xf", str(tarball), "-C", str(work)], log_file)
        (source,) = [p for p in work.iterdir() if p.is_dir() and p.name.startswith("Python-")]
        jobs = str(os.cpu_count() or 2)
        log(f"configuring {source.name} with --disable-gil (log: {log_file})")
        run(["./configure", "--disable-gil", f"--prefix={prefix}", "--with-ensurepip=no"], log_file, cwd=source)
        log(f"compiling with {jobs} jobs (a few minutes)")
        run(["make", f"-j{jobs}"], log_file, cwd=source)
        stage = work / "stage"
        log("installing")
        run(["make", "install", f"DESTDIR={stage}"], log_file, cwd=source)
        # Stage then rename: an interrupted build never leaves a half-installed prefix behind.
        staged_prefix = stage / prefix.relative_to(prefix.anchor)
        if prefix.exists():
            shutil.rmtree(prefix)
        staged_prefix.rename(prefix)
    python = prefix / "bin" / BINARY_NAME
    if not is_free_threaded(str(python)):
        raise SystemExit(f"provision: error: {python} was built but is not free-threaded")
    return python


def find_existing(cache_dir: Path) -> Optional[str]:
    explicit = os.environ.get("NOGIL_TEST_PYTHON")
    if explicit:
        if not is_free_threaded(explicit):
            raise SystemExit(f"provision: error: NOGIL_TEST_PYTHON={explicit} is not a free-threaded CPython")
        return explicit
    for name in ("python3.14t", "python3.13t"):
        found = shutil.which(name)
        if found and is_free_threaded(found):
            return found
    cached = cache_dir / "cpython-3.13t" / "bin" / BINARY_NAME
    if is_free_threaded(str(cached)):
        return str(cached)
    return None


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                        help="where builds are kept and reused (default: %(default)s)")
    parser.add_argument("--find-only", action="store_true",
                        help="do not build: exit 1 when no free-threaded interpreter is available")
    args = parser.parse_args(argv)
    found = find_existing(args.cache_dir)
    if found is None and args.find_only:
        return 1
    if found is None:
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        found = str(build(args.cache_dir / "cpython-3.13t", args.cache_dir / "provision.log"))
        log(f"built {found}")
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
