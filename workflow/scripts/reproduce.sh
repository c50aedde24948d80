#!/usr/bin/env bash
# README command 1: set up the environment and reproduce every figure and table at the tiny scale (CPU, offline).
# Extra arguments go to snakemake, e.g. `bash workflow/scripts/reproduce.sh --config scale=small`.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash workflow/scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH"
scale=$(.venv/bin/python -c "from heavytail.config import load_config; print(load_config()['scale'])")
for arg in "$@"; do case "$arg" in scale=*) scale=${arg#scale=};; esac; done
export HF_HOME="$PWD/resources/hf_home"
if [ "$scale" = tiny ]; then
  # tiny reads only data shipped in installed packages: never reach for the Hub
  export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1}
fi
export TORCHINDUCTOR_CACHE_DIR="$PWD/resources/inductor_cache"
start=$(date +%s)
# --rerun-incomplete: a killed run continues (training resumes from its checkpoint) instead of stopping
.venv/bin/snakemake --workflow-profile workflow/profiles/local --cores "${CORES:-all}" --rerun-incomplete \
  reproduce_all "$@"
echo "reproduce_all finished in $(( $(date +%s) - start )) s"
echo "report: $PWD/reports/$scale/index.html"
