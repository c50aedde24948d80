"""Every documented public name imports as what its docs say, in a fresh process, before and after its submodules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
FUNCTION, CLASS, CONSTANT = "function", "class", "constant"
# what each package's docstring documents its exports as
DOCUMENTED = {
    "heavytail.noise": {
        **dict.fromkeys(["measure_noise", "save_noise_result", "summarise", "sample_noise_norms", "gradient_mode",
                         "variance_curve", "relative_range", "max_relative_jump", "settles", "sample_coordinates",
                         "coordinate_tail_indices", "tail_index", "tail_index_interval", "tail_index_of_norms",
                         "tail_index_of_block_sums", "tail_index_per_coordinate", "recommend_sample_count",
                         "classify_parameters", "classify_parameter", "gaussian_reference_norms",
                         "stable_reference_norms", "symmetric_stable", "normalise_by_median",
                         "gaussian_block_sum_reference", "effective_dimension", "peak_extra_bytes", "parameter_bytes"], FUNCTION),
        **dict.fromkeys(["NoiseResult", "NoiseNorms", "StreamingVariance", "CoordinateSample",
                         "TailIndexEstimate"], CLASS),
        **dict.fromkeys(["MODES", "GROUPS", "SETTLED_RELATIVE_RANGE"], CONSTANT),
    },
    "heavytail.optim": {"ACClip": CLASS, "GClip": CLASS, "CClip": CLASS, "SignDescent": CLASS, "NormalizedSGD": CLASS,
                        "build_optimizer": FUNCTION,
                        "OPTIMIZER_NAMES": CONSTANT},
    # no __all__: its docstring documents heavytail.report.figures.<figure>(...) for every FIGURE_MODULES key
    "heavytail.report.figures": dict.fromkeys(["fig1a", "fig1b", "fig2", "fig3", "fig4", "fig5", "fig6", "fig7",
                                               "fig8", "table1", "table2", "table3", "batch_size_sweep",
                                               "class_imbalance"], FUNCTION),
}

PROBE = r'''
import importlib, inspect, json, pkgutil, sys

def kind(obj):
    if inspect.ismodule(obj):
        return "module"
    return "class" if inspect.isclass(obj) else "function" if inspect.isfunction(obj) else "constant"

def kinds(module, names):
    out = {}
    for name in names:
        scope = {}
        exec(f"from {module} import {name} as obj", scope)  # the user's spelling, not getattr
        out[name] = kind(scope["obj"])
    return out

report = {}
for module in sys.argv[1:]:
    mod = importlib.import_module(module)
    names = list(getattr(mod, "__all__", None) or getattr(mod, "FIGURE_MODULES", {}))
    cold = kinds(module, names)
    # importing a submodule sets it as an attribute of its package: it must not shadow an export
    for info in pkgutil.iter_modules(getattr(mod, "__path__", [])):
        importlib.import_module(f"{module}.{info.name}")
    report[module] = {"names": names, "cold": cold, "warm": kinds(module, names)}
print(json.dumps(report))
'''


def _modules_with_all() -> set[str]:
    found = set()
    for path in SRC.rglob("*.py"):
        if re.search(r"^__all__\s*=", path.read_text(), flags=re.M):
            parts = path.relative_to(SRC).with_suffix("").parts
            found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_public_name_is_what_its_docs_say():
    modules = sorted(_modules_with_all() | set(DOCUMENTED))
    assert {"heavytail.noise", "heavytail.optim"} <= set(modules)
    done = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for module, seen in report.items():
        assert seen["names"], f"{module} exports nothing"
        for when in ("cold", "warm"):
            modules_not_names = sorted(n for n, k in seen[when].items() if k == "module")
            assert not modules_not_names, f"{module}: {modules_not_names} import as modules ({when})"
        if module in DOCUMENTED:
            assert set(seen["names"]) == set(DOCUMENTED[module]), f"{module}: exports and docs differ"
            assert seen["cold"] == seen["warm"] == DOCUMENTED[module], module


def test_every_import_of_the_project_inside_a_function_resolves():
    """Entry points import their heavy parts lazily, inside functions, where no import at start-up checks them:
    a name moved to another module (bench.pretrain imported engine.param_groups, which lives in
    train.optimization) breaks only the run that reaches it."""
    import ast
    import importlib

    missing = []
    for path in sorted((SRC / "heavytail").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("heavytail"):
                module = importlib.import_module(node.module)
                missing += [f"{path.relative_to(SRC)}:{node.lineno}: {node.module}.{alias.name}"
                            for alias in node.names if not hasattr(module, alias.name)
                            and importlib.util.find_spec(f"{node.module}.{alias.name}") is None]
    assert not missing, missing
