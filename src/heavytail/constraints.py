"""What the schema cannot say about an experiment: values that name other values, and values that must agree.

`check_experiment(experiment)` returns one line per problem, naming the key and the fix; the Snakefile prints
them all and stops before any job starts. Pure functions of the experiment: no files are read.
"""

from __future__ import annotations

from collections.abc import Iterable

# labels the paper's comparisons are drawn with: the plan reads these runs by name
FIG1A_OPTIMIZERS = ("sgdm", "adam")
# ACClip's two readings: the printed rule (`acclip`) and the normalised variant public code uses
TABLE2_OPTIMIZERS = ("adam", "acclip", "acclip_normalized")
TABLE3_OPTIMIZERS = ("adam", "acclip", "acclip_normalized")
FIG1B_OPTIMIZERS = ("sgdm", "adam")
FIG8_OPTIMIZERS = ("sgdm", "adam", "acclip")
VISION_ROLES = {"image": "resnet", "alexnet": "alexnet"}  # noise role -> the vision model it measures
SMALLEST_ALEXNET_INPUT = 63
FASHION_MNIST_SIZE = 28


def _names(key: str, values: Iterable[str], allowed: Iterable[str], allowed_key: str) -> list[str]:
    allowed = list(allowed)
    return [f"{key} names {value!r}, which is not a key of {allowed_key} (entries: {', '.join(allowed) or 'none'})"
            for value in values if value not in allowed]


def _required_labels(key: str, labels: Iterable[str], needed: Iterable[str], what: str) -> list[str]:
    return [f"{key} has no entry {label!r}, which {what} compares (add it, or drop that artifact's runs)"
            for label in needed if label not in labels]


def _divides(key: str, micro: int | None, batch: int, batch_key: str) -> list[str]:
    if micro and batch % micro:
        return [f"{key} {micro} must divide {batch_key} {batch} (gradient accumulation splits the batch)"]
    return []


def check_pretrain(pre: dict) -> list[str]:
    models, optimizers = pre["models"], pre["optimizers"]
    problems = _names("pretrain.base_model", [pre["base_model"]], models, "pretrain.models")
    problems += _names("pretrain.table2_models", pre["table2_models"], models, "pretrain.models")
    problems += _names("pretrain.fig3_optimizers", pre["fig3_optimizers"], optimizers, "pretrain.optimizers")
    problems += _names("pretrain.grad_clip_norm", pre["grad_clip_norm"], optimizers, "pretrain.optimizers")
    tune = pre["tune"]
    if tune["model"] is not None:
        problems += _names("pretrain.tune.model", [tune["model"]], models, "pretrain.models")
    problems += _names("pretrain.tune.lr_grid", tune["lr_grid"], optimizers, "pretrain.optimizers")
    problems += _names("pretrain.tune.clip_threshold_grid", tune.get("clip_threshold_grid", {}), tune["lr_grid"],
                       "pretrain.tune.lr_grid")
    problems += _required_labels("pretrain.optimizers", optimizers, FIG1A_OPTIMIZERS, "Fig 1a")
    problems += _required_labels("pretrain.optimizers", optimizers, TABLE2_OPTIMIZERS, "Table 2")
    for name, arch in models.items():
        if arch["hidden_size"] % arch["num_attention_heads"]:
            problems.append(f"pretrain.models.{name}.hidden_size {arch['hidden_size']} must be divisible by "
                            f"num_attention_heads {arch['num_attention_heads']}")
    if pre["comparison_seeds"] > len(pre["seeds"]):
        problems.append(f"pretrain.comparison_seeds {pre['comparison_seeds']} exceeds the {len(pre['seeds'])} "
                        "pretrain.seeds")
    train = pre["train"]
    problems += _divides("pretrain.train.micro_batch_size", train.get("micro_batch_size"), train["batch_size"],
                         "pretrain.train.batch_size")
    problems += _schedule("pretrain.train.schedule", train["schedule"], train["steps"])
    if pre["max_predictions_per_seq"] > pre["max_seq_length"] - 2:
        problems.append(f"pretrain.max_predictions_per_seq {pre['max_predictions_per_seq']} exceeds the "
                        f"{pre['max_seq_length'] - 2} maskable tokens of pretrain.max_seq_length")
    long = pre["long_phase"]
    if long:
        if long["max_seq_length"] <= pre["max_seq_length"]:
            problems.append(f"pretrain.long_phase.max_seq_length {long['max_seq_length']} must exceed "
                            f"pretrain.max_seq_length {pre['max_seq_length']} (or set long_phase: null)")
        if long["max_predictions_per_seq"] > long["max_seq_length"] - 2:
            problems.append(f"pretrain.long_phase.max_predictions_per_seq {long['max_predictions_per_seq']} exceeds "
                            f"the {long['max_seq_length'] - 2} maskable tokens of its max_seq_length")
        if int(round(long["fraction"] * pre["tune"]["steps"])) < 1:
            problems.append(f"pretrain.long_phase.fraction {long['fraction']} of pretrain.tune.steps "
                            f"{pre['tune']['steps']} is no step: the tuning runs would skip the long phase")
    return problems


