#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv and the system packages the pipeline reads.
# Idempotent: a second run with an unchanged pyproject.toml does nothing but checks.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
# Debian packages: Fashion-MNIST (tiny-scale images), Chromium and its WebDriver (the report's browser check,
# through Selenium, offline), slurm-wlm + munge (the single-node SLURM test of the cluster path).
DEB_PACKAGES=(dataset-fashion-mnist chromium chromium-driver slurm-wlm munge)

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: warning: missing Debian packages ${missing[*]} (need root + apt-get); tests that need them skip" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.heavytail-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: pip install -e .[test,cluster] (torch==2.14.1 and torchvision==0.29.1 are pinned)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,cluster]" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import heavytail, torch, torchvision, snakemake" # fail here, not mid-pipeline
  echo "$want" > "$stamp"
fi

# `snakemake --profile slurm` resolves to workflow/profiles/slurm
bash workflow/scripts/link_profile.sh
