#!/usr/bin/env python3
"""Find or build a free-threaded CPython for the test suite.

Order of preference, first hit wins:

1. ``$NOGIL_TEST_PYTHON`` (must really be free-threaded, else it is an error);
2. ``python3.15t``, ``python3.14t`` or ``python3.13t`` on ``PATH``;
3. a previous build in the cache directory (newest version first; an existing
   ``cpython-3.13t`` build is reused as it is, never rebuilt);
4. a fresh build with ``--disable-gil`` from Debian's ``python3.15``, else ``python3.14``,
   else ``python3.13`` source package: the first whose upstream tarball the mirror
   actually serves (a source package can be listed while its tarball answers 404). The
   sources come through ``apt-get source`` with a private apt state whose ``deb-src``
   lines reuse the mirror URI (and keyring) of the machine's own apt configuration, so no
   registry address is written here. One line on stderr says which version it got and why
   newer ones were skipped.

The interpreter's path is the only thing printed on stdout; progress goes to stderr.
``--select-only`` runs only the source selection (no download, no build) and prints the
chosen version. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import glob
import urllib.error
import urllib.request
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

# The toolkit's own cache location, from this checkout's sources: the script runs before the
# toolkit is installed (cache_location imports nothing but os).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from nogil_toolkit.cache_location import default_cache_dir  # noqa: E402

VERSIONS = ("3.15", "3.14", "3.13")
"""Source packages tried in this order (``python3.15`` first); 3.13 is the known-good fallback."""
# Suites searched for the source packages; the machine's own release may predate them.
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
            capture_output=True, text=True, timeout=300, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "1"


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


class SourceChoice(NamedTuple):
    """The source package chosen, and why each newer one was passed over."""

    version: str
    suite: str
    skipped: tuple[str, ...]

    @property
    def package(self) -> str:
        return f"python{self.version}"

    @property
    def message(self) -> str:
        why = f"; skipped {'; '.join(self.skipped)}" if self.skipped else ""
        return f"using CPython {self.version} sources ({self.package} from {self.suite}){why}"


class PrivateApt(NamedTuple):
    """apt commands that read and write only a private state under ``root``."""

    options: tuple[str, ...]
    sources_list: Path

    @classmethod
    def create(cls, root: Path) -> PrivateApt:
        (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        sources_list = root / "sources.list"
        return cls(("-o", f"Dir::Etc::SourceList={sources_list}", "-o", "Dir::Etc::SourceParts=-",
                    "-o", f"Dir::State::Lists={root / 'lists'}", "-o", f"Dir::Cache={root / 'cache'}",
                    "-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1"), sources_list)

    def apt_get(self, *args: str) -> list[str]:
        return ["apt-get", "-q", *self.options, *args]


def prepare_sources(root: Path, log_file: Path) -> PrivateApt:
    """A private apt state whose ``deb-src`` lines cover :data:`SUITES` of the machine's mirror."""
    mirror = debian_mirror()
    apt = PrivateApt.create(root)
    options = f"[signed-by={mirror.signed_by}] " if mirror.signed_by else ""
    apt.sources_list.write_text("".join(f"deb-src {options}{mirror.uri} {suite} main\n" for suite in SUITES))
    log(f"reading the source indexes of suites {', '.join(SUITES)} of the machine's Debian mirror")
    run(apt.apt_get("update"), log_file)
    return apt


def tarball_uri(apt: PrivateApt, package: str) -> Optional[str]:
    """The upstream tarball ``apt-get source`` would download for ``package``, if it is listed."""
    listed = subprocess.run(apt.apt_get("source", "--print-uris", package), capture_output=True, text=True,
                            check=False)
    if listed.returncode != 0:
        return None
    uris = re.findall(r"^'(\S+\.orig\.tar\.[a-z0-9]+)'", listed.stdout, re.MULTILINE)
    return uris[0] if uris else None


def served(uri: str) -> Optional[str]:
    """None when the mirror serves ``uri``; else why not (``HTTP 404``)."""
    request = urllib.request.Request(uri, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=60):
            return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"unreachable: {getattr(exc, 'reason', exc)}"


