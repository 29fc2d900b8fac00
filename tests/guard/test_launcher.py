"""``nogil-toolkit run`` and ``nogil-toolkit guard install|uninstall`` on the free-threaded
interpreter: what the command sees, what its children inherit, exit statuses and signals,
and an environment hook that installs idempotently and uninstalls without a trace."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
from guard_support import Modules

from support import clean_env, make_venv, unprivileged

pytestmark = pytest.mark.freethreaded


def toolkit(*args: str | os.PathLike[str], cache: Path, modules: Optional[Modules] = None, cwd: Optional[Path] = None,
            extra: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    env = clean_env(NOGIL_TOOLKIT_CACHE=str(cache), **(extra or {}))
    env.pop("NOGIL_MODE", None)
    if modules is not None:
        env["PYTHONPATH"] = str(modules.folder)
    return subprocess.run([sys.executable, "-m", "nogil_toolkit", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)


def test_run_passes_the_exit_status_through_and_children_inherit_the_guard(
        ft_python: str, guard_modules: Modules, cache: Path, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text("""
import subprocess, sys
import declared
child = subprocess.run([sys.executable, "-c", "import legacy_a"], capture_output=True, text=True)
print(child.returncode, "GilRequiredImportError: nogil mode refuses to import legacy_a" in child.stderr,
      sys._is_gil_enabled())
