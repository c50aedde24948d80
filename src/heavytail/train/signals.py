"""Stop requests from a scheduler: SIGTERM/SIGUSR1 set a flag, the loop checkpoints and exits EXIT_REQUEUE."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

# EX_TEMPFAIL from sysexits.h: "try again later". A scheduler (SLURM profile, Snakemake retries) requeues it.
EXIT_REQUEUE = 75
# torchrun reports any worker's non-zero exit as 1: a training rule names a file here for the engine to write
# when it stops to be requeued, so that the retry guard (heavytail.train.retry) can tell a requeue from a failure
REQUEUE_MARKER = "HEAVYTAIL_REQUEUE_MARKER"


def mark_requeue(step: int) -> None:
    """Leave the requeue marker the training rule asked for (none when the variable is unset)."""
    marker = os.environ.get(REQUEUE_MARKER)
    if marker:
        Path(marker).parent.mkdir(parents=True, exist_ok=True)
        Path(marker).write_text(json.dumps({"step": step, "exit": EXIT_REQUEUE}) + "\n")


class StopRequest:
    """SIGTERM/SIGUSR1 set `requested`; the loop checks it after each step."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not the main thread: no handlers, the loop still runs
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Requeue(SystemExit):
    """Raised after the checkpoint is written on a stop request; its exit code is EXIT_REQUEUE."""

    def __init__(self):
        super().__init__(EXIT_REQUEUE)
