#!/usr/bin/env bash
# blyan generate / bench from the outside: usage errors, seeds, stop strings, chat, JSON.
set -uo pipefail
blyan="$BLY_BUILD_DIR/blyan"
model="$BLY_SHARED_DIR/testdata/models/qwen3-tiny-q8.gguf"
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
json() { /usr/bin/python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)"; }

"$blyan" generate --model "$model" --prompt hi --bogus >/dev/null 2>&1; check "unknown option exits 2" '[ $? -eq 2 ]'
"$blyan" generate --model "$model" >/dev/null 2>&1; check "missing prompt exits 2" '[ $? -eq 2 ]'
"$blyan" generate --model "$model" --prompt hi --temp -1 >/dev/null 2>&1; check "negative temp exits 2" '[ $? -eq 2 ]'
"$blyan" generate --model "$model" --prompt hi --backend vulkan9 >/dev/null 2>&1; check "unknown backend exits 2" '[ $? -eq 2 ]'
err=$("$blyan" generate --model /nonexistent.gguf --prompt hi 2>&1 >/dev/null); rc=$?
check "missing model exits 1 with a reason" '[ $rc -eq 1 ] && [ -n "$err" ]'

gen() { "$blyan" generate --model "$model" --prompt "Once upon a time" --n-predict 12 --ignore-eos --json "$@"; }
a=$(gen --temp 0.9 --seed 7); b=$(gen --temp 0.9 --seed 7); c=$(gen --temp 0.9 --seed 8)
check "same seed, same ids" '[ "$(echo "$a" | json "d[\"ids\"]")" = "$(echo "$b" | json "d[\"ids\"]")" ]'
check "other seed, other ids" '[ "$(echo "$a" | json "d[\"ids\"]")" != "$(echo "$c" | json "d[\"ids\"]")" ]'
check "12 ids predicted" '[ "$(echo "$a" | json "len(d[\"ids\"])")" = 12 ]'
check "10 top logits, descending" '[ "$(echo "$a" | json "len(d[\"top_logits\"]) == 10 and all(d[\"top_logits\"][i][1] >= d[\"top_logits\"][i+1][1] for i in range(9))")" = True ]'
g=$(gen --temp 0)
first=$(echo "$g" | json "d[\"text\"][1:3]")
s=$(gen --temp 0 --stop "$first")
check "stop string cuts the text" '[ "$(echo "$s" | json "len(d[\"text\"]) < len(\"$(echo "$g" | json "d[\"text\"]")\") and \"$first\" not in d[\"text\"]")" = True ]'
ch=$("$blyan" generate --model "$model" --prompt "What is Blyan?" --chat --n-predict 1 --temp 0 --json)
check "chat wraps the prompt in ChatML" '[ "$(echo "$ch" | json "d[\"prompt_ids\"][0] == 151644 and d[\"prompt_ids\"][-3:] == [151644, 77091, 198]")" = True ]'
z=$("$blyan" generate --model "$model" --prompt "Once upon a time" --n-predict 0 --json)
check "n-predict 0 predicts nothing" '[ "$(echo "$z" | json "d[\"ids\"]")" = "[]" ]'
bn=$("$blyan" bench --model "$model" --threads 1 --prompt-tokens 8 --gen-tokens 4 --json)
check "bench reports speeds and the bound" '[ "$(echo "$bn" | json "d[\"prefill_tok_s\"] > 0 and d[\"decode_tok_s\"] > 0 and d[\"decode_bound_tok_s\"] > 0 and d[\"peak_rss_bytes\"] > 0")" = True ]'
"$blyan" bench --model "$model" --threads 0 >/dev/null 2>&1; check "bench with 0 threads exits 2" '[ $? -eq 2 ]'
exit $fail
