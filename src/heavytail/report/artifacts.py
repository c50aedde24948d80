"""The paper's figures and tables that the pipeline reproduces: one table read by the DAG and the report."""

from __future__ import annotations

PRETRAIN = "BERT pretraining experiments (Fig 1a, Fig 3, Table 2)"
SQUAD = "SQuAD fine-tuning (Table 3)"
VISION = "vision experiments (ResNet50/AlexNet: Fig 1b, Fig 8)"
NOISE = "noise experiments in the DAG (Figs 2, 4, 5, 6, 7)"
THEORY = "theory checks (Table 1)"

# name -> (what the paper shows, the capability that builds it)
PAPER_ARTIFACTS: dict[str, tuple[str, str]] = {
    "fig1a": ("Validation loss of BERT pretraining: SGD with momentum vs Adam", PRETRAIN),
    "fig1b": ("Validation loss of ResNet50 on ImageNet: SGD with momentum vs Adam", VISION),
    "fig2": ("Gradient-noise norms: ResNet vs BERT at init, reference distributions, variance vs sample size",
             NOISE),
    "fig3": ("Validation loss of BERT-base pretraining: SGDm, GClip, Adam, ACClip", PRETRAIN),
    "fig4": ("Noise of Attention vs ResNet-like model on Wikipedia vs Gaussian data", NOISE),
    "fig5": ("Noise distribution during training: BERT vs ResNet", NOISE),
    "fig6": ("AlexNet noise at init and after 5k iterations; per-coordinate noise in one minibatch", NOISE),
    "fig7": ("Tail-index estimates of gradient noise: ImageNet vs BERT", NOISE),
    "fig8": ("Validation loss of ResNet50 on ImageNet: SGD, Adam, ACClip", VISION),
    "table1": ("Error bounds after k iterations (empirical rates on synthetic problems)", THEORY),
    "table2": ("BERT pretraining: Adam vs ACClip at 6, 12 and 24 layers", PRETRAIN),
    "table3": ("SQuAD v1.1 dev: Adam vs ACClip, 5 seeds", SQUAD),
}

# the category each artifact is filed under in Snakemake's own report (`snakemake --report`)
REPORT_CATEGORY = {
    "fig1a": "BERT pretraining", "fig3": "BERT pretraining", "table2": "BERT pretraining", "table3": "SQuAD",
    "fig1b": "Vision", "fig8": "Vision", "table1": "Theory",
    **dict.fromkeys(("fig2", "fig4", "fig5", "fig6", "fig7"), "Noise"),
    **dict.fromkeys(("batch_size_sweep", "class_imbalance"), "Beyond the paper"),
}


def display_name(name: str) -> str:
    """The paper's own name of an artifact: fig1a -> Fig 1a, table2 -> Table 2."""
    for prefix, word in (("fig", "Fig"), ("table", "Table")):
        if name.startswith(prefix):
            return f"{word} {name[len(prefix):]}"
    return name
