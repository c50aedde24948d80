"""Retry only what a retry can fix: the attempts of a training job, and whether the next one should run.

A scheduler's retries (the SLURM profile's `retries: 5`) resubmit every failed job. A training job that
checkpointed on SIGTERM (exit 75, the time limit's warning) or that was killed (preemption, the time limit, the
OOM killer) continues from its checkpoint when resubmitted; one that failed on its own (bad input, a bug: any
other exit code) fails the same way on every 8-GPU allocation it is given. A noise measurement (1 GPU, no
checkpoint) is guarded alike: a kill or time-out starts it over, its own failure is not retried. A rule's shell runs

    python -m heavytail.train.retry check --attempt N --record FILE && \
        HEAVYTAIL_REQUEUE_MARKER=FILE.requeue <training command> || code=$?
    python -m heavytail.train.retry record --attempt N --record FILE --exit $code   # exits with the code

so that attempt N > 1 stops at once, with one line, when attempt N - 1 failed on its own. Snakemake deletes a
job's log before each attempt, so `record --log LOG` keeps the log so far beside the record (FILE.log) and
`check --log LOG` writes it back first: the job's log holds every attempt, one segment each. The check costs a
Python start without torch; the training command stays the shell's own child, so the signals of the job step
reach it directly. torchrun reports a worker's exit 75 as 1: the marker the engine writes tells them apart.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from heavytail.train.signals import EXIT_REQUEUE

# exit codes after which the job resumes from its checkpoint: requeue, and killed by a signal (as the shell
# reports it: 128 + signal)
RESUMABLE = {EXIT_REQUEUE, 128 + signal.SIGKILL, 128 + signal.SIGTERM, 128 + signal.SIGINT}


def attempts(record: Path) -> list[dict]:
    if not record.is_file():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


def log_history(record: Path) -> Path:
    """The job's log up to the end of the last recorded attempt (Snakemake's own copy is gone by the next)."""
    return record.with_name(record.stem + ".log")


def check(attempt: int, record: Path) -> str | None:
    """Why attempt `attempt` must not run (None: it may). Attempt 1 starts a new run of the job."""
    if attempt == 1:
        record.unlink(missing_ok=True)  # earlier runs of the job do not count
        log_history(record).unlink(missing_ok=True)
        return None
    earlier = attempts(record)
    if earlier and earlier[-1]["exit"] not in RESUMABLE:
        return (f"attempt {attempt}: attempt {earlier[-1]['attempt']} failed with exit {earlier[-1]['exit']}, which "
                "a retry does not fix (see the log above); not retrying")
    return None


def requeue_marker(record: Path) -> Path:
    """The file a training process leaves when it checkpointed to be requeued (HEAVYTAIL_REQUEUE_MARKER)."""
    return record.with_name(record.name + ".requeue")


def record_exit(attempt: int, record: Path, code: int) -> int:
    """Record the attempt's exit code and return it; a requeue reported by torchrun as 1 counts as 75."""
    marker = requeue_marker(record)
    if code != 0 and marker.is_file():
        code = EXIT_REQUEUE
    marker.unlink(missing_ok=True)
    record.parent.mkdir(parents=True, exist_ok=True)
    with open(record, "a") as fh:
        fh.write(json.dumps({"attempt": attempt, "exit": code}) + "\n")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["check", "record"])
    parser.add_argument("--attempt", type=int, required=True, help="Snakemake's attempt number (1 = first)")
    parser.add_argument("--record", type=Path, required=True, help="file of the attempts' exit codes (JSONL)")
    parser.add_argument("--exit", type=int, default=0, help="record: the attempt's exit code")
    parser.add_argument("--log", type=Path, help="the job's log: kept after `record`, restored first by `check`")
    args = parser.parse_args(argv)
    history = log_history(args.record)
    if args.action == "record":
        code = record_exit(args.attempt, args.record, args.exit)
        if args.log and args.log.is_file():
            history.write_bytes(args.log.read_bytes())
        return code
    refusal = check(args.attempt, args.record)
    if args.log and history.is_file():  # stdout is the log: the earlier attempts come first
        sys.stdout.write(history.read_text(errors="replace"))
    if refusal:
        sys.stderr.write(f"heavytail: {refusal}\n")
        return 1
    print(f"attempt {args.attempt}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
