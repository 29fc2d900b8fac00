"""``nogil-toolkit wheel select`` against pip's own choice, on real wheels and real interpreters.

Wheels come from PyPI (several ABIs of the same release), from a real build of an extension
that declares nothing, and from small pure wheels written with ``wheel.wheelfile`` to cover
pip's tie-breaks (version, build tag, pre-releases). pip is asked with ``--dry-run --report``
in a venv of each target, with no configuration, so both see exactly the same files.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib.resources import files
from pathlib import Path
from typing import Optional
from urllib.parse import unquote, urlparse

import jsonschema
import pytest
from wheel.wheelfile import WheelFile

from nogil_toolkit.__main__ import main
from nogil_toolkit.inspect import Verdict
from nogil_toolkit.wheel.reading import read_wheel
from support import build_wheel, clean_env, gil_python, import_strict, make_venv, run
from wheel_downloads import PINNED, download

pytestmark = pytest.mark.freethreaded

UNDECLARED_C = """\
/* Multi-phase init with a slot array and no Py_mod_gil slot: CPython re-enables the GIL. */
#include <Python.h>

static int exec_module(PyObject *module) { return PyModule_AddIntConstant(module, "answer", 42); }

static PyModuleDef_Slot slots[] = {{Py_mod_exec, exec_module}, {0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "undecl._speed", NULL, 0, NULL, slots};

PyMODINIT_FUNC
PyInit__speed(void)
{
    return PyModuleDef_Init(&def);
}
"""

UNDECLARED_PYPROJECT = """\
[build-system]
requires = ["setuptools>=74"]
build-backend = "setuptools.build_meta"

[project]
name = "undecl"
version = "1.0"

[tool.setuptools]
package-dir = { "" = "src" }
packages = ["undecl"]
ext-modules = [{ name = "undecl._speed", sources = ["src/undecl/_speed.c"] }]
"""

PYPI = ("markupsafe-cp313t", "markupsafe-cp313", "markupsafe-cp311", "bcrypt-abi3",  # a few hundred kB in all
        "six-1.16.0", "six-1.17.0", "packaging-25.0")


def pip_env() -> dict[str, str]:
    """No pip configuration at all: pip sees only the --find-links we pass, like the selector."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def select(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["wheel", "select", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def pure_wheel(folder: Path, name: str, version: str, tag: str = "py3-none-any", build: str = "") -> Path:
    """A minimal but complete wheel (METADATA, WHEEL, RECORD) that pip installs."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}{'-' + build if build else ''}-{tag}.whl"
    with WheelFile(path, "w") as wheel:
        wheel.writestr(f"{name}/__init__.py", f"VERSION = {version!r}\n")
        wheel.writestr(f"{name}-{version}.dist-info/METADATA",
                       f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        wheel.writestr(f"{name}-{version}.dist-info/WHEEL",
                       f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {str(tag.endswith('any')).lower()}\n"
                       f"Tag: {tag}\n" + (f"Build: {build}\n" if build else ""))
    return path


def pip_choice(python: Path, folders: list[Path], name: str) -> Optional[str]:
    """The file name pip would install for ``name`` from ``folders``, or None if it finds none."""
    links = [arg for folder in folders for arg in ("--find-links", str(folder))]
    # --ignore-installed: the session's venvs may hold some of these already (other tests).
    result = run([python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-index", "--no-deps",
                  "--quiet", "--report", "-", *links, name], env=pip_env(), check=False)
    if result.returncode != 0:
        assert "No matching distribution" in result.stderr, result.stderr
        return None
    (item,) = json.loads(result.stdout)["install"]
    return os.path.basename(unquote(urlparse(item["download_info"]["url"]).path))


@pytest.fixture(scope="session")
def pypi_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real PyPI wheels: markupsafe for three ABIs, an abi3 bcrypt, pure six (two versions) and packaging."""
    out = tmp_path_factory.mktemp("select-pypi")
    download(out, *PYPI)
    assert sorted(p.name for p in out.iterdir()) == sorted(PINNED[key][3] for key in PYPI)
    assert sum(f.stat().st_size for f in out.iterdir()) < 30_000_000
    return out


@pytest.fixture(scope="session")
def undeclared_wheel(ft_venv: Path, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cp313t wheel of ``undecl`` whose extension declares nothing (built without our plugin)."""
    project = tmp_path_factory.mktemp("undecl-project") / "undecl"
    (project / "src" / "undecl").mkdir(parents=True)
    (project / "pyproject.toml").write_text(UNDECLARED_PYPROJECT)
    (project / "src" / "undecl" / "__init__.py").write_text("")
    (project / "src" / "undecl" / "_speed.c").write_text(UNDECLARED_C)
    wheel = build_wheel(ft_venv, project, tmp_path_factory.mktemp("undecl-build"), wheelhouse)
    assert "cp313t" in wheel.name
    return wheel


@pytest.fixture(scope="session")
def local_wheels(undeclared_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels for pip's tie-breaks: the undeclared build and its pure twin; versions, build tags, pre-releases."""
    out = tmp_path_factory.mktemp("select-local")
    shutil.copy(undeclared_wheel, out)
    pure_wheel(out, "undecl", "1.0")
    pure_wheel(out, "tiny", "1.0")
    pure_wheel(out, "tiny", "1.0", build="1")
    pure_wheel(out, "tiny", "2.0rc1")
    pure_wheel(out, "tiny", "1.5", tag="cp313-cp313t-linux_x86_64")
    pure_wheel(out, "onlypre", "1.0b1")
    # Build tag against tag preference: pip ranks the better tag first, the build tag only breaks ties.
    pure_wheel(out, "buildtag", "1.0", build="7")
    pure_wheel(out, "buildtag", "1.0", tag="cp313-cp313t-linux_x86_64")
    return out


@pytest.fixture(scope="session")
def gil_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = gil_python(13)
    assert python is not None, "no GIL CPython 3.13 found (python3.13 on PATH or in pyenv)"
    return make_venv(python, tmp_path_factory.mktemp("gil-venv") / "venv")


@pytest.mark.parametrize("target", ["free-threaded", "gil"])
def test_chooses_what_pip_chooses(capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, target: str,
                                  pypi_wheels: Path, local_wheels: Path) -> None:
    python = request.getfixturevalue("ft_venv" if target == "free-threaded" else "gil_venv")
    code, out, err = select(capsys, "--format", "json", "--python", python, pypi_wheels, local_wheels)
    document = json.loads(out)
    chosen = {p["name"]: p["chosen"] and p["chosen"]["filename"] for p in document["projects"]}
    assert set(chosen) == {"markupsafe", "bcrypt", "six", "packaging", "undecl", "tiny", "onlypre", "buildtag"}
    for name, filename in chosen.items():
        assert filename == pip_choice(python, [pypi_wheels, local_wheels], name), name
    # The choices the comparison must have exercised, spelled out:
    if target == "free-threaded":
        assert "cp313t" in chosen["markupsafe"] and chosen["bcrypt"] is None and code == 1
        assert chosen["tiny"] == "tiny-1.5-cp313-cp313t-linux_x86_64.whl"  # highest version
        assert "cp313t" in chosen["undecl"]  # a better tag than the pure twin's
        assert chosen["buildtag"] == "buildtag-1.0-cp313-cp313t-linux_x86_64.whl"  # tag before build tag
        assert "bcrypt" in err
    else:
        assert "cp313-cp313-" in chosen["markupsafe"] and "abi3" in chosen["bcrypt"] and code == 0
        assert chosen["tiny"] == "tiny-1.0-1-py3-none-any.whl"  # build tag beats no build tag
        assert chosen["undecl"] == "undecl-1.0-py3-none-any.whl"
        assert chosen["buildtag"] == "buildtag-1.0-7-py3-none-any.whl"  # the t wheel is unsupported
    assert chosen["six"] == "six-1.17.0-py2.py3-none-any.whl"
    assert chosen["onlypre"] == "onlypre-1.0b1-py3-none-any.whl"  # no final release: pre-release taken


def test_reasons_name_what_the_target_lacks(capsys: pytest.CaptureFixture[str], ft_python: str,
                                            pypi_wheels: Path, local_wheels: Path) -> None:
    code, out, err = select(capsys, "--python", ft_python, pypi_wheels, local_wheels)
    assert code == 1
    assert len(out.splitlines()) == 7 and all(Path(line).is_file() for line in out.splitlines())
    assert "cp311 ABI not supported by CPython 3.13t" in err
    assert "cp313 ABI not supported by CPython 3.13t" in err
    assert "abi3 ABI not supported by CPython 3.13t" in err
    assert "version 1.16.0 is older than the chosen 1.17.0" in err
    assert "pre-release 2.0rc1" in err
    assert "error: no suitable wheel for 1 project: bcrypt" in err
    code, out, err = select(capsys, "--pre", "--python", ft_python, local_wheels)
    assert "tiny-2.0rc1-py3-none-any.whl" in out and code == 0


def test_require_declared_falls_back_to_the_pure_wheel(capsys: pytest.CaptureFixture[str], ft_python: str,
                                                       ft_venv: Path, pypi_wheels: Path, undeclared_wheel: Path,
                                                       tmp_path: Path) -> None:
    (module,) = read_wheel(undeclared_wheel).extension_modules
    assert module.module == "undecl._speed" and module.inspection.verdict is Verdict.UNDECLARED
    (markupsafe,) = pypi_wheels.glob("*cp313t*.whl")
    assert {m.module: m.inspection.verdict for m in read_wheel(markupsafe).extension_modules} == {
        "markupsafe._speedups": Verdict.NOT_USED}
    pure = pure_wheel(tmp_path, "undecl", "1.0")

    code, out, err = select(capsys, "--require-declared", "--python", ft_python, undeclared_wheel, pure, markupsafe)
    assert code == 0, err
    assert out.splitlines() == [str(markupsafe), str(pure)]
    assert f"dropped {undeclared_wheel.name}: 1 extension module not known to declare Py_MOD_GIL_NOT_USED" in err
    assert "undecl._speed (undecl/_speed.cpython-313t-x86_64-linux-gnu.so): undeclared" in err

    code, out, err = select(capsys, "--require-declared", "--python", ft_python, undeclared_wheel, markupsafe)
    assert code == 1 and out.splitlines() == [str(markupsafe)]
    assert "undecl._speed" in err and "error: no suitable wheel for 1 project: undecl" in err


def test_link_dir_installs_with_pip(capsys: pytest.CaptureFixture[str], ft_python: str, pypi_wheels: Path,
                                    local_wheels: Path, tmp_path: Path) -> None:
    links = tmp_path / "selected"
    args = ["--require-declared", "--python", ft_python, "--link-dir", links, pypi_wheels, local_wheels]
    code, out, err = select(capsys, *args)
    assert code == 1  # bcrypt has only an abi3 wheel
    assert sorted(p.name for p in links.iterdir()) == sorted(Path(line).name for line in out.splitlines())
    assert all(p.is_symlink() for p in links.iterdir())
    assert "undecl-1.0-py3-none-any.whl" in {p.name for p in links.iterdir()}
    assert select(capsys, *args)[0] == 1  # again: the same links are kept

    venv = make_venv(ft_python, tmp_path / "venv")
    run([venv, "-m", "pip", "install", "--no-index", "--find-links", links, "markupsafe", "undecl", "six", "tiny"],
        env=pip_env())
    import_strict(venv, "markupsafe._speedups")
    assert run([venv, "-c", "import tiny; print(tiny.VERSION)"]).stdout.strip() == "1.5"

    copies = tmp_path / "copies"
    assert select(capsys, "--copy", "--python", ft_python, "--link-dir", copies, local_wheels)[0] == 0
    assert {p.is_symlink() for p in copies.iterdir()} == {False}

    (links / "stray-1.0-py3-none-any.whl").write_bytes(b"")
    code, _, err = select(capsys, *args)
    assert code == 2 and "stray-1.0-py3-none-any.whl" in err and "use a new or empty directory" in err


def test_corrupt_wheel_is_reported_and_skipped(capsys: pytest.CaptureFixture[str], ft_python: str,
                                               pypi_wheels: Path, tmp_path: Path) -> None:
    (markupsafe,) = pypi_wheels.glob("*cp313t*.whl")
    truncated = tmp_path / markupsafe.name
    truncated.write_bytes(markupsafe.read_bytes()[: markupsafe.stat().st_size // 2])
    six = next(pypi_wheels.glob("six-1.17.0-*.whl"))
    code, out, err = select(capsys, "--require-declared", "--python", ft_python, truncated, six)
    assert code == 2
    assert out.splitlines() == [str(six)]
    assert f"error: {truncated}: not a valid zip archive" in err and "truncated" in err
    assert "Traceback" not in err
    # Not read without --require-declared: chosen by its name, as pip would.
    assert select(capsys, "--python", ft_python, truncated, six)[0] == 0


def test_json_matches_its_schema(capsys: pytest.CaptureFixture[str], ft_python: str, pypi_wheels: Path,
                                 local_wheels: Path) -> None:
    code, out, _ = select(capsys, "--format", "json", "--require-declared", "--python", ft_python,
                          pypi_wheels, local_wheels)
    document = json.loads(out)
    schema = json.loads(files("nogil_toolkit").joinpath("wheel_select.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    assert code == 1 and document["unsatisfied"] == ["bcrypt"]
    assert document["target"]["free_threaded"] is True and document["target"]["name"] == "CPython 3.13t"
    assert "cp313t" in document["target"]["abis"]
    projects = {p["name"]: p for p in document["projects"]}
    assert projects["undecl"]["chosen"]["filename"] == "undecl-1.0-py3-none-any.whl"
    (dropped,) = [r for r in projects["undecl"]["rejected"] if r["kind"] == "not-declared"]
    assert dropped["modules"][0]["module"] == "undecl._speed" and dropped["modules"][0]["verdict"] == "undeclared"
    kinds = {r["kind"] for p in document["projects"] for r in p["rejected"]}
    assert kinds == {"unsupported", "outranked", "pre-release", "not-declared"}


def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str], ft_python: str, tmp_path: Path) -> None:
    wheel = pure_wheel(tmp_path, "tiny", "1.0")
    assert select(capsys, "--python", ft_python, tmp_path / "missing")[0] == 2
    assert select(capsys, "--python", tmp_path / "no-python", wheel)[0] == 2
    assert select(capsys, "--copy", "--python", ft_python, wheel)[0] == 2
    not_a_wheel = tmp_path / "notes.whl"
    not_a_wheel.write_text("")
    code, _, err = select(capsys, "--python", ft_python, not_a_wheel)
    assert code == 2 and "not a wheel file name" in err
    code, out, err = select(capsys, "--python", ft_python, tmp_path)  # inside a folder: skipped, as pip does
    assert code == 0 and out.strip() == str(wheel) and "notes.whl: skipped" in err
    assert "Traceback" not in err


def test_help_has_groups_and_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["wheel", "select", "--help"])
    text = capsys.readouterr().out
    assert "selection:" in text and "output:" in text and "exit status:" in text
    assert "nogil-toolkit wheel select --python .venv/bin/python --require-declared" in text
