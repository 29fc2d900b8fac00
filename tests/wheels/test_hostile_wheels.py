"""Wheels nobody here built: what installers refuse, zip bombs, FIFOs, interruptions.

The archives are written byte by byte (``raw_zip``), so a test can say exactly what a hostile
wheel holds: two members of one name, a path that climbs out, sizes that lie, or 3 GiB of
zeros in 3 MB. Memory is measured by the kernel for a real ``nogil-toolkit`` child process.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any, Callable, Optional

import jsonschema
import pytest

from nogil_toolkit.__main__ import main
from nogil_toolkit.wheel.archive import BinaryBudget, MemberTooLarge, WheelArchive
from nogil_toolkit.wheel.record import RECORD_NAME
from support import NOBODY, run, unprivileged

pytestmark = pytest.mark.freethreaded

MiB = 1 << 20
GiB = 1 << 30
CLI = [sys.executable, "-m", "nogil_toolkit"]


@dataclass
class Member:
    """One zip entry as stored: raw deflate (or stored) bytes and what they claim to be."""

    name: str
    raw: bytes
    crc: int
    size: int
    deflated: bool = True
    sha256: Optional[str] = None
    """For RECORD; None: computed from ``data`` (only given for members built from chunks)."""
    flag_bits: int = 0
    """The general purpose flags of both headers (bit 0: encrypted)."""

    @classmethod
    def of(cls, name: str, data: bytes, deflated: bool = True) -> Member:
        raw = _deflate(data) if deflated else data
        return cls(name, raw, zlib.crc32(data), len(data), deflated, _b64(hashlib.sha256(data).digest()))

    @classmethod
    def zeros_after(cls, name: str, head: bytes, zero_mib: int, *, with_hash: bool = True) -> Member:
        """``head`` followed by ``zero_mib`` MiB of zeros, deflated in about 1 kB per MiB: each
        MiB is compressed once with a full flush, which makes its output independent of what
        came before, so the same bytes can be repeated. ``with_hash=False`` skips hashing the
        zeros and lists a placeholder (the hash of nothing): for a member that must never be
        read to its end."""
        zeros = bytes(MiB)
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        first = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
        block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        raw = first + block * zero_mib + compressor.flush()
        crc, digest = zlib.crc32(head), hashlib.sha256(head)
        for _ in range(zero_mib):
            crc = zlib.crc32(zeros, crc)
            if with_hash:
                digest.update(zeros)
        return cls(name, raw, crc, len(head) + zero_mib * MiB, True,
                   _b64((digest if with_hash else hashlib.sha256()).digest()))


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def raw_zip(path: Path, members: list[Member], declared_sizes: Optional[dict[str, int]] = None) -> Path:
    """Write a ZIP64 archive of ``members`` in this order, duplicates and all; a name in
    ``declared_sizes`` is given that uncompressed size in its headers instead of its real one."""
    declared_sizes = declared_sizes or {}
    central, offset = [], 0
    with open(path, "wb") as out:
        for member in members:
            name = member.name.encode()
            size = declared_sizes.get(member.name, member.size)
            method = 8 if member.deflated else 0
            extra = struct.pack("<HHQQ", 1, 16, size, len(member.raw))
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, member.flag_bits, method, 0, 0x21, member.crc,
                                  0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra)) + name + extra)
            out.write(member.raw)
            extra = struct.pack("<HHQQQ", 1, 24, size, len(member.raw), offset)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0300 | 45, 45, member.flag_bits, method,
                                       0, 0x21, member.crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra), 0, 0,
                                       0, 0o644 << 16, 0xFFFFFFFF) + name + extra)
            offset = out.tell()
        directory = b"".join(central)
        out.write(directory)
        end = out.tell()
        out.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(members), len(members),
                              len(directory), offset))
        out.write(struct.pack("<IIQI", 0x07064B50, 0, end, 1))
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    return path


def wheel(folder: Path, members: list[Member], *, name: str = "hostile", tag: str = "py3-none-any",
          record_extra: tuple[str, ...] = (), record_omit: tuple[str, ...] = (), record_bare: tuple[str, ...] = (),
          metadata_extra: bytes = b"", damage: Optional[dict[str, Callable[[Member], Member]]] = None,
          **options: Any) -> Path:
    """A wheel of ``members`` plus METADATA (ending in ``metadata_extra``), WHEEL and a RECORD
    listing each member once with hash and size, except: lines ``record_extra`` added, names
    ``record_omit`` left out and names ``record_bare`` listed without hash and size. Members
    named in ``damage`` are then replaced by what its function makes of them (RECORD unchanged)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-1.0.dist-info"
    metadata = [Member.of(f"{dist_info}/METADATA",
                          f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode() + metadata_extra),
                Member.of(f"{dist_info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: "
                          f"{str(tag.endswith('any')).lower()}\nTag: {tag}\n".encode())]
    everything = members + metadata
    record = list(dict.fromkeys(f"{m.name},sha256={m.sha256},{m.size}" if m.name not in record_bare else f"{m.name},,"
                                for m in everything if m.name not in record_omit)) + list(record_extra)
    record_member = Member.of(f"{dist_info}/RECORD", ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode())
    damage = damage or {}
    archive = [damage[m.name](m) if m.name in damage else m for m in [*everything, record_member]]
    return raw_zip(folder / f"{name}-1.0-{tag}.whl", archive, **options)


