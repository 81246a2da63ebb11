#!/usr/bin/env bash
# Golden check of `blyan generate` against llama.cpp's outputs on the shared tiny models:
# prompt ids, top logits within the testdata tolerances, greedy ids for the safe steps.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared="${BLY_SHARED_DIR:-../shared}"
python3 "$shared/tools/check-golden.py" '["build/blyan","generate","--backend","cpu"]' \
  "$shared"/testdata/models/*.golden.json
