#!/usr/bin/env bash
# Set up everything, build, and run the whole test suite. Prints one closing line
# "tests: N passed, N failed" and exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }

passed=0; failed=0
# Check's own fork mode gives each test a fresh process; lavapipe uses two threads at most.
export LP_NUM_THREADS=2
export MESA_SHADER_CACHE_DIR="${MESA_SHADER_CACHE_DIR:-$PWD/build/mesa-shader-cache}"

meson test -C build --print-errorlogs --num-processes 2 --no-rebuild
rc=$?
# Count from meson's machine-readable log: one JSON object per test.
read -r p f < <(python3 - <<'PY'
import json
p = f = 0
for line in open("build/meson-logs/testlog.json"):
    r = json.loads(line)
    if r.get("result") in ("OK", "SKIP", "EXPECTEDFAIL"):
        p += 1
    else:
        f += 1
print(p, f)
PY
)
passed=$((passed + p)); failed=$((failed + f))
[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || failed=$((failed + 1))

# Extra stages (fuzzing, golden checks) live in tools/test.d/*.sh; each exits non-zero on failure.
for stage in tools/test.d/*.sh; do
  [ -e "$stage" ] || continue
  echo "== $stage"
  if bash "$stage"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $stage"; fi
done

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
