"""How a run stops early: one error type carrying the run folder, the saved epochs and the exit code,
and the signal handling that turns SIGINT/SIGTERM into a stop between two steps."""

from __future__ import annotations

import signal
import threading

from digitnet.errors import DigitnetError


class RunStopped(DigitnetError):
    """Training ended before its last epoch. The CLI prints describe() and exits with exit_code."""

    exit_code = 1
    label = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.run_dir: str | None = None
        self.saved_epochs = 0

    def in_run(self, run_dir, saved_epochs: int) -> "RunStopped":
        """The same stop, now knowing which run folder holds how many finished epochs."""
        self.run_dir, self.saved_epochs = str(run_dir), saved_epochs
        return self

    def resume_hint(self) -> str:
        return ""

    def describe(self) -> str:
        """One line: what happened, what is kept, how to go on."""
        line = f"{self.label}: {self}"
        if self.run_dir is None:
            return line
        if self.saved_epochs:
            line += f"; epochs 1-{self.saved_epochs} are saved in {self.run_dir}{self.resume_hint()}"
        else:
            line += f"; no epoch had finished; {self.run_dir} holds only its config"
        return line


class TrainingInterrupted(RunStopped):
    """SIGINT or SIGTERM arrived; training stopped between two steps."""

    label = "interrupted"

    def __init__(self, signum: int, epoch: int, step: int):
        super().__init__(f"{signal.Signals(signum).name} during epoch {epoch} (after step {step})")
        self.signum = signum
        self.exit_code = 128 + signum

    def describe(self) -> str:
        line = super().describe()
        return line if self.run_dir is None else f"{line}; resume with: digitnet train --resume {self.run_dir}"


class TrainingDiverged(RunStopped):
    """The loss became NaN or infinite."""

    exit_code = 3


class PeerFailure(RunStopped):
    """In data-parallel training, another process failed, was killed or stopped answering."""

    exit_code = 4

    def resume_hint(self) -> str:
        return f"; resume with the same torchrun command and --resume {self.run_dir}"


class SaveFailed(RunStopped):
    """A file of the run folder could not be written (a full disk, a lost mount): training stops."""

    def resume_hint(self) -> str:
        return f"; once it is fixed, resume with: digitnet train --resume {self.run_dir}"


class StopSignals:
    """While active, SIGINT and SIGTERM only set a flag, which the loop checks after every step."""

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        return False
