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
# how long each notebook takes at full size and in the tests (slow: the full runs)
python scripts/time_notebooks.py
# how long that verify took, for the README's set-up line
python - <<'PY'
import json
claims = json.load(open("results/verify_quick.json"))["claims"]
seconds = sum(c["seconds"] for c in claims)
json.dump({"claims": len(claims), "passed": sum(c["status"] == "pass" for c in claims),
           "seconds": round(seconds, 1), "minutes": seconds / 60},
          open("results/verify_quick_summary.json", "w"), indent=1)
PY
python scripts/shown_numbers.py --write