def encrypted(member: Member) -> Member:
    """``member`` with the zip "encrypted" flag set: zipfile, pip and installer need a password."""
    return replace(member, flag_bits=member.flag_bits | 1)


def corrupted(member: Member) -> Member:
    """``member`` with data that is no deflate stream (its first block has the invalid type 3)."""
    return replace(member, raw=b"\xff" * 16)


def tool(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["wheel", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def measured(args: list[str | Path], timeout: float = 300) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``nogil-toolkit`` ``args`` in a child; its result and its peak resident memory in bytes,
    measured by the kernel for that child alone (``RUSAGE_CHILDREN`` of a fresh intermediate)."""
    probe = ("import json, resource, subprocess, sys; "
             "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(json.dumps([r.returncode, r.stdout, r.stderr, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    outer = run([sys.executable, "-c", probe, *CLI, *map(str, args)], timeout=timeout)
    code, out, err, maxrss_kib = json.loads(outer.stdout)
    return subprocess.CompletedProcess(args, code, out, err), maxrss_kib * 1024


@pytest.fixture(scope="module")
def ft_module(ft_sample_wheels: dict[str, Path], ft_abi: tuple[str, str]) -> tuple[str, bytes]:
    """A real extension module built by the plugin (it declares not-used): member name, bytes."""
    name = f"spine/_multi{ft_abi[1]}"
    with zipfile.ZipFile(ft_sample_wheels["spine"]) as archive:
        return name, archive.read(name)


# --- what installers refuse -------------------------------------------------------------------

ESCAPING = ["../evil.py", "pkg/../../evil.py", "/etc/evil.py", "..\\evil.py", "C:/evil.py", "C:\\evil.py",
            "\\\\server\\share\\evil.py"]


@pytest.mark.parametrize("member", ESCAPING)
def test_members_outside_the_install_folder_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                        member: str) -> None:
    hostile = wheel(tmp_path, [Member.of("hostile/__init__.py", b""), Member.of(member, b"print('owned')\n")])
    for command in ("inspect", "verify", "annotate"):
        code, out, err = tool(capsys, command, hostile)
        assert code == 2 and err.count("\n") == 1, (command, err)
        assert f"installers refuse this wheel: member {member!r} would be installed outside the target folder" \
            in err


def test_pip_refuses_the_climbing_member_too(tmp_path: Path) -> None:
    """The rule is pip's: the same wheel fails to install, for the same reason."""
    hostile = wheel(tmp_path / "in", [Member.of("hostile/__init__.py", b""), Member.of("../evil.py", b"")])
    result = run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", tmp_path / "t",
                  hostile], check=False)
    assert result.returncode != 0 and "outside the target directory" in result.stderr
    assert not (tmp_path / "evil.py").exists()


def test_a_member_that_climbs_back_in_is_accepted_as_pip_accepts_it(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path) -> None:
    fine = wheel(tmp_path, [Member.of("hostile/sub/../__init__.py", b"")])
    assert tool(capsys, "inspect", fine)[0] == 0


