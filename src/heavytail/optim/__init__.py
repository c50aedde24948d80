"""The paper's optimizers as torch optimizers (ACClip, GClip, CClip) and a registry by config name.

Imports torch only, so `from heavytail.optim import ACClip` works in anyone's training code.
"""

from heavytail.optim.acclip import ACClip
from heavytail.optim.clip import CClip, GClip
from heavytail.optim.registry import OPTIMIZER_NAMES, build_optimizer

__all__ = ["ACClip", "GClip", "CClip", "build_optimizer", "OPTIMIZER_NAMES"]
