"""``console.run_cli``: real signals sent to this process and real unwritable outputs, around a
command ``main`` written for each case. (The console scripts themselves are tested as
processes in ``tests/check_env/test_hostile_inputs.py``.)"""

from __future__ import annotations

import errno
import os
import signal
import time
from typing import Optional, Sequence

import pytest

from nogil_toolkit.console import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, run_cli


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
