"""heavytail.device: a job given GPUs that sees none stops in one line; precision per device; the driver floor."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import REPO

from heavytail import device
from heavytail.errors import ConfigError
from heavytail.train.distributed import join_job


@pytest.fixture
def no_gpu(monkeypatch):
    """A node whose driver is too old for the torch build: torch sees no GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_a_job_given_gpus_that_sees_none_stops_instead_of_running_on_the_cpu(no_gpu):
    with pytest.raises(ConfigError, match=r"given 1 GPU\(s\) but torch .* sees none") as caught:
        device.resolve_device("auto", gpus=1)
    assert "\n" not in str(caught.value) and "--gpus 0" in str(caught.value)
    assert device.driver_floor(torch.version.cuda) in str(caught.value)


def test_the_entry_points_report_it_in_one_line_with_exit_2(no_gpu, capsys):
    with pytest.raises(SystemExit) as stopped:
        join_job("auto", 2)
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("heavytail: the job was given 2 GPU(s)")


def test_no_gpus_given_or_run_by_hand_computes_on_what_is_there(no_gpu):
    assert device.resolve_device("auto", gpus=0).type == "cpu"
    assert device.resolve_device("auto", gpus=None).type == "cpu"
    assert device.resolve_device("cpu", gpus=None).type == "cpu"


def test_gpus_without_bf16_train_in_fp16_with_loss_scaling(monkeypatch):
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert device.mixed_precision(cuda, "auto") == "fp16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert device.mixed_precision(cuda, "auto") == "bf16"
    assert device.mixed_precision(cuda, "fp16") == "fp16" and device.mixed_precision(cuda, "fp32") == "fp32"
    assert device.mixed_precision(cpu, "auto") == "fp32" and device.mixed_precision(cpu, "bf16") == "bf16"
    assert device.grad_scaler(cpu, "auto") is None and device.grad_scaler(cpu, "bf16") is None


def test_the_documented_driver_floor_is_the_pinned_builds():
    """README and the error both state what the pinned torch's CUDA needs (it is cu130: driver >= 580, not 525)."""
    if torch.version.cuda is None:
        pytest.skip("a CPU-only torch build: no CUDA driver floor to check")
    floor = device.DRIVER_FLOOR[torch.version.cuda.split(".")[0]]
    readme = re.sub(r"\s+", " ", (REPO / "README.md").read_text())
    assert f"NVIDIA driver ≥ {floor}" in readme and f"built for CUDA {torch.version.cuda}" in readme
    assert f"NVIDIA driver >= {floor.split('.')[0]}" in device.__doc__


BUILT = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]  # the pinned cu130 wheel's list


@pytest.mark.parametrize("capability, runs", [((7, 5), True), ((8, 9), True), ((12, 1), True), ((6, 0), False),
                                              ((7, 0), False)])
def test_a_gpu_runs_only_where_the_build_has_its_kernels(capability, runs):
    assert (device.unsupported_gpu("GPU", capability, BUILT) is None) == runs
    assert device.unsupported_gpu("GPU", (9, 0), ["sm_80", "compute_80"]) is None  # PTX: the driver compiles it
    assert device.unsupported_gpu("GPU", (9, 0), ["sm_90a"]) is None


def test_a_job_on_an_older_gpu_stops_in_one_line_before_it_trains(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla P100-PCIE-16GB")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (6, 0))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: BUILT)
    with pytest.raises(ConfigError, match=r"Tesla P100-PCIE-16GB \(compute capability 6\.0\) has no kernels") as caught:
        device.resolve_device("auto", gpus=1)
    assert "\n" not in str(caught.value) and "HEAVYTAIL_SLURM_CONSTRAINT" in str(caught.value)