def longest_pretraining_length(pre: dict) -> int:
    return max(pre["max_seq_length"], (pre["long_phase"] or {}).get("max_seq_length", 0))


def _schedule(key: str, schedule: dict, steps: int | None) -> list[str]:
    problems = []
    warmup = schedule.get("warmup_steps")
    if steps is not None and warmup is not None and warmup > steps:
        problems.append(f"{key}.warmup_steps {warmup} exceeds the {steps} training steps")
    if schedule["decay"] == "step" and not schedule.get("milestones"):
        problems.append(f"{key}.decay is step but {key}.milestones is empty (give the decay points)")
    if schedule["decay"] != "step" and schedule.get("milestones"):
        problems.append(f"{key}.milestones are set but {key}.decay is {schedule['decay']} (milestones need step)")
    return problems


def check_squad(squad: dict, pre: dict) -> list[str]:
    hub = squad["init"].get("huggingface", {})
    problems = _names("squad.models", [m for m in squad["models"] if m not in hub], pre["models"],
                      "pretrain.models (or squad.init.huggingface)")
    if any(m not in hub for m in squad["models"]):
        problems += _names("squad.init.optimizer", [squad["init"]["optimizer"]], pre["optimizers"],
                           "pretrain.optimizers")
    problems += _names("squad.grad_clip_norm", squad["grad_clip_norm"], squad["optimizers"], "squad.optimizers")
    if squad["random_encoder_control"] is not None:
        problems += _names("squad.random_encoder_control", [squad["random_encoder_control"]], squad["optimizers"],
                           "squad.optimizers")
    problems += _required_labels("squad.optimizers", squad["optimizers"], TABLE3_OPTIMIZERS, "Table 3")
    train = squad["train"]
    problems += _divides("squad.train.micro_batch_size", train.get("micro_batch_size"), train["batch_size"],
                         "squad.train.batch_size")
    problems += _schedule("squad.train.schedule", train["schedule"], None)
    longest = longest_pretraining_length(pre)
    if pre["position_embedding"] == "absolute" and squad["max_seq_length"] > longest:
        problems.append(f"squad.max_seq_length {squad['max_seq_length']} exceeds the longest pretraining sequence "
                        f"({longest}): BERT's absolute positions beyond it are never trained (add or lengthen "
                        "pretrain.long_phase, or use rotary positions)")
    context = squad["max_seq_length"] - squad["max_query_length"] - 3
    if context < 1:
        problems.append(f"squad.max_query_length {squad['max_query_length']} leaves no context tokens in "
                        f"squad.max_seq_length {squad['max_seq_length']} ([CLS] question [SEP] context [SEP])")
    elif squad["doc_stride"] > context:
        problems.append(f"squad.doc_stride {squad['doc_stride']} exceeds the {context} context tokens of a window "
                        "(max_seq_length - max_query_length - 3): windows would skip context")
    return problems


def check_vision(vision: dict, images: dict) -> list[str]:
    problems = []
    if vision["loader"] == "memory" and images["source"] == "imagenet":
        problems.append("vision.loader memory decodes every image into memory: with data.images.source imagenet "
                        "use vision.loader workers")
    for name, model in vision["models"].items():
        key = f"vision.models.{name}"
        problems += _names(f"{key}.optimizers", model["optimizers"], vision["optimizers"], "vision.optimizers")
        problems += _names(f"{key}.optimizer_overrides", model.get("optimizer_overrides", {}), model["optimizers"],
                           f"{key}.optimizers")
        problems += _divides(f"{key}.micro_batch_size", model.get("micro_batch_size"), model["batch_size"],
                             f"{key}.batch_size")
        problems += _schedule(f"{key}.schedule", model["schedule"], model.get("steps"))
        size = model.get("image_size") or (FASHION_MNIST_SIZE if images["source"] == "fashion_mnist" else None)
        if model["arch"].startswith("alexnet") and size is not None and size < SMALLEST_ALEXNET_INPUT:
            problems.append(f"{key}.image_size is {size} px, but {model['arch']} needs >= {SMALLEST_ALEXNET_INPUT} "
                            "(set image_size: the images are resized up)")
    resnet = vision["models"].get("resnet")
    if resnet is None:
        problems.append("vision.models has no entry 'resnet', which Fig 1b and Fig 8 train")
    else:
        problems += _required_labels("vision.models.resnet.optimizers", resnet["optimizers"], FIG8_OPTIMIZERS,
                                     "Fig 1b / Fig 8")
    return problems


