#!/usr/bin/env bash
# Build and run the main example in build/: a DCGAN learning the built-in procedural textures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh

if [[ ! -f build/CMakeCache.txt ]]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build build --target dcgan -j "$(( $(nproc) < 2 ? $(nproc) : 2 ))"
./build/examples/dcgan --out build/demo/dcgan "$@"
