"""Bad input of every kind becomes an UNKNOWN verdict with a reason, never an exception."""

from __future__ import annotations

import os
import random
import struct
import zipfile

import pytest

from inspect_support import download_wheel, require

from nogil_toolkit.inspect import ModuleInspection, Verdict, inspect_binary, inspect_bytes

SEED = 20240613


def _unknown(report: ModuleInspection, fragment: str) -> None:
    assert isinstance(report, ModuleInspection)
    assert report.verdict is Verdict.UNKNOWN
    assert report.reason and fragment in report.reason, report.reason


def test_missing_file(tmp_path):
    _unknown(inspect_binary(tmp_path / "nope.so"), "cannot read")


def test_empty_file(tmp_path):
    (tmp_path / "empty.so").write_bytes(b"")
    _unknown(inspect_binary(tmp_path / "empty.so"), "empty")


def test_directory(tmp_path):
    (tmp_path / "dir.so").mkdir()
    _unknown(inspect_binary(tmp_path / "dir.so"), "directory")


def test_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "pipe.so"
    os.mkfifo(fifo)
    _unknown(inspect_binary(fifo), "not a regular file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_permission_denied(tmp_path):
    path = tmp_path / "secret.so"
    path.write_bytes(b"\x7fELF")
    path.chmod(0)
    _unknown(inspect_binary(path), "cannot read")


@pytest.mark.parametrize("data, fragment", [
    (b"hello world, this is text\n" * 10, "not an ELF, PE or Mach-O"),
    (b"\x7fELF", "not an ELF"),
    (b"\x7fELF\x02\x01\x01" + bytes(57), "no section headers"),
    (b"\x7fELF\x03\x01\x01" + bytes(57), "unsupported ELF class"),
    (b"MZ" + bytes(100), "PE header"),
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(40), "Java"),
    (b"\xcf\xfa\xed\xfe" + bytes(10), "malformed"),
])
def test_garbage_and_truncated_headers(data, fragment):
    _unknown(inspect_bytes(data, "x.so"), fragment)


def test_section_table_beyond_end_of_file(c_modules):
    data = bytearray(c_modules["multi_not_used"].path.read_bytes())
    struct.pack_into("<Q", data, 0x28, len(data) + 4096)  # e_shoff
    _unknown(inspect_bytes(bytes(data), "x.so"), "beyond end of file")


def test_huge_counts_are_bounded(c_modules):
    data = bytearray(c_modules["multi_not_used"].path.read_bytes())
    struct.pack_into("<H", data, 0x3C, 0)  # e_shnum = 0 -> real count read from section 0 ...
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    struct.pack_into("<Q", data, shoff + 32, 1 << 40)  # ... which claims 2**40 sections
    _unknown(inspect_bytes(bytes(data), "x.so"), "beyond end of file")


def test_memoryview_input(c_modules):
    data = c_modules["multi_not_used"].path.read_bytes()
    assert inspect_bytes(memoryview(data), "multi_not_used.so").verdict is Verdict.NOT_USED


def _mutants(seed_binaries, count):
    rng = random.Random(SEED)
    for index in range(count):
        data = bytearray(rng.choice(seed_binaries))
        kind = index % 4
        if kind == 0:  # bit flips anywhere
            for _ in range(rng.randint(1, 64)):
                position = rng.randrange(len(data))
                data[position] ^= 1 << rng.randrange(8)
        elif kind == 1:  # truncation
            data = data[:rng.randrange(len(data))]
        elif kind == 2:  # random section headers
            shoff = struct.unpack_from("<Q", data, 0x28)[0]
            shnum = struct.unpack_from("<H", data, 0x3C)[0]
            for _ in range(rng.randint(1, 4)):
                entry = shoff + 64 * rng.randrange(max(shnum, 1))
                if entry + 64 <= len(data):
                    data[entry:entry + 64] = rng.randbytes(64)
        else:  # header fields overwritten with extreme values
            field = rng.choice([0x18, 0x20, 0x28, 0x30, 0x34, 0x36, 0x38, 0x3A, 0x3C, 0x3E])
            data[field:field + 2] = rng.choice([b"\xff\xff", b"\x00\x00", b"\x01\x00", b"\x00\x80"])
        yield bytes(data)


def test_fuzzed_real_binaries_never_raise(c_modules):
    seeds = [m.path.read_bytes() for m in c_modules.values()]
    verdicts = set()
    for data in _mutants(seeds, 3000):
        report = inspect_bytes(data, "fuzz.so")
        assert isinstance(report, ModuleInspection)
        assert report.verdict is not Verdict.UNKNOWN or report.reason
        verdicts.add(report.verdict)
    assert Verdict.UNKNOWN in verdicts and Verdict.NOT_USED in verdicts


def test_fuzzed_pe_and_macho_never_raise():
    seeds = []
    for platform in ("win_amd64", "macosx_11_0_arm64", "macosx_10_13_x86_64"):
        wheel = download_wheel("markupsafe", platform)
        require(wheel is not None, f"cannot download markupsafe for {platform}")
        with zipfile.ZipFile(wheel) as archive:
            seeds += [archive.read(n) for n in archive.namelist() if n.endswith((".so", ".pyd"))]
    rng = random.Random(SEED)
    for _ in range(1500):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 32)):
            position = rng.randrange(min(len(data), 8192))  # headers, load commands, tables
            data[position] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[:rng.randrange(len(data))]
        report = inspect_bytes(bytes(data), "fuzz.so")
        assert report.verdict is not Verdict.UNKNOWN or report.reason


def test_random_bytes_never_declare(c_modules):
    rng = random.Random(SEED)
    headers = [b"\x7fELF\x02\x01\x01", b"MZ", b"\xcf\xfa\xed\xfe"]
    for index in range(2000):
        data = rng.choice(headers) + rng.randbytes(rng.randrange(0, 4096))
        # Splice in slot-shaped bytes too: {Py_mod_gil, 1} followed by a terminator.
        if index % 2:
            data += (4).to_bytes(8, "little") + (1).to_bytes(8, "little") + bytes(16)
        report = inspect_bytes(data, "random.so")
        assert report.verdict is not Verdict.NOT_USED, report
