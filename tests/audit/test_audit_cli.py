"""``nogil-toolkit audit`` end to end: which files, the configuration, formats, exit codes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from nogil_toolkit.__main__ import main
from support import run, unprivileged

FIXTURES = Path(__file__).parent / "fixtures"
SCHEMA = Path(__file__).resolve().parents[2] / "src" / "nogil_toolkit" / "audit" / "audit.schema.json"
RISKY = "PyObject *f(PyObject *l) {\n    return PyList_GetItem(l, 0);\n}\n"
NOTE_ONLY = "void g(void) {\n    Py_BEGIN_ALLOW_THREADS\n    Py_END_ALLOW_THREADS\n}\n"


def audit(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    code = main(["audit", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def audit_json(capsys: pytest.CaptureFixture[str], *args: Any) -> dict[str, Any]:
    code, out, _ = audit(capsys, "--format", "json", *args)
    document = json.loads(out)
    assert document["exit_code"] == code
    return document


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_default_sources_are_the_literal_extension_lists_of_setup_py(tmp_path: Path, capsys, monkeypatch) -> None:
    project(tmp_path, {
        "setup.py": 'from setuptools import Extension, setup\n'
                    'setup(ext_modules=[Extension("pkg._a", sources=["src/a.c"], depends=["src/a.h"])])\n',
        "src/a.c": RISKY, "src/a.h": RISKY, "tools/unlisted.c": RISKY})
    monkeypatch.chdir(tmp_path)
    document = audit_json(capsys)
    assert document["origin"] == "the build configuration (1 Extension() calls in setup.py)"
    assert sorted({f["path"] for f in document["findings"]}) == ["src/a.c", "src/a.h"]


def test_default_sources_from_pyproject_ext_modules(tmp_path: Path, capsys, monkeypatch) -> None:
    project(tmp_path, {
        "pyproject.toml": '[[tool.setuptools.ext-modules]]\nname = "pkg._b"\nsources = ["src/b.c"]\n',
        "src/b.c": RISKY, "src/unlisted.c": RISKY})
    monkeypatch.chdir(tmp_path)
    document = audit_json(capsys)
    assert document["origin"] == "the build configuration (1 ext-modules in pyproject.toml)"
    assert [f["path"] for f in document["findings"]] == ["src/b.c"]


def test_computed_sources_fall_back_to_the_project_tree(tmp_path: Path, capsys, monkeypatch) -> None:
    project(tmp_path, {
        "setup.py": 'import glob\nfrom setuptools import Extension, setup\n'
                    'setup(ext_modules=[Extension("pkg._c", sources=glob.glob("src/*.c"))])\n',
        "src/c.c": RISKY, "src/deep/d.pyx": "x = PyList_GetItem(a, 0)\n",
        "build/temp/c.c": RISKY, "venv/lib/x.c": RISKY, "venv/pyvenv.cfg": "",
        "env2/pyvenv.cfg": "", "env2/y.c": RISKY, ".git/z.c": RISKY, "pkg.egg-info/w.c": RISKY})
    monkeypatch.chdir(tmp_path)
    document = audit_json(capsys)
    assert document["origin"] == "the project tree (setup.py computes its extensions' sources)"
    assert sorted(f["path"] for f in document["findings"]) == ["src/c.c", "src/deep/d.pyx"]


def test_configuration_ignores_rules_and_excludes_paths(tmp_path: Path, capsys, monkeypatch) -> None:
    project(tmp_path, {
        "pyproject.toml": '[tool.nogil.audit]\nignore = ["allow-threads-serialises"]\n'
                          'exclude = ["vendor", "src/legacy_*.c"]\n',
        "src/a.c": RISKY + NOTE_ONLY, "src/legacy_b.c": RISKY, "vendor/lib/c.c": RISKY, "src/vendor.c": RISKY})
    monkeypatch.chdir(tmp_path)
    document = audit_json(capsys)
    assert sorted((f["path"], f["rule"]) for f in document["findings"]) == [
        ("src/a.c", "borrowed-list-item"), ("src/vendor.c", "borrowed-list-item")]
    # A file named on the command line is audited even when excluded.
    assert [f["path"] for f in audit_json(capsys, "src/legacy_b.c")["findings"]] == ["src/legacy_b.c"]
    assert audit_json(capsys, "--ignore", "borrowed-list-item", "src/a.c")["findings"] == []


@pytest.mark.parametrize(("table", "message"), [
    ('ignore = ["borowed-list-item"]',
     'error: tool.nogil.audit.ignore: unknown rule "borowed-list-item" (did you mean \'borrowed-list-item\'?); rules: '),
    ('ignores = []', "error: tool.nogil.audit.ignores: unknown key (did you mean 'ignore'?); known keys: ignore, "
                     "exclude, build (pyproject.toml:3:1)"),
    ('exclude = "vendor"', 'error: tool.nogil.audit.exclude: expected an array of path globs (non-empty strings), '
                           'got string "vendor" (pyproject.toml:3:1)'),
    ('exclude = ["../outside"]', 'error: tool.nogil.audit.exclude: expected a glob relative to the project directory '
                                 'with "/" separators and no "..", got "../outside" (pyproject.toml:3:1)'),
    ('ignore = [1]', "error: tool.nogil.audit.ignore: expected an array of rule ids (non-empty strings), got integer 1 "
                     "(pyproject.toml:3:1)"),
])
def test_configuration_errors_name_key_and_place(table: str, message: str, tmp_path: Path, capsys, monkeypatch) -> None:
    project(tmp_path, {"pyproject.toml": f"[tool.nogil]\n[tool.nogil.audit]\n{table}\n", "a.c": RISKY})
    monkeypatch.chdir(tmp_path)
    code, out, err = audit(capsys)
    assert (code, out) == (2, "")
    assert err.startswith(message) and err.rstrip().endswith("(pyproject.toml:3:1)") and err.count("\n") == 1, err


def test_audit_key_is_a_table(tmp_path: Path, capsys, monkeypatch) -> None:
    project(tmp_path, {"pyproject.toml": '[tool.nogil]\naudit = "warn"\n', "a.c": RISKY})
    monkeypatch.chdir(tmp_path)
    assert audit(capsys)[2] == ('error: tool.nogil.audit: expected a table, got string "warn"; the build audit\'s '
                                'mode is written [tool.nogil.audit] build = "warn" (pyproject.toml:2:1)\n')


def test_exit_codes_follow_fail_on(tmp_path: Path, capsys) -> None:
    project(tmp_path, {"risky.c": RISKY, "note.c": NOTE_ONLY, "clean.c": "int main(void) { return 0; }\n"})
    assert audit(capsys, tmp_path / "clean.c")[0] == 0
    assert audit(capsys, tmp_path / "risky.c")[0] == 1
    assert audit(capsys, "--fail-on", "error", tmp_path / "risky.c")[0] == 0
    assert audit(capsys, tmp_path / "note.c")[0] == 0
    assert audit(capsys, "--fail-on", "note", tmp_path / "note.c")[0] == 1
    assert audit(capsys, "--fail-on", "never", tmp_path / "risky.c")[0] == 0
    code, out, err = audit(capsys, tmp_path / "missing.c")
    assert (code, out, err) == (2, "", f"error: no such file or directory ({tmp_path / 'missing.c'})\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", "--ignore", "no-such-rule", str(tmp_path)])
    assert exit_info.value.code == 2


def test_text_output_reads_like_a_compiler(tmp_path: Path, capsys) -> None:
    project(tmp_path, {"risky.c": RISKY})
    code, out, err = audit(capsys, tmp_path / "risky.c")
    assert out.splitlines() == [
        f"{tmp_path / 'risky.c'}:2:12: warning [borrowed-list-item] PyList_GetItem returns a borrowed reference "
        "into a list that another thread can modify: the item can be freed before it is used or Py_INCREF'd",
        "    instead: PyList_GetItemRef (returns a strong reference) (CPython 3.13+; pythoncapi_compat.h backports it)"]
    assert err.startswith("audited 1 file from the paths given in ") and err.endswith(
        " s: 1 finding (1 warning) in 1 file\n")


def test_json_output_follows_its_schema(capsys) -> None:
    document = audit_json(capsys, FIXTURES)
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    assert document["files_audited"] == len(list(FIXTURES.iterdir()))
    assert document["summary"]["by_severity"]["error"] == 3
    weakref = next(f for f in document["findings"] if f["api"] == "PyWeakref_GetObject")
    assert weakref["replacement"] == {"text": "PyWeakref_GetRef (returns a strong reference)", "since": "3.13",
                                      "pythoncapi_compat": True}
    assert weakref["documentation"]["url"].endswith("free-threading-extensions.html#borrowed-references")


def test_sarif_output_is_valid_sarif_2_1_0(capsys, sarif_schema: dict[str, Any], monkeypatch) -> None:
    monkeypatch.chdir(FIXTURES.parent)
    code, out, _ = audit(capsys, "--format", "sarif", "--project", FIXTURES.parent, "fixtures")
    log = json.loads(out)
    validator = jsonschema.validators.validator_for(sarif_schema)
    validator.check_schema(sarif_schema)
    errors = list(validator(sarif_schema, format_checker=validator.FORMAT_CHECKER).iter_errors(log))
    assert errors == []
    (run_,) = log["runs"]
    rules = run_["tool"]["driver"]["rules"]
    result = next(r for r in run_["results"] if r["ruleId"] == "borrowed-weakref")
    assert rules[result["ruleIndex"]]["id"] == "borrowed-weakref" and result["level"] == "error"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "fixtures/every_rule.c", "uriBaseId": "SRCROOT"}
    assert location["region"]["startLine"] == 19
    assert run_["originalUriBaseIds"]["SRCROOT"]["uri"] == FIXTURES.parent.as_uri() + "/"
    assert code == 1


def test_bad_files_are_skipped_with_one_line_each(tmp_path: Path) -> None:
    """Run as a subprocess with a timeout: a FIFO or a link cycle must not hang it."""
    tree = tmp_path / "tree"
    project(tree, {"ok.c": RISKY})
    os.mkfifo(tree / "pipe.c")
    (tree / "loop_a.c").symlink_to(tree / "loop_b.c")
    (tree / "loop_b.c").symlink_to(tree / "loop_a.c")
    (tree / "cycle").mkdir()
    (tree / "cycle" / "up").symlink_to(tree, target_is_directory=True)
    (tree / "binary.c").write_bytes(b"int x;\n\0\0\0")
    (tree / "latin1.c").write_bytes(b"/* caf\xe9 */\nPyObject *f(PyObject *l) { return PyList_GET_ITEM(l, 0); }\n")
    with (tree / "huge.c").open("wb") as handle:
        handle.truncate(33 * 1024 * 1024)
    result = run([sys.executable, "-m", "nogil_toolkit", "audit", "--format", "json", tree], timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert {(Path(s["path"]).name, s["reason"]) for s in document["skipped"]} == {
        ("pipe.c", "a FIFO (named pipe), not a source file"),
        ("loop_a.c", "a symlink loop"), ("loop_b.c", "a symlink loop"),
        ("binary.c", "contains a NUL byte at line 2: not a text file"),
        ("huge.c", "larger than 32 MiB: not a hand-written source"),
    }
    assert [(Path(n["path"]).name, n["note"]) for n in document["notes"]] == [
        ("latin1.c", "not UTF-8 (byte 0xe9 at line 1); audited with its bytes as they are")]
    assert sorted((Path(f["path"]).name, f["line"]) for f in document["findings"]) == [("latin1.c", 2), ("ok.c", 2)]
    assert "Traceback" not in result.stderr
    assert sum(line.startswith("warning: skipped ") for line in result.stderr.splitlines()) == 5
    # Named explicitly, a FIFO is one line too.
    result = run([sys.executable, "-m", "nogil_toolkit", "audit", tree / "pipe.c"], timeout=60, check=False)
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr.splitlines()[0] == f"warning: skipped {tree / 'pipe.c'}: a FIFO (named pipe), not a source file"


def test_unreadable_file_as_an_unprivileged_user(unprivileged_dir: Path) -> None:
    source = unprivileged_dir / "secret.c"
    source.write_text(RISKY)
    readable = unprivileged_dir / "open.c"
    readable.write_text(RISKY)
    if os.geteuid() == 0:
        os.chown(source, 65534, 65534)
        os.chown(readable, 65534, 65534)
    source.chmod(0)
    closed = unprivileged_dir / "closed"
    closed.mkdir()
    (closed / "hidden.c").write_text(RISKY)
    if os.geteuid() == 0:
        os.chown(closed, 65534, 65534)
    closed.chmod(0)
    src = Path(__file__).resolve().parents[2] / "src"
    result = run(unprivileged([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(src)!r}); "
                               "from nogil_toolkit.__main__ import main; sys.exit(main())",
                               "audit", unprivileged_dir]), timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[:2] == [f"warning: skipped {source}: cannot be read: permission denied",
                                              f"warning: skipped {closed}: folder cannot be read: permission denied"]
    assert result.stdout.startswith(f"{readable}:2:12: warning [borrowed-list-item]")


def test_file_names_that_are_not_utf8_or_have_spaces(tmp_path: Path) -> None:
    folder = tmp_path / "test cases"
    folder.mkdir()
    (Path(os.fsdecode(bytes(folder) + b"/caf\xe9.c"))).write_text(RISKY)
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict")
    command = [sys.executable, "-m", "nogil_toolkit", "audit", "--project", tmp_path]
    text = run([*command, folder], env=env, check=False)
    assert (text.returncode, text.stdout.splitlines()[0].split(": ")[0]) == (1, f"{folder}/caf\\xe9.c:2:12")
    document = json.loads(run([*command, "--format", "json", folder], env=env, check=False).stdout)
    assert document["findings"][0]["path"] == f"{folder}/caf\\xe9.c"
    log = json.loads(run([*command, "--format", "sarif", folder], env=env, check=False).stdout)
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "test%20cases/caf%E9.c", "uriBaseId": "SRCROOT"}


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    for index in range(200):
        (tmp_path / f"f{index}.c").write_text(RISKY * 20)
    process = subprocess.Popen([sys.executable, "-m", "nogil_toolkit", "audit", "--format", "json", tmp_path],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.read(100)
    process.stdout.close()
    error = process.stderr.read().decode()
    # Output that cannot be written is exit 2 for every command, with one line and no traceback.
    assert process.wait(timeout=60) == 2
    assert len(error.splitlines()) <= 1 and "Traceback" not in error


def test_rules_listing_and_an_unparsable_setup_py(tmp_path: Path, capsys, monkeypatch) -> None:
    code, out, _ = audit(capsys, "--list-rules")
    assert code == 0 and out.startswith("borrowed-list-item (warning): PyList_GetItem, PyList_GET_ITEM\n")
    project(tmp_path, {"setup.py": "setup(\n", "a.c": RISKY})
    monkeypatch.chdir(tmp_path)
    document = audit_json(capsys)
    assert document["origin"] == "the project tree (setup.py cannot be parsed)"
    assert [f["path"] for f in document["findings"]] == ["a.c"]


def test_default_sources_from_meson_build_files(tmp_path: Path, capsys, monkeypatch) -> None:
    project(tmp_path, {
        "pyproject.toml": '[build-system]\nbuild-backend = "mesonpy"\nrequires = ["meson-python"]\n',
        "meson.build": "project('p', 'c')\n# subdir('commented')\nsubdir('src')\ninstall_subdir('tests')\n",
        "src/meson.build": "py.extension_module('_m', 'a.c', files('''b.pyx'''), install: true)\n"
                           "# 'unlisted.c' is only named in a comment\n",
        "src/a.c": RISKY, "src/b.pyx": "x = PyList_GetItem(a, 0)\n", "src/a.h": RISKY, "src/unlisted.c": RISKY,
        "commented/meson.build": "py.extension_module('_n', 'n.c')\n", "commented/n.c": RISKY,
        "tests/t.c": RISKY, "tools/x.c": RISKY})
    monkeypatch.chdir(tmp_path)
    document = audit_json(capsys)
    assert document["origin"] == "the build configuration (2 files named in meson.build files, 1 header beside them)"
    assert sorted(f["path"] for f in document["findings"]) == ["src/a.c", "src/a.h", "src/b.pyx"]


def test_default_sources_from_cmake_lists(tmp_path: Path, capsys, monkeypatch) -> None:
    project(tmp_path, {
        "pyproject.toml": '[build-system]\nbuild-backend = "scikit_build_core.build"\n',
        "CMakeLists.txt": "cmake_minimum_required(VERSION 3.15)\n# add_subdirectory(commented)\n"
                          "#[[ a bracket comment naming src/unlisted.c ]]\nadd_subdirectory(src)\n",
        "src/CMakeLists.txt": 'python_add_library(_m MODULE a.c "${CMAKE_CURRENT_SOURCE_DIR}/b.cpp" WITH_SOABI)\n',
        "src/a.c": RISKY, "src/b.cpp": RISKY, "src/a.h": RISKY, "src/unlisted.c": RISKY,
        "commented/CMakeLists.txt": "add_library(n n.c)\n", "commented/n.c": RISKY, "tools/x.c": RISKY})
    monkeypatch.chdir(tmp_path)
    document = audit_json(capsys)
    assert document["origin"] == "the build configuration (2 files named in CMakeLists.txt files, 1 header beside them)"
    assert sorted({f["path"] for f in document["findings"]}) == ["src/a.c", "src/a.h", "src/b.cpp"]