def select_source(apt: PrivateApt) -> SourceChoice:
    """The newest of :data:`VERSIONS` whose source tarball the mirror serves, trying each suite's
    version of a package (the newest listed version may be the one whose tarball is missing)."""
    skipped = []
    for version in VERSIONS:
        package = f"python{version}"
        problems = {}
        for suite in SUITES:
            uri = tarball_uri(apt, f"{package}/{suite}")
            problem = "not listed" if uri is None else served(uri)
            if problem is None:
                return SourceChoice(version, suite, tuple(skipped))
            problems.setdefault(problem, []).append(suite)
        skipped.append(f"{package}: " + ", ".join(f"{problem} in {'/'.join(suites)}"
                                                  for problem, suites in problems.items()))
    raise SystemExit(f"provision: error: no CPython source package can be downloaded ({'; '.join(skipped)})")


def fetch_source(apt: PrivateApt, choice: SourceChoice, work: Path, log_file: Path) -> Path:
    """Download the chosen Debian source package into ``work``; return the upstream tarball."""
    run(apt.apt_get("source", "--download-only", f"{choice.package}/{choice.suite}"), log_file, cwd=work)
    tarballs = sorted(p for p in work.glob(f"{choice.package}_*.orig.tar.*") if not p.name.endswith(".asc"))
    if not tarballs:
        raise SystemExit(f"provision: error: apt-get source left no upstream tarball in {work}")
    return tarballs[-1]


def build(cache_dir: Path, log_file: Path) -> Path:
    """Build and install the newest free-threaded CPython whose sources the mirror serves into
    ``cache_dir/cpython-<version>t``; return its interpreter."""
    ensure_build_dependencies(log_file)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nogil-provision-", dir=cache_dir) as tmp:
        work = Path(tmp)
        apt = prepare_sources(work / "apt", log_file)
        choice = select_source(apt)
        log(choice.message)
        prefix = cache_dir / f"cpython-{choice.version}t"
        tarball = fetch_source(apt, choice, work, log_file)
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
    python = prefix / "bin" / f"python{choice.version}t"
    if not is_free_threaded(str(python)):
        raise SystemExit(f"provision: error: {python} was built but is not free-threaded")
    return python


def find_existing(cache_dir: Path) -> Optional[str]:
    explicit = os.environ.get("NOGIL_TEST_PYTHON")
    if explicit:
        if not is_free_threaded(explicit):
            raise SystemExit(f"provision: error: NOGIL_TEST_PYTHON={explicit} is not a free-threaded CPython")
        return explicit
    for version in VERSIONS:
        found = shutil.which(f"python{version}t")
        if found and is_free_threaded(found):
            return found
    for version in VERSIONS:
        cached = cache_dir / f"cpython-{version}t" / "bin" / f"python{version}t"
        if cached.exists():
            if is_free_threaded(str(cached)):
                return str(cached)
            # Never replace an existing build because it did not answer once (a loaded machine,
            # a test suite using it right now): a rebuild deletes it under every running user.
            raise SystemExit(f"provision: error: {cached} exists but did not answer as a free-threaded "
                             f"CPython; remove {cached.parent.parent} to rebuild it")
    return None


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(default_cache_dir()),
                        help="where builds are kept and reused (default: %(default)s)")
    parser.add_argument("--find-only", action="store_true",
                        help="do not build: exit 1 when no free-threaded interpreter is available")
    parser.add_argument("--select-only", action="store_true",
                        help="only choose the source package to build (newest served first), print its "
                             "version and exit; nothing is downloaded but apt's source indexes")
    args = parser.parse_args(argv)
    if args.select_only:
        with tempfile.TemporaryDirectory(prefix="nogil-provision-select-") as tmp:
            choice = select_source(prepare_sources(Path(tmp) / "apt", Path(tmp) / "select.log"))
        log(choice.message)
        print(choice.version)
        return 0
    found = find_existing(args.cache_dir)
    if found is None and args.find_only:
        return 1
    if found is None:
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        found = str(build(args.cache_dir, args.cache_dir / "provision.log"))
        log(f"built {found}")
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
