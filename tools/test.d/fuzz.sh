#!/usr/bin/env bash
# Fuzz stage of tools/test.sh: build every libFuzzer target (clang, ASan + UBSan) into
# build-fuzz/ and run each over its corpus for a bounded time.
#   FUZZ_SECONDS        seconds per target (default 20)
#   FUZZ_TOTAL_SECONDS  bound for all targets together (default 300); targets share it
#   FUZZ_TARGETS        space-separated names to run (default: all)
#   FUZZ_JOBS           ninja jobs for the build (default 2)
# A crash fails the stage; its input is saved in tests/fuzz/crashes/<name>/ (commit it: the
# normal test run replays that folder, see tests/fuzz/meson.build). New inputs found while
# fuzzing go to build-fuzz/corpus-new/<name>/; merge them into the committed corpus with
#   build-fuzz/tests/fuzz/fuzz_<name> -merge=1 tests/fuzz/corpus/<name> build-fuzz/corpus-new/<name>
set -uo pipefail
cd "$(dirname "$0")/../.."

per_target="${FUZZ_SECONDS:-20}"
total="${FUZZ_TOTAL_SECONDS:-300}"
jobs="${FUZZ_JOBS:-2}"

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz: clang is missing (tools/setup.sh installs it)"
  exit 1
fi

if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dvulkan=disabled --buildtype=debugoptimized >/dev/null \
    || { echo "fuzz: meson setup build-fuzz failed"; exit 1; }
fi

# Re-run meson when a meson.build changed, so the introspection below is current.
ninja -C build-fuzz build.ninja >/dev/null 2>&1 \
  || { echo "fuzz: meson reconfigure of build-fuzz failed"; exit 1; }

# The libFuzzer binaries only, not the whole project: their paths from meson's introspection.
mapfile -t binaries < <(meson introspect build-fuzz --targets | python3 -c '
import json, os, sys
for t in json.load(sys.stdin):
    if t["type"] == "executable" and t["name"].startswith("fuzz_"):
        print(os.path.relpath(t["filename"][0], "build-fuzz"))
' | sort)
if [ "${#binaries[@]}" -eq 0 ]; then
  echo "fuzz: no fuzz targets are registered"
  exit 1
fi
ninja -C build-fuzz -j "$jobs" "${binaries[@]}" >build-fuzz/fuzz-build.log 2>&1 \
  || { tail -40 build-fuzz/fuzz-build.log; echo "fuzz: build failed"; exit 1; }

export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
started=$(date +%s)
left_targets=${#binaries[@]}
failed=0
for bin in "${binaries[@]}"; do
  exe="build-fuzz/$bin"
  name="$(basename "$bin")"
  name="${name#fuzz_}"
  left_targets=$((left_targets - 1))
  if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $name "* ]]; then
    continue
  fi
  spent=$(( $(date +%s) - started ))
  budget=$(( (total - spent) / (left_targets + 1) ))
  [ "$budget" -gt "$per_target" ] && budget=$per_target
  if [ "$budget" -lt 1 ]; then
    echo "fuzz: $name skipped, FUZZ_TOTAL_SECONDS=$total spent"
    continue
  fi
  corpus="tests/fuzz/corpus/$name"
  crashes="tests/fuzz/crashes/$name"
  fresh="build-fuzz/corpus-new/$name"
  mkdir -p "$crashes" "$fresh"
  # Saved crashes first: each must pass now (a regression otherwise).
  if compgen -G "$crashes/*" >/dev/null; then
    if ! "$exe" -runs=0 "$crashes"/* >"build-fuzz/fuzz-$name-replay.log" 2>&1; then
      tail -30 "build-fuzz/fuzz-$name-replay.log"
      echo "fuzz: $name fails on a saved crash input in $crashes"
      failed=$((failed + 1))
      continue
    fi
  fi
  [ -d "$corpus" ] || echo "fuzz: $name has no seed corpus in $corpus"
  log="build-fuzz/fuzz-$name.log"
  # New units go to the first folder (build-fuzz), so the committed corpus stays unchanged.
  "$exe" -max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$fresh" "$corpus" >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  if [ "$rc" -ne 0 ]; then
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -20
    echo "fuzz: $name FAILED after ${budget}s (log: $log; input saved in $crashes/)"
    failed=$((failed + 1))
  else
    echo "fuzz: $name ok, ${runs:-?} runs in ${budget}s"
  fi
done
[ "$failed" -eq 0 ]
