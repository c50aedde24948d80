"""The paper's optimizers (ACClip, GClip, CClip), Kunstner et al.'s (SignDescent, NormalizedSGD), a registry.

Imports torch only, so `from heavytail.optim import ACClip` works in anyone's training code.
"""

from heavytail.optim.acclip import ACClip
from heavytail.optim.clip import CClip, GClip
from heavytail.optim.normalized import NormalizedSGD, SignDescent
from heavytail.optim.registry import OPTIMIZER_NAMES, build_optimizer

__all__ = ["ACClip", "GClip", "CClip", "SignDescent", "NormalizedSGD", "build_optimizer", "OPTIMIZER_NAMES"]
