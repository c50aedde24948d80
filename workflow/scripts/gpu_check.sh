#!/usr/bin/env bash
# The GPU check of the CUDA-only code paths (heavytail.bench.gpu_check): BERT-base/large bf16 step time and MFU
# with NSP padding, fused ACClip vs fused AdamW, the engine's SIGTERM-and-resume under torchrun, SQuAD
# predictions on the GPU. About 8 minutes on one GPU; needs only the machine's own torch and transformers.
#   bash workflow/scripts/gpu_check.sh                 # writes reports/measured/gpu/gpu_check.json
#   OUT=/tmp/x bash workflow/scripts/gpu_check.sh --only versions resume
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out=${OUT:-reports/measured/gpu}
mkdir -p "$out"
python3 -m heavytail.bench.gpu_check --out "$out/gpu_check.json" "$@"
