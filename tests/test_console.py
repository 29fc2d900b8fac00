"""``console.run_cli``: real signals sent to this process and real unwritable outputs, around a
command ``main`` written for each case. (The console scripts themselves are tested as
processes in ``tests/check_env/test_hostile_inputs.py``.)"""

from __future__ import annotations

import errno
import gc
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional, Sequence

import pytest

from nogil_toolkit.console import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, run_cli
from support import console_script


def wait_for_signal() -> None:
    """Python runs handlers between bytecodes: give it some."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.01)
    pytest.fail("the signal never arrived")


@pytest.mark.parametrize(("signum", "status", "line"), [(signal.SIGINT, EXIT_INTERRUPTED, "error: interrupted"),
                                                        (signal.SIGTERM, EXIT_TERMINATED, "error: terminated")])
def test_a_signal_ends_the_command_after_its_clean_up(capsys: pytest.CaptureFixture[str], signum: int,
                                                      status: int, line: str) -> None:
    cleaned: list[str] = []

    @run_cli
    def main(argv: Optional[Sequence[str]] = None) -> int:
        try:
            os.kill(os.getpid(), signum)
            wait_for_signal()
        finally:
            cleaned.append("yes")
        return 0

    before = signal.getsignal(signal.SIGTERM)
    assert main([]) == status
    assert cleaned == ["yes"]
    assert capsys.readouterr().err == line + "\n"
    assert signal.getsignal(signal.SIGTERM) is before


class SignalsInItsFinaliser:
    """Sends SIGTERM from ``__del__``: the handler's exception is raised inside the finaliser,
    where Python only prints it ("Exception ignored in")."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # bytecodes for the handler to run on, still inside __del__
            pass


def test_an_interruption_swallowed_in_a_finaliser_still_ends_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    @run_cli
    def main(argv: Optional[Sequence[str]] = None) -> int:
        SignalsInItsFinaliser()  # collected at once
        return 0

    assert main([]) == EXIT_TERMINATED
    assert capsys.readouterr().err == "error: terminated\n"


def test_an_ignored_sigint_stays_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    """A background job of a non-interactive shell starts with SIGINT ignored."""

    @run_cli
    def main(argv: Optional[Sequence[str]] = None) -> int:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        return 0

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert main([]) == 0
    finally:
        signal.signal(signal.SIGINT, previous)
    assert capsys.readouterr().err == ""


def test_output_to_a_full_disk(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    full = open("/dev/full", "w")  # noqa: SIM115 - its descriptor is replaced by /dev/null on failure
    monkeypatch.setattr("sys.stdout", full)

    @run_cli
    def main(argv: Optional[Sequence[str]] = None) -> int:
        print("a report")
        return 0

    assert main([]) == EXIT_USAGE
    assert capsys.readouterr().err == "error: cannot write the output (No space left on device)\n"
    full.close()  # the buffered report now goes to /dev/null: no error at exit


def test_other_files_errors_are_not_called_output_errors() -> None:
    @run_cli
    def main(argv: Optional[Sequence[str]] = None) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "/some/cache")

    with pytest.raises(OSError):
        main([])


# --- the console scripts started with a standard stream closed ------------------------------

def run_with_closed(stream: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``nogil-toolkit ARGS`` started with ``stream`` (``>&-`` or ``2>&-``) closed, as a shell does."""
    return subprocess.run(["sh", "-c", f'exec "$0" "$@" {stream}', console_script(), *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
                          env={**os.environ, "NO_COLOR": "1"})


def test_closed_stdout_is_an_unwritable_output() -> None:
    """Python gives a process started with fd 1 closed ``sys.stdout = None``: writing the report
    is what fails, with the same line and status as ``> /dev/full``."""
    result = run_with_closed(">&-", "--version")
    assert (result.returncode, result.stderr) == (EXIT_USAGE, "error: cannot write the output (standard output "
                                                              "is closed)\n")


def test_closed_stderr_keeps_the_json_report_valid(tmp_path: Path) -> None:
    """``print(file=None)`` writes to stdout: the error lines went into the JSON document."""
    missing = tmp_path / "missing-1.0-py3-none-any.whl"
    result = run_with_closed("2>&-", "wheel", "inspect", "--format", "json", str(missing))
    assert result.returncode == EXIT_USAGE
    assert [w["path"] for w in json.loads(result.stdout)["wheels"]] == [str(missing)]


def test_a_command_runs_the_cyclic_collector_rarely_and_restores_its_threshold() -> None:
    """A command keeping 20,000 objects alive (a scan's findings) starts no collection; the
    interpreter's own threshold is back once it ends, for an in-process caller."""
    before = gc.get_threshold()
    collections: list[str] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(phase)

    @run_cli
    def main(argv: Optional[Sequence[str]] = None) -> int:
        gc.collect()
        collections.clear()
        kept = [[index] for index in range(20_000)]
        return len(kept) - 20_000

    gc.callbacks.append(count)
    try:
        assert main([]) == 0
    finally:
        gc.callbacks.remove(count)
    assert collections == [] and gc.get_threshold() == before