def check_noise(noise: dict, pre: dict, vision: dict) -> list[str]:
    runs = noise["runs"]
    bert = runs["bert"]
    problems = _names("noise.runs.bert.model", [bert["model"]], pre["models"], "pretrain.models")
    problems += _names("noise.runs.bert.optimizer", [bert["optimizer"]], pre["optimizers"], "pretrain.optimizers")
    for role, expected in VISION_ROLES.items():
        run, key = runs[role], f"noise.runs.{role}"
        model = vision["models"].get(run["model"])
        if model is None:
            problems += _names(f"{key}.model", [run["model"]], vision["models"], "vision.models")
            continue
        if run["model"] != expected:
            problems.append(f"{key}.model is {run['model']!r}; the {role} figures measure the {expected!r} model")
        problems += _names(f"{key}.optimizer", [run["optimizer"]], model["optimizers"],
                           f"vision.models.{run['model']}.optimizers")
        problems += _names(f"{key}.seed", [run["seed"]], vision["seeds"], "vision.seeds")
        missing = [f for f in run["fractions"] if f not in model.get("snapshot_fractions", [])]
        if missing:
            problems.append(f"{key}.fractions {missing} are not snapshot fractions of vision.models.{run['model']} "
                            f"({model.get('snapshot_fractions', [])}): add them there")
    return problems


def check_experiment(experiment: dict) -> list[str]:
    """Every cross-reference and agreement of the experiment, one line each (empty: all is well)."""
    pre, vision = experiment["pretrain"], experiment["vision"]
    return (check_pretrain(pre) + check_squad(experiment["squad"], pre)
            + check_vision(vision, experiment["data"]["images"]) + check_noise(experiment["noise"], pre, vision))


def check_explanations(experiment: dict) -> list[str]:
    """The later explanations' section (heavytail.plan.explanations): labels that resolve, fair grids, batch sizes
    that end at the full batch; empty when the experiment has no such section."""
    section = experiment.get("explanations")
    if not section:
        return []
    known = list(section["optimizers"]) + [k for k in experiment["pretrain"]["optimizers"] if k not in section["optimizers"]]
    sweep, linear = section["batch_size_sweep"], section["class_imbalance"]["linear"]
    key = "explanations.batch_size_sweep"
    problems = _names(f"{key}.optimizers", sweep["optimizers"], known, "explanations.optimizers or pretrain.optimizers")
    # a grid of a label the sweep does not compare is unused (a --configfile merges into the scale's grids)
    problems += _names(f"{key}.lr_grid", sweep["lr_grid"], known, "explanations.optimizers or pretrain.optimizers")
    problems += [f"{key}.lr_grid has no entry {label!r}: every compared label is tuned at every batch size"
                 for label in sweep["optimizers"] if label not in sweep["lr_grid"]]
    problems += _names("explanations.class_imbalance.linear.lr_grid", linear["lr_grid"], known,
                       "explanations.optimizers or pretrain.optimizers")
    compared = {label: values for label, values in sweep["lr_grid"].items() if label in sweep["optimizers"]}
    for grid_key, grid in ((f"{key}.lr_grid", compared),
                           ("explanations.class_imbalance.linear.lr_grid", linear["lr_grid"])):
        if len({len(values) for values in grid.values()}) > 1:
            problems.append(f"{grid_key} gives the labels grids of different sizes "
                            f"({', '.join(f'{k}: {len(v)}' for k, v in grid.items())}): fair tuning tries as many per label")
    sizes = sweep["batch_sizes"]
    if sorted(set(sizes)) != list(sizes):
        problems.append(f"{key}.batch_sizes must increase, each once (got {sizes}); the last is the full batch")
    elif any(sizes[-1] % b for b in sizes):
        problems.append(f"{key}.batch_sizes {[b for b in sizes if sizes[-1] % b]} do not divide the full batch "
                        f"{sizes[-1]} (the subset's size): every epoch must split into whole batches")
    return problems
