#!/usr/bin/env bash
# README command 2: set up the environment and run the whole test suite (unit tests + shrunken end-to-end DAG).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash workflow/scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH"
export HF_HOME="$PWD/resources/hf_home" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TORCHINDUCTOR_CACHE_DIR="$PWD/resources/inductor_cache"
.venv/bin/ruff check src tests
.venv/bin/snakemake --lint >/dev/null
.venv/bin/snakefmt --check Snakefile workflow/rules
.venv/bin/snakemake -n reproduce_all --quiet >/dev/null
# pytest exits 5 when no test ran: that is a failure here too
.venv/bin/python -m pytest "$@"
