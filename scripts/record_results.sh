#!/usr/bin/env bash
# Record every results file that the README and the docs read (their numbers are shown through
# `<!-- num: ... -->` markers and the generated claim pages; `python scripts/shown_numbers.py
# --write` then refreshes the shown values).  Run from anywhere; takes a few minutes on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results
# the claims page's "latest recorded result" and the README's verify figures
momentumlab verify --quick --device cpu --json results/verify_quick.json \
    --markdown results/verify_quick.md || true   # a failing claim is a result, not an error
python scripts/shown_numbers.py --write
