"""Where a run computes: its device and its precision. Every CUDA-only choice of training and measuring is here.

A job that the profile gave GPUs (`--gpus N` on the command line, from the rule's `gpu` resource) must see
them: when torch sees no GPU (a driver older than the torch build needs, a node without GPUs, a broken
CUDA_VISIBLE_DEVICES) it stops with one line instead of quietly training on the CPU for days.
The pinned torch 2.14.1 wheels (`+cu130`) are built for CUDA 13.0: they need an NVIDIA driver >= 580 and a GPU
of compute capability >= 7.5 (sm_75 to sm_120, Turing and newer; see `unsupported_gpu`).
"""

from __future__ import annotations

import contextlib

import torch

from heavytail.errors import ConfigError

# the oldest Linux driver of each CUDA major version (NVIDIA's CUDA toolkit release notes, table 3)
DRIVER_FLOOR = {"11": "450.80", "12": "525.60", "13": "580.65"}


def driver_floor(cuda_version: str | None) -> str:
    """`>= 580.65 for CUDA 13.0`: what the torch build's CUDA needs of the driver (a CPU build: no driver)."""
    if not cuda_version:
        return "none: this torch build has no CUDA (install a CUDA build of the pinned torch)"
    floor = DRIVER_FLOOR.get(cuda_version.split(".")[0])
    return f">= {floor} for CUDA {cuda_version}" if floor else f"the one CUDA {cuda_version} needs"


def resolve_device(name: str = "auto", gpus: int | None = None) -> torch.device:
    """The device of a job: `auto` is CUDA when the job was given GPUs (or, run by hand, when one is there)."""
    if name != "auto":
        return torch.device(name)
    if gpus is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if gpus == 0:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"the job was given {gpus} GPU(s) but torch {torch.__version__} sees none "
                          f"(CUDA build {torch.version.cuda}): check the NVIDIA driver "
                          f"({driver_floor(torch.version.cuda)}), CUDA_VISIBLE_DEVICES and the node's GPUs, or run "
                          "on the CPU with --gpus 0")
    problem = unsupported_gpu(torch.cuda.get_device_name(), torch.cuda.get_device_capability(),
                              torch.cuda.get_arch_list())
    if problem:
        raise ConfigError(problem)
    return torch.device("cuda")


def unsupported_gpu(name: str, capability: tuple[int, int], arch_list: list[str]) -> str | None:
    """Why this torch build cannot run on the GPU (None when it can): without a kernel for its architecture,
    the first CUDA op of a job fails hours into the queue with "no kernel image is available".

    A kernel built for sm_XY runs on every GPU of major X and minor >= Y; PTX (compute_XY) is compiled for any
    newer GPU by the driver."""
    major, minor = capability
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        digits = "".join(c for c in number if c.isdigit())  # sm_90a: 9.0 with extra features
        if not digits:
            continue
        built = (int(digits[:-1] or 0), int(digits[-1]))
        if (kind == "sm" and built[0] == major and built[1] <= minor) or (kind == "compute" and built <= capability):
            return None
    return (f"GPU {name} (compute capability {major}.{minor}) has no kernels in torch {torch.__version__}, "
            f"built for {' '.join(arch_list)}: run on newer GPUs (e.g. HEAVYTAIL_SLURM_CONSTRAINT, see README)")


def mixed_precision(device: torch.device, precision: str) -> str:
    """The autocast dtype a run uses: bf16 on CUDA when the GPU has it, else fp16 (with loss scaling); fp32 on
    CPU unless bf16 is asked for."""
    if precision == "fp32":
        return "fp32"
    if device.type == "cuda":
        if precision == "fp16" or (precision == "auto" and not torch.cuda.is_bf16_supported()):
            return "fp16"
        return "bf16"
    return "bf16" if precision == "bf16" else "fp32"


def autocast_context(device: torch.device, precision: str):
    """Autocast of `mixed_precision(device, precision)`: bf16 or fp16 on CUDA, bf16 on CPU when asked for."""
    dtype = mixed_precision(device, precision)
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if dtype == "bf16" else torch.float16)


def grad_scaler(device: torch.device, precision: str):
    """fp16 needs loss scaling (its range underflows small gradients); bf16 and fp32 do not: None."""
    if mixed_precision(device, precision) == "fp16":
        return torch.amp.GradScaler(device.type)
    return None

