"""The plotting module: one function per paper figure, each drawing from aggregated data (matplotlib, agg).

`heavytail.report.figures.fig3(...)` resolves lazily to the submodule of its experiment family, so importing
this package costs nothing and the families stay independent.
"""

from __future__ import annotations

import importlib

FIGURE_MODULES = {
    "fig1a": "pretrain",
    "fig3": "pretrain",
    "table2": "pretrain",
    "fig1b": "vision",
    "fig8": "vision",
    "fig2": "noise",
    "fig4": "noise",
    "fig5": "noise",
    "fig6": "noise",
    "fig7": "noise",
    "table1": "theory",
    "table3": "squad",
    "batch_size_sweep": "explanations",
    "class_imbalance": "explanations",
}


def __getattr__(name: str):
    if name in FIGURE_MODULES:
        module = importlib.import_module(f"{__name__}.{FIGURE_MODULES[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