def test_duplicate_members_are_refused_and_annotate_writes_nothing(
        capsys: pytest.CaptureFixture[str], ft_module: tuple[str, bytes], ft_abi: tuple[str, str],
        tmp_path: Path) -> None:
    name, data = ft_module
    twice = wheel(tmp_path, [Member.of(name, data), Member.of("spine/__init__.py", b""), Member.of(name, b"\0" * 64)],
                  name="spine", tag=f"cp313-{ft_abi[0]}-linux_x86_64")
    original = twice.read_bytes()
    for command in ("inspect", "verify", "annotate"):
        code, _, err = tool(capsys, command, twice)
        assert code == 2 and f"2 members are named {name!r} (an installer keeps only the last)" in err, err
    code, _, err = tool(capsys, "annotate", twice, "-w", tmp_path / "out")
    assert code == 2 and not (tmp_path / "out" / twice.name).exists()
    assert twice.read_bytes() == original and sorted(p.name for p in tmp_path.iterdir()) == [twice.name]


@pytest.mark.parametrize("case", ["listed-but-missing", "not-listed", "no-hash"])
def test_record_and_archive_must_agree(capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str) -> None:
    members = [Member.of("hostile/__init__.py", b"x = 1\n")]
    expected = {"listed-but-missing": "RECORD lists 'hostile/gone.py', which the wheel does not contain",
                "not-listed": "'hostile/__init__.py' is not listed in RECORD",
                "no-hash": "RECORD lists 'hostile-1.0.dist-info/METADATA' without its hash and size"}[case]
    if case == "listed-but-missing":
        gone = Member.of("hostile/gone.py", b"")
        hostile = wheel(tmp_path, members, record_extra=(f"{gone.name},sha256={gone.sha256},0",))
    elif case == "not-listed":
        hostile = wheel(tmp_path, members, record_omit=("hostile/__init__.py",))
    else:
        hostile = wheel(tmp_path, members, record_bare=("hostile-1.0.dist-info/METADATA",))
    assert tool(capsys, "verify", wheel(tmp_path / "control", members))[0] == 0
    code, _, err = tool(capsys, "verify", hostile)
    assert code == 2 and expected in err, err


# --- bounded memory -------------------------------------------------------------------------------

def test_a_3_gib_zip_bomb_is_reported_not_read(ft_abi: tuple[str, str], tmp_path: Path) -> None:
    """The issue's wheel: 3 MB holding a 3 GiB all-zero ``.so``; it took 6.3 GB and 25 s."""
    bomb_member = Member.zeros_after(f"bomb/_x{ft_abi[1]}", b"", 3 * 1024, with_hash=False)
    bomb = wheel(tmp_path, [Member.of("bomb/__init__.py", b""), bomb_member], name="bomb",
                 tag=f"cp313-{ft_abi[0]}-linux_x86_64")
    assert bomb.stat().st_size < 4 * MiB
    result, peak = measured(["wheel", "inspect", "--format", "json", bomb])
    assert result.returncode == 0, result.stderr
    (module,) = json.loads(result.stdout)["wheels"][0]["modules"]
    assert module["inspection"]["verdict"] == "unknown"
    assert module["inspection"]["reason"] == "3 GiB uncompressed, over the 1 GiB limit for one binary, so not read"
    assert peak < 150 * MiB, peak
    result, peak = measured(["wheel", "verify", bomb])
    assert result.returncode == 1 and "bomb._x cannot be read with certainty (3 GiB uncompressed" in result.stdout
    assert peak < 150 * MiB, peak


def test_a_bomb_that_declares_a_small_size_is_cut_at_that_size(ft_abi: tuple[str, str], tmp_path: Path) -> None:
    """Headers that lie: 3 GiB of zeros declared as 1 MiB; reading stops at 1 MiB and the
    wheel is reported as damaged, never inflated."""
    name = f"bomb/_x{ft_abi[1]}"
    bomb = wheel(tmp_path, [Member.zeros_after(name, b"", 3 * 1024, with_hash=False)], name="bomb",
                 tag=f"cp313-{ft_abi[0]}-linux_x86_64", declared_sizes={name: MiB})
    result, peak = measured(["wheel", "inspect", bomb])
    assert result.returncode == 2 and result.stderr.startswith(f"error: {bomb}: ") and "Traceback" not in \
        result.stderr, result.stderr
    assert peak < 150 * MiB, peak


