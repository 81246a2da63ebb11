#!/usr/bin/env bash
# Golden check of `blyan generate --backend vulkan` (lavapipe in CI) against llama.cpp's
# outputs: the same prompt ids, top logits and greedy ids as the CPU stage (golden.sh), with
# the Khronos validation layer on (its errors are logged; the gpu test suite fails on them).
# Skipped (exit 0 with a note) only where no Vulkan driver exists at all.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared="${BLY_SHARED_DIR:-../shared}"
if ! build/blyan devices >/dev/null 2>&1; then
  echo "golden-vulkan: no Vulkan device, skipped"
  exit 0
fi
# The listing marks exactly one device as the default choice.
[ "$(build/blyan devices | grep -c '^\* ')" -eq 1 ] || { echo "golden-vulkan: blyan devices"; exit 1; }
export LP_NUM_THREADS="${LP_NUM_THREADS:-2}"
export MESA_SHADER_CACHE_DIR="${MESA_SHADER_CACHE_DIR:-$PWD/build/mesa-shader-cache}"
python3 "$shared/tools/check-golden.py" '["build/blyan","generate","--backend","vulkan"]' \
  "$shared"/testdata/models/*.golden.json
