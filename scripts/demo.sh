#!/usr/bin/env bash
# Build and run the main example (toy CNN) in build/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh

if [[ ! -f build/CMakeCache.txt ]]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build build --target toy_cnn -j "$(( $(nproc) < 2 ? $(nproc) : 2 ))"
./build/examples/toy_cnn "$@"