def test_a_large_binary_under_the_limit_is_read_through_a_file_not_memory(
        ft_module: tuple[str, bytes], ft_abi: tuple[str, str], tmp_path: Path) -> None:
    """A real module padded with 600 MiB of zeros: still judged (not-used), in bounded memory."""
    name, data = ft_module
    padded = Member.zeros_after(name, data, 600)
    large = wheel(tmp_path, [Member.of("spine/__init__.py", b""), padded], name="spine",
                  tag=f"cp313-{ft_abi[0]}-linux_x86_64")
    result, peak = measured(["wheel", "inspect", "--format", "json", large])
    assert result.returncode == 0, result.stderr
    (module,) = json.loads(result.stdout)["wheels"][0]["modules"]
    assert module["inspection"]["verdict"] == "not-used", module
    assert peak < 200 * MiB, peak


# --- every input accounted for ------------------------------------------------------------------

def test_json_has_an_entry_for_every_input_and_matches_its_schema(
        capsys: pytest.CaptureFixture[str], ft_sample_wheels: dict[str, Path], tmp_path: Path) -> None:
    good = ft_sample_wheels["spine"]
    truncated = tmp_path / good.name.replace("spine-", "truncated-")
    truncated.write_bytes(good.read_bytes()[:1000])
    fifo = tmp_path / "fifo-1.0-py3-none-any.whl"
    os.mkfifo(fifo)
    missing = tmp_path / "missing-1.0-py3-none-any.whl"
    climbing = wheel(tmp_path, [Member.of("../evil.py", b"")])
    inputs = [good, truncated, fifo, missing, climbing, tmp_path / "notawheel.txt"]
    schema = json.loads(files("nogil_toolkit").joinpath("wheel_report.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for command in ("inspect", "verify"):
        code, out, err = tool(capsys, command, "--format", "json", *inputs)
        document = json.loads(out)
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
        assert code == 2 and [entry["path"] for entry in document["wheels"]] == [str(p) for p in inputs]
        errors = [entry.get("error") for entry in document["wheels"]]
        assert errors[0] is None and all(errors[1:]), errors
        assert "not a regular file" in errors[2] and errors[3] == "no such file"
        assert "installers refuse this wheel" in errors[4] and "not a wheel file name" in errors[5]
        assert err.count("error: ") == 5 and "Traceback" not in err
        if command == "verify":
            assert [entry["ok"] for entry in document["wheels"]] == [True, False, False, False, False, False]


def test_fifos_named_whl_never_hang(ft_python: str, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo-1.0-py3-none-any.whl"
    os.mkfifo(fifo)
    for command in ("inspect", "verify", "annotate"):
        result = run([*CLI, "wheel", command, fifo], check=False, timeout=60)
        assert result.returncode == 2 and result.stderr == (
            f"error: {fifo}: not a regular file (a FIFO, socket or device), so not read\n")
    pure = tmp_path / "pure"
    pure.mkdir()
    os.mkfifo(pure / "stuck-1.0-py3-none-any.whl")
    ok = wheel(pure, [Member.of("hostile/__init__.py", b"")])
    result = run([*CLI, "wheel", "select", "--python", ft_python, pure], check=False, timeout=120)
    assert result.returncode == 0 and result.stdout.splitlines() == [str(ok)], result.stderr
    assert f"{pure / 'stuck-1.0-py3-none-any.whl'}: skipped, not a regular file" in result.stderr
    result = run([*CLI, "wheel", "select", "--python", ft_python, fifo], check=False, timeout=120)
    assert result.returncode == 2 and "not a regular file or directory" in result.stderr


def test_annotate_into_a_regular_file_is_a_clean_error(capsys: pytest.CaptureFixture[str],
                                                       ft_sample_wheels: dict[str, Path], tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    code, out, err = tool(capsys, "annotate", ft_sample_wheels["plain"], "-w", not_a_dir)
    assert code == 2 and out == "" and err == f"error: exists and is not a directory ({not_a_dir})\n"


# --- interruption -------------------------------------------------------------------------------

def test_sigint_during_annotate_leaves_the_wheel_and_nothing_else(
        ft_sample_wheels: dict[str, Path], tmp_path: Path) -> None:
    """A real Ctrl-C to a real ``nogil-toolkit wheel annotate`` busy copying 2 GiB."""
    with zipfile.ZipFile(ft_sample_wheels["plain"]) as archive:
        members = [Member.of(info.filename, archive.read(info)) for info in archive.infolist()
                   if ".dist-info/" not in info.filename]
    members.insert(0, Member.zeros_after("plain/big.dat", b"", 2048))
    big = wheel(tmp_path / "w", members, name="plain", tag=ft_sample_wheels["plain"].name.split("-", 2)[2][:-4])
    original = big.read_bytes()
    child = subprocess.Popen([*CLI, "wheel", "annotate", str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        if any(p.name.startswith(".annotate-") for p in big.parent.iterdir()):
            break
        time.sleep(0.02)
    time.sleep(0.3)  # well inside the copy of big.dat, which takes seconds
    assert child.poll() is None, "annotate ended before it could be interrupted: " + child.communicate()[1]
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode != 0, err
    assert sorted(p.name for p in big.parent.iterdir()) == [big.name]
    assert big.read_bytes() == original


def test_the_per_wheel_budget_stops_reading_after_the_total(ft_module: tuple[str, bytes], ft_abi: tuple[str, str],
                                                            tmp_path: Path) -> None:
    """The budgets themselves, with small numbers on a real archive: per binary, then per wheel."""
    name, data = ft_module
    two = wheel(tmp_path, [Member.of(name, data), Member.of(name.replace("_multi", "_again"), data)], name="spine",
                tag=f"cp313-{ft_abi[0]}-linux_x86_64")
    with WheelArchive(str(two)) as archive:
        first, second = (i for i in archive.infos if i.filename.endswith(".so"))
        with pytest.raises(MemberTooLarge, match="over the .* limit for one binary, so not read"):
            with archive.read_binary(first, BinaryBudget(total=10 * len(data), per_member=len(data) - 1)):
                pass
        budget = BinaryBudget(total=len(data) + len(data) // 2, per_member=len(data))
        with archive.read_binary(first, budget) as read:
            assert bytes(read) == data
        with pytest.raises(MemberTooLarge, match="would pass the .* read at most from one wheel"):
            with archive.read_binary(second, budget):
                pass


# --- what zipfile, json and a terminal cannot take ------------------------------------------------

def cli(*args: str | Path, user: bool = False) -> subprocess.CompletedProcess[str]:
    """``nogil-toolkit wheel ARGS`` in a child (as the unprivileged user with ``user``), which
    must end without a traceback whatever the input."""
    command = [*CLI, "wheel", *map(str, args)]
    result = run(unprivileged(command) if user else command, check=False, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error")]


def spine_wheel(folder: Path, ft_module: tuple[str, bytes], ft_abi: tuple[str, str], *extra: Member,
                **options: Any) -> Path:
    """A wheel ``spine`` for the free-threaded interpreter: a real module declaring not-used, and ``extra``."""
    name, data = ft_module
    return wheel(folder, [Member.of("spine/__init__.py", b""), Member.of(name, data), *extra], name="spine",
                 tag=f"{ft_abi[0][:-1]}-{ft_abi[0]}-linux_x86_64", **options)


def test_a_deeply_nested_declaration_record_is_a_malformed_record(
        ft_python: str, ft_module: tuple[str, bytes], ft_abi: tuple[str, str], tmp_path: Path) -> None:
    """``[`` 100,000 times: json's decoder runs out of stack (RecursionError, not ValueError)."""
    deep = spine_wheel(tmp_path, ft_module, ft_abi,
                       Member.of(f"spine-1.0.dist-info/{RECORD_NAME}", b"[" * 100_000 + b"]" * 100_000))
    result = cli("inspect", deep)
    assert result.returncode == 0 and result.stderr == ""
    assert f"  record: unreadable ({RECORD_NAME} is nested too deeply to be read" in result.stdout
    document = json.loads(cli("inspect", "--format", "json", deep).stdout)
    assert document["wheels"][0]["record_error"].startswith(f"{RECORD_NAME} is nested too deeply")
    result = cli("verify", deep)
    assert result.returncode == 1 and result.stderr == ""
    assert [line for line in result.stdout.splitlines() if "error" in line] == [
        f"  error [record] {RECORD_NAME} is nested too deeply to be read as JSON"]
    result = cli("select", "--python", ft_python, "--require-declared", deep)
    assert result.returncode == 0 and result.stdout == f"{deep}\n" and error_lines(result) == []
    result = cli("annotate", deep, "-w", tmp_path / "out")  # replaced like any malformed record
    assert result.returncode == 0 and error_lines(result) == []


DAMAGES = {"encrypted": (encrypted, "is encrypted"), "corrupt": (corrupted, "cannot be read")}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize("member", ["binary", "METADATA", "RECORD", RECORD_NAME])
def test_encrypted_or_corrupt_members_are_one_error_naming_the_member(
        ft_python: str, ft_module: tuple[str, bytes], ft_abi: tuple[str, str], tmp_path: Path, damage: str,
        member: str) -> None:
    """pip cannot install an encrypted member either; a corrupt one fails in zlib."""
    name = ft_module[0] if member == "binary" else f"spine-1.0.dist-info/{member}"
    alter, phrase = DAMAGES[damage]
    record = Member.of(f"spine-1.0.dist-info/{RECORD_NAME}", b'{"schema_version": 1, "modules": {}}')
    hostile = spine_wheel(tmp_path / "in", ft_module, ft_abi, record, damage={name: alter})
    original = hostile.read_bytes()
    for command in ("inspect", "verify", "annotate"):
        result = cli(command, hostile)
        assert result.returncode == 2 and result.stdout == "", (command, result.stdout)
        assert result.stderr.startswith(f"error: {hostile}: ") and result.stderr.count("\n") == 1, result.stderr
        assert f"{name!r} {phrase}" in result.stderr, result.stderr
    document = json.loads(cli("verify", "--format", "json", hostile).stdout)
    assert f"{name!r} {phrase}" in document["wheels"][0]["error"]
    assert hostile.read_bytes() == original and [p.name for p in hostile.parent.iterdir()] == [hostile.name]
    pure = wheel(tmp_path / "pure", [Member.of("spine/__init__.py", b"")], name="spine")
    result = cli("select", "--python", ft_python, "--require-declared", hostile, pure)
    assert result.returncode == 2 and result.stdout == f"{pure}\n"
    (line,) = error_lines(result)
    assert line.startswith(f"error: {hostile}: ") and f"{name!r} {phrase}" in line, result.stderr


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_annotate_stops_at_a_member_it_cannot_copy_and_leaves_nothing(
        ft_module: tuple[str, bytes], ft_abi: tuple[str, str], tmp_path: Path, damage: str) -> None:
    """A member that only annotate reads (it copies every member), in place and into a folder."""
    alter, phrase = DAMAGES[damage]
    hostile = spine_wheel(tmp_path / "in", ft_module, ft_abi, Member.of("spine/data.py", b"x = 1\n" * 100),
                          damage={"spine/data.py": alter})
    original = hostile.read_bytes()
    for extra in ([], ["-w", tmp_path / "out"]):
        result = cli("annotate", hostile, *extra)
        assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: {hostile}: ") and f"'spine/data.py' {phrase}" in result.stderr
        assert hostile.read_bytes() == original and [p.name for p in hostile.parent.iterdir()] == [hostile.name]
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_metadata_and_records_that_are_not_utf8_are_named(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    latin = wheel(tmp_path / "metadata", [Member.of("hostile/__init__.py", b"")], metadata_extra=b"Summary: \xff\n")
    for command in ("inspect", "verify", "annotate"):
        result = cli(command, latin)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith(f"error: {latin}: hostile-1.0.dist-info/METADATA is not UTF-8 (")
    binary = wheel(tmp_path / "record", [Member.of(f"hostile-1.0.dist-info/{RECORD_NAME}", b"\xff\xfe{}")])
    result = cli("inspect", binary)
    assert result.returncode == 0 and f"  record: unreadable ({RECORD_NAME} is not UTF-8 (" in result.stdout
    result = cli("verify", binary)
    assert result.returncode == 1 and result.stderr == ""
    assert [line for line in result.stdout.splitlines() if "error" in line] == [
        f"  error [record] {RECORD_NAME} is not UTF-8 ('utf-8' codec can't decode byte 0xff in position 0: "
        "invalid start byte)"]


CONTROLS = "\x1b]0;owned\x07\x1b[2J\x9b31m\x00\t"


def test_control_characters_from_a_wheel_never_reach_the_terminal(tmp_path: Path) -> None:
    """ESC, OSC, CSI (C1 too) and NUL in the classifier, the record and the path are shown escaped."""
    classifier = f"Programming Language :: Python :: Free Threading :: 2 - Beta{CONTROLS}"
    record = json.dumps({"schema_version": 1, "generator": f"gen{CONTROLS}",
                         "modules": {f"ghost{CONTROLS}\n": "used"}})
    hostile = wheel(tmp_path / "dir\x1b[31m", [Member.of(f"hostile-1.0.dist-info/{RECORD_NAME}", record.encode())],
                    metadata_extra=f"Classifier: {classifier}\n".encode())
    shown = CONTROLS.encode("unicode_escape").decode("ascii")
    inspected, verified = cli("inspect", hostile), cli("verify", hostile)
    assert inspected.returncode == 0 and verified.returncode == 1
    for result in (inspected, verified):
        text = result.stdout + result.stderr
        assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", text), repr(text)
    assert f"  classifier: Programming Language :: Python :: Free Threading :: 2 - Beta{shown}\n" in inspected.stdout
    assert f", by gen{shown}\n" in inspected.stdout and "dir\\x1b[31m" in inspected.stdout
    assert f"  error [record] {RECORD_NAME} lists ghost{shown}\\n, but the wheel has no such extension module\n" \
        in verified.stdout
    document = json.loads(cli("inspect", "--format", "json", hostile).stdout)
    assert document["wheels"][0]["free_threading_classifier"] == classifier  # JSON keeps the exact text


# --- select: folders and link directories it cannot use --------------------------------------------

def test_select_skips_a_symlink_loop_in_a_folder(tmp_path: Path) -> None:
    ok = wheel(tmp_path, [Member.of("hostile/__init__.py", b"")])
    loop = tmp_path / "loop-1.0-py3-none-any.whl"
    loop.symlink_to(loop.name)
    result = cli("select", "--python", sys.executable, tmp_path)
    assert result.returncode == 0 and result.stdout == f"{ok}\n" and error_lines(result) == []
    assert [line for line in result.stderr.splitlines() if line.startswith("warning")] == [
        f"warning: {loop}: skipped, cannot be read (Too many levels of symbolic links)"]


def test_select_with_a_link_dir_under_a_file_is_one_error(tmp_path: Path) -> None:
    ok = wheel(tmp_path / "in", [Member.of("hostile/__init__.py", b"")])
    (tmp_path / "file").write_text("")
    for format in ("list", "json"):
        result = cli("select", "--python", sys.executable, "--format", format, "--link-dir", tmp_path / "file/sub", ok)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr == f"error: cannot place the chosen wheels there: Not a directory ({tmp_path}/file/sub)\n"


@pytest.mark.parametrize("copy", [False, True])
def test_select_with_a_link_dir_it_may_not_write_is_one_error(unprivileged_dir: Path, copy: bool) -> None:
    ok = wheel(unprivileged_dir / "in", [Member.of("hostile/__init__.py", b"")])
    locked = unprivileged_dir / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:
        os.chown(locked, NOBODY, NOBODY)
    os.chmod(ok, 0o644)
    result = cli("select", "--python", sys.executable, "--link-dir", locked, *(["--copy"] if copy else []), ok,
                 user=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"error: cannot place the chosen wheels there: Permission denied ({locked})\n"
    assert list(locked.iterdir()) == []