sys.exit(7)
""")
    result = toolkit("run", "--", ft_python, script, cache=cache, modules=guard_modules, cwd=tmp_path)
    assert result.returncode == 7, result.stderr
    assert result.stdout.split() == ["1", "True", "False"]


def test_run_guards_python_m_and_console_scripts(ft_python: str, guard_modules: Modules, cache: Path,
                                                 tmp_path: Path) -> None:
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("import sys, declared\nimport legacy_b\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    console = bin_dir / "app-cli"  # what pip writes for a console script: a shebang to the interpreter
    console.write_text(f"#!{ft_python}\nimport sys\nfrom app.__main__ import *\n")
    console.chmod(0o755)
    as_module = toolkit("run", "--", ft_python, "-m", "app", cache=cache, modules=guard_modules, cwd=tmp_path)
    env_path = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    as_script = toolkit("run", "--", "app-cli", cache=cache, cwd=tmp_path,
                        extra={**env_path, "PYTHONPATH": f"{guard_modules.folder}{os.pathsep}{tmp_path}"})
    for result in (as_module, as_script):
        assert result.returncode == 1
        assert "GilRequiredImportError: nogil mode refuses to import legacy_b" in result.stderr


def test_run_execs_the_command_so_signals_and_pid_are_its_own(ft_python: str, cache: Path) -> None:
    env = clean_env(NOGIL_TOOLKIT_CACHE=str(cache))
    process = subprocess.Popen([sys.executable, "-m", "nogil_toolkit", "run", "--", ft_python, "-c",
                                "import os, signal; print(os.getpid(), flush=True); os.kill(os.getpid(), signal.SIGTERM)"],
                               env=env, stdout=subprocess.PIPE, text=True)
    out, _ = process.communicate(timeout=120)
    assert int(out.split()[0]) == process.pid
    assert process.returncode == -signal.SIGTERM


@pytest.mark.parametrize(("mode", "gil", "warned"), [("unsafe-nogil", "False", True), ("gil", "True", False)])
def test_run_sets_what_cpython_needs_for_the_mode(ft_python: str, guard_modules: Modules, cache: Path, mode: str,
                                                  gil: str, warned: bool) -> None:
    result = toolkit("run", "--mode", mode, "--no-project", "--", ft_python, "-c",
                     "import legacy_a, sys; print(sys._is_gil_enabled())", cache=cache, modules=guard_modules)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == gil
    assert ("UndeclaredModuleWarning: legacy_a has not declared" in result.stderr) is warned
    assert "nogil-toolkit guard:" not in result.stderr  # no complaint about the combination


def test_run_reads_mode_and_allowlist_from_the_project(ft_python: str, guard_modules: Modules, cache: Path,
                                                       tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.nogil.check]\nmode = "unsafe-nogil"\nallow = { "legacy_a" = "audited" }\n')
    result = toolkit("run", "--allow", "legacy_b=vendored", "--", ft_python, "-c",
                     "import legacy_a, legacy_b, legacy_c, sys; print(sys._is_gil_enabled())",
                     cache=cache, modules=guard_modules, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert [line.split(": ")[2].split()[0] for line in result.stderr.splitlines()
            if "UndeclaredModuleWarning" in line] == ["legacy_c"]


@pytest.mark.parametrize(("args", "pyproject", "status", "message"), [
    ((), None, 2, "error: no command to run"),
    (("--", "no-such-command-here"), None, 127, "error: command not found: no-such-command-here"),
    (("--allow", "not a module", "--", "true"), None, 2, "error: --allow entry 'not a module': expected a dotted"),
    (("--", "true"), "[tool.nogil.check]\nmode = 'fast'\n", 2, "error: invalid pyproject.toml:"),
])
def test_run_usage_errors_are_one_line_with_a_documented_status(cache: Path, tmp_path: Path, args: tuple[str, ...],
                                                                pyproject: Optional[str], status: int,
                                                                message: str) -> None:
    if pyproject:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    result = toolkit("run", *args, cache=cache, cwd=tmp_path)
    assert result.returncode == status
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message), result.stderr


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its content."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*")) if not p.is_symlink()}


def test_guard_install_is_idempotent_works_and_uninstall_leaves_no_trace(ft_python: str, guard_modules: Modules,
                                                                         cache: Path, tmp_path: Path) -> None:
    venv = make_venv(ft_python, tmp_path / "venv")
    before = _tree(tmp_path / "venv")

    first = toolkit("guard", "install", "--python", venv, cache=cache)
    assert first.returncode == 0 and first.stderr.startswith("installed the NOGIL_MODE hook in "), first.stderr
    installed = _tree(tmp_path / "venv")
    assert len(set(installed) - set(before)) == 2
    again = toolkit("guard", "install", "--python", venv, cache=cache)
    assert again.returncode == 0 and "already installed" in again.stderr
    assert _tree(tmp_path / "venv") == installed

    env = clean_env(NOGIL_TOOLKIT_CACHE=str(cache), PYTHONPATH=str(guard_modules.folder))
    quiet = subprocess.run([venv, "-c", "import sys, legacy_a; print(sorted(m for m in sys.modules if 'nogil' in m))"],
                           env=env, capture_output=True, text=True, timeout=120, check=False)
    assert quiet.stdout.strip() == "['_nogil_toolkit_guard']", quiet.stderr  # NOGIL_MODE unset: nothing more
    guarded = subprocess.run([venv, "-c", "import declared, legacy_a"], env={**env, "NOGIL_MODE": "nogil"},
                             capture_output=True, text=True, timeout=120, check=False)
    assert guarded.returncode == 1
    assert "GilRequiredImportError: nogil mode refuses to import legacy_a" in guarded.stderr

    removed = toolkit("guard", "uninstall", "--python", venv, cache=cache)
    assert removed.returncode == 0 and removed.stderr.startswith("removed the NOGIL_MODE hook from ")
    assert _tree(tmp_path / "venv") == before
    twice = toolkit("guard", "uninstall", "--python", venv, cache=cache)
    assert twice.returncode == 0 and "is not installed" in twice.stderr


def test_guard_install_where_the_user_cannot_write_fails_in_one_line(ft_python: str, cache: Path,
                                                                      unprivileged_dir: Path) -> None:
    """An unprivileged user asking for the hook in an environment someone else owns (here:
    root's, or one whose site-packages is read-only): one line, exit 1, nothing written."""
    venv = make_venv(ft_python, unprivileged_dir / "venv")
    if os.geteuid() != 0:
        for site in (unprivileged_dir / "venv" / "lib").glob("python3*/site-packages"):
            site.chmod(0o555)
    before = _tree(unprivileged_dir / "venv")
    env = clean_env(NOGIL_TOOLKIT_CACHE=str(cache))
    result = subprocess.run(unprivileged([sys.executable, "-m", "nogil_toolkit", "guard", "install", "--python", venv]),
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: cannot install the hook: Permission denied (") and \
        result.stderr.count("\n") == 1, result.stderr
    assert "site-packages" in result.stderr
    assert _tree(unprivileged_dir / "venv") == before


def test_guard_install_names_an_unknown_interpreter(cache: Path, tmp_path: Path) -> None:
    result = toolkit("guard", "install", "--python", tmp_path / "nope", cache=cache)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no interpreter at ") and result.stderr.count("\n") == 1


def test_run_still_runs_the_environments_own_sitecustomize(ft_python: str, cache: Path, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("MARK = 'theirs'\n")
    result = toolkit("run", "--", ft_python, "-c",
                     "import sys, sitecustomize; print(sitecustomize.MARK, sys.modules['nogil_toolkit.guard'].active_mode(),"
                     " any(p.endswith('run') or '/run/' in p for p in sys.path))",
                     cache=cache, extra={"PYTHONPATH": str(theirs)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["theirs", "nogil", "False"]
