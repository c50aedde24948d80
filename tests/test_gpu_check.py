"""The GPU check script runs: at toy size on the CPU, its sections give their numbers (the GPU run is by hand)."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import REPO, VENV_BIN


def test_gpu_check_script_runs_its_sections_at_toy_size(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(REPO / "workflow" / "scripts" / "gpu_check.sh"), "--device", "cpu",
                             "--smoke"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sections = json.loads((tmp_path / "gpu_check.json").read_text())["sections"]
    assert sections["versions"]["torch"] and sections["bert_mfu"]["toy"]["step_s"] > 0
    assert sections["squad"]["prediction_agreement"] == 1.0  # the same model on the same device
    fast = sections["optimizers"]["ratios"]["acclip_fused_vs_adamw_fused"]  # the GPU run's own call
    assert fast["rounds"] == 3 and fast["median"] > 0
    # the engine under torchrun, stopped by SIGTERM, requeued and resumed to the uninterrupted run's losses
    resumed = sections["resume"]
    assert resumed["requeue_marked"] and resumed["resumed_from"].startswith("resuming at step")
    assert resumed["rows_equal"] and resumed["rows"] == resumed["rows_resumed"] > 0
