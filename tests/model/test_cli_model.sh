#!/usr/bin/env bash
# blyan tokenize and blyan mkmodel from the command line: output formats, exit codes.
set -uo pipefail
blyan="$BLY_BUILD_DIR/blyan"
if [ -n "${BLY_VALGRIND:-}" ]; then   # meson test --setup=valgrind: check blyan itself
  valgrind_blyan() { valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite "$BLY_BUILD_DIR/blyan" "$@"; }
  blyan=valgrind_blyan
fi
model="$BLY_SHARED_DIR/testdata/models/qwen3-tiny-f32.gguf"
dir=$(mktemp -d /tmp/bly_cli_model_XXXXXX)
trap 'rm -rf "$dir"' EXIT
failed=0
check() {   # check NAME EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then echo "FAIL $1: expected [$2], got [$3]"; failed=1; else echo "ok $1"; fi
}

check "plain ids" "785 3974 13876 38835 34208 916 279 15678 5562 13" \
  "$("$blyan" tokenize --model "$model" --text "The quick brown fox jumps over the lazy dog.")"
check "special" "151644 872 198 3838 374 425 398 276 30 151645 198 151644 77091 198" \
  "$("$blyan" tokenize --model "$model" --special \
      --text $'<|im_start|>user\nWhat is Blyan?<|im_end|>\n<|im_start|>assistant\n')"
check "json" '{"ids":[9707,1879,0],"pieces":["Hello"," world","!"]}' \
  "$("$blyan" tokenize --model "$model" --text "Hello world!" --json)"
check "json escapes" '{"ids":[151644,698,1],"pieces":["<|im_start|>","\"\n","\""]}' \
  "$("$blyan" tokenize --model "$model" --text $'<|im_start|>"\n"' --special --json)"
# Each invalid byte becomes U+FFFD (as in llama.cpp).
check "invalid bytes" \
  "$("$blyan" tokenize --model "$model" --text $'\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd')" \
  "$("$blyan" tokenize --model "$model" --text $'\xff\xfe\x80\xc3')"
check "empty" "" "$("$blyan" tokenize --model "$model" --text "")"
"$blyan" tokenize --model "$model" >/dev/null 2>&1; check "missing --text" 2 $?
"$blyan" tokenize --model /nonexistent.gguf --text x >/dev/null 2>&1; check "missing model" 2 $?
"$blyan" tokenize --model "$model" --text x --bogus >/dev/null 2>&1; check "unknown option" 2 $?

out="$dir/m.gguf"
check "mkmodel prints the path" "$out" \
  "$("$blyan" mkmodel --out "$out" --layers 1 --embd 64 --heads 2 --kv-heads 1 --head-dim 32 \
      --ff 64 --type Q8_0 --tokenizer "$model" --seed 3)"
check "mkmodel tokenizer" "9707 1879" "$("$blyan" tokenize --model "$out" --text "Hello world")"
"$blyan" mkmodel --out "$dir/x.gguf" --like qwen3-9b --type F32 --tokenizer "$model" \
  >/dev/null 2>&1; check "unknown shape" 2 $?
"$blyan" mkmodel --out "$dir/x.gguf" --like qwen3-tiny --type Q4_K --tokenizer "$model" \
  >/dev/null 2>&1; check "bad type" 2 $?
"$blyan" mkmodel --out "$dir/x.gguf" --like qwen3-tiny --embd 0 --type F32 --tokenizer "$model" \
  >/dev/null 2>&1; check "bad size" 2 $?
"$blyan" mkmodel --out "$dir/x.gguf" --like qwen3-tiny --type Q8_0 --embd 40 --tokenizer "$model" \
  >/dev/null 2>&1; check "Q8_0 alignment" 1 $?
"$blyan" mkmodel --out "$dir/x.gguf" --like qwen3-tiny --type F32 >/dev/null 2>&1
check "missing tokenizer" 2 $?
[ ! -e "$dir/x.gguf" ] && [ ! -e "$dir/x.gguf.tmp" ]; check "no file left behind" 0 $?
exit "$failed"
