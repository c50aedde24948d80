# Paper artifacts whose experiment is not built yet. Asking for one fails with a clear message naming the
# missing capability; it never produces an empty figure. Each stage file that builds an artifact registers it
# (register_artifact), which removes it from this list.

from heavytail.report.artifacts import PAPER_ARTIFACTS  # noqa: E402

for _artifact, (_title, _capability) in PAPER_ARTIFACTS.items():
    if _artifact in ARTIFACTS:
        continue

    rule:
        name:
            _artifact
        localrule: True
        log:
            f"logs/{SCALE}/pending/{_artifact}.log",
        conda:
            "../../envs/report.yaml"
        params:
            message=f"heavytail: {_artifact} is not implemented yet: it needs the {_capability} capability",
        shell:
            "echo {params.message:q} | tee {log} >&2; exit 1"
