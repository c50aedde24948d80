#!/usr/bin/env bash
# Let `snakemake --profile slurm` find workflow/profiles/slurm from the repo root: Snakemake looks for a profile
# NAME in ./NAME, then ~/.config/snakemake/NAME, then /etc/xdg/snakemake/NAME, so link it into the user folder.
# Idempotent. A different profile already called `slurm` is left alone, with a warning.
set -euo pipefail
target="$(cd "$(dirname "$0")/../profiles/slurm" && pwd)"
folder="${XDG_CONFIG_HOME:-$HOME/.config}/snakemake"
link="$folder/slurm"
if [ -L "$link" ] && [ "$(readlink -f "$link")" = "$target" ]; then
  exit 0
fi
if [ -L "$link" ] && [ ! -e "$link" ]; then
  rm "$link"  # dangling: it pointed at a clone that no longer exists
elif [ -e "$link" ] || [ -L "$link" ]; then
  echo "setup: warning: $link is another profile; left as is. Use: snakemake --profile $target ..." >&2
  exit 0
fi
mkdir -p "$folder"
ln -s "$target" "$link"
echo "setup: linked $link -> $target (snakemake --profile slurm)"
