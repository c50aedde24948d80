"""A throwaway single-node SLURM (munged + slurmctld + slurmd) for the cluster tests, stopped by PID.

    python tests/slurm/single_node.py up --state /tmp/slurm-state    # prints the daemons' PIDs, stays up
    python tests/slurm/single_node.py down --state /tmp/slurm-state  # stops exactly those PIDs

Debian's slurm-wlm and munge are installed with apt when missing (about 8 s). The daemons run in the foreground
of processes this module starts, so teardown signals those PIDs and nothing else. The config lives in
/etc/slurm because the executor plugin's job step strips SLURM_* variables (a custom SLURM_CONF breaks jobs);
a config there that this module did not write is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
SLURM_DIR = Path("/etc/slurm")
MARKER = "# written by heavytail tests/slurm/single_node.py"
MUNGE_SOCKET_DIR = Path("/run/munge")
MUNGE_KEY = Path("/etc/munge/munge.key")
# MinJobAge >= 3 x the profile's slurm-init-seconds-before-status-checks, or the plugin ignores
# `slurm-status-command: squeue` and falls back to sacct, which fails without slurmdbd.
MIN_JOB_AGE_S = 300

SLURM_CONF = """{marker}
ClusterName=heavytail-ci
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/slurmd
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
# no cgroups in a container: track processes by parentage, bind nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
# per-core and per-MB allocation; without DefMemPerCPU a job with no memory request takes the whole node
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0
MinJobAge={min_job_age}
KillWait=30
ReturnToService=2
# the node may advertise more CPUs than the box has, so jobs of the CI DAG run side by side
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName={host} CPUs={cpus} RealMemory={mem_mb} Gres=gpu:{gpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""
# a GPU-less node schedules `--gpus` jobs against fake GPUs, one harmless device file each (slurmd counts the
# files); without any GRES sbatch rejects them at once
FAKE_GPU_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/urandom")
GRES_CONF = "{marker}\n{gres_lines}\n"


def unavailable_reason() -> str | None:
    """Why a single-node SLURM cannot run here (None when it can)."""
    if os.geteuid() != 0:
        return "needs root (starts munged, slurmctld and slurmd, writes /etc/slurm/slurm.conf)"
    if not all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "munged")) and not shutil.which("apt-get"):
        return "slurm-wlm and munge are not installed and there is no apt-get to install them"
    conf = SLURM_DIR / "slurm.conf"
    if conf.exists() and MARKER not in conf.read_text():
        return f"{conf} belongs to a real SLURM installation; the test never overwrites it"
    for name in ("slurmctld", "slurmd"):
        if subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0:
            return f"a {name} not started by this test is already running"
    return None


def ensure_packages() -> None:
    """apt-get install slurm-wlm and munge when missing (installing them starts no daemon)."""
    if all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "munged", "sbatch")):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], check=True, env=env,
                   stdout=subprocess.DEVNULL)


@dataclass
class SingleNodeSlurm:
    """munged + slurmctld + slurmd on this host, one partition `debug`, `gpus` fake GPUs."""

    state: Path
    cpus: int = max(os.cpu_count() or 1, 4)
    mem_mb: int = 16000
    gpus: int = 2
    host: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    pids: dict[str, int] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, timeout: float = 60) -> None:
        ensure_packages()
        self.state.mkdir(parents=True, exist_ok=True)
        for sub in ("ctld", "slurmd"):
            (self.state / sub).mkdir(exist_ok=True)
        self._write_configs()
        try:
            self._start_munged()
            self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
            self._wait_for(["scontrol", "ping"], "UP", timeout)
            self._spawn("slurmd", ["slurmd", "-D"])
            self._wait_for(["sinfo", "-h", "-o", "%t"], "idle", timeout)
        except BaseException:
            self.stop()
            raise
        self._save_pids()

    def _write_configs(self) -> None:
        SLURM_DIR.mkdir(parents=True, exist_ok=True)
        values = dict(marker=MARKER, host=self.host, state=self.state, cpus=self.cpus, mem_mb=self.mem_mb,
                      gpus=self.gpus, min_job_age=MIN_JOB_AGE_S,
                      gres_lines="\n".join(f"Name=gpu File={dev}" for dev in FAKE_GPU_FILES[: self.gpus]))
        for name, template in (("slurm.conf", SLURM_CONF), ("gres.conf", GRES_CONF)):
            path = SLURM_DIR / name
            if path.exists() and MARKER not in path.read_text():
                raise RuntimeError(f"{path} belongs to a real SLURM installation; not overwriting it")
            path.write_text(template.format(**values))
            self.written.append(path)

    def _start_munged(self) -> None:
        # munged refuses a socket folder others cannot enter and a key others can read
        MUNGE_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_SOCKET_DIR, "munge", "munge")
        MUNGE_SOCKET_DIR.chmod(0o755)
        if not MUNGE_KEY.exists():
            subprocess.run(["mungekey", "--create", "--keyfile", str(MUNGE_KEY)], check=True)
        shutil.chown(MUNGE_KEY, "munge", "munge")
        MUNGE_KEY.chmod(0o400)
        self._spawn("munged", ["munged", "--foreground"], user="munge")
        self._wait_for(["munge", "-n"], "MUNGE:", 20)

    def _spawn(self, name: str, cmd: list[str], user: str | None = None) -> None:
        log = open(self.state / f"{name}.stdout", "ab")  # noqa: SIM115 - kept open for the daemon's lifetime
        as_user = dict(user=user, group=user, extra_groups=[]) if user else {}
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **as_user)
        self._procs[name] = proc
        self.pids[name] = proc.pid

    def _wait_for(self, cmd: list[str], expected: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        out = ""
        while time.monotonic() < deadline:
            dead = [name for name, proc in self._procs.items() if proc.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead[0]} exited at start-up; see {self.state}/{dead[0]}.stdout and *.log")
            result = subprocess.run(cmd, capture_output=True, text=True)
            out = result.stdout + result.stderr
            if result.returncode == 0 and expected in out:
                return
            time.sleep(0.3)
        raise TimeoutError(f"`{' '.join(cmd)}` did not show {expected!r} within {timeout:.0f} s: {out.strip()}")

    def _save_pids(self) -> None:
        (self.state / "pids.json").write_text(json.dumps(self.pids))

    def stop(self) -> None:
        """SIGTERM each daemon this object started (by PID, newest first), then SIGKILL stragglers."""
        for name in reversed(list(self.pids)):
            stop_pid(self.pids[name], self._procs.get(name))
        self.pids.clear()
        self._procs.clear()
        (self.state / "pids.json").unlink(missing_ok=True)

    def remove_configs(self) -> None:
        for path in self.written:
            if path.exists() and MARKER in path.read_text():
                path.unlink()
        self.written.clear()


def stop_pid(pid: int, proc: subprocess.Popen | None = None, grace: float = 10) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return
        elif not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if proc is not None:
        proc.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description="start or stop a single-node SLURM for the cluster tests")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--state", type=Path, required=True, help="folder for state, logs and pids.json")
    args = parser.parse_args()
    if args.action == "up":
        reason = unavailable_reason()
        if reason:
            raise SystemExit(f"single-node SLURM: {reason}")
        cluster = SingleNodeSlurm(args.state)
        cluster.start()
        print(json.dumps(cluster.pids))
    else:
        pids = json.loads((args.state / "pids.json").read_text())
        for name in reversed(list(pids)):
            stop_pid(pids[name])
        (args.state / "pids.json").unlink()


if __name__ == "__main__":
    main()
