#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer, in build-asan/: every op,
# layer, reader and writer test; the long training runs ([training]) are left to the plain
# build. Any report fails the run (halt_on_error, no recovery from UB).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/deps.sh

jobs=$(( $(nproc) < 2 ? $(nproc) : 2 ))
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1 -g"
if [[ ! -f build-asan/CMakeCache.txt ]]; then
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTESSERA_BUILD_EXAMPLES=OFF \
        -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
fi
cmake --build build-asan --target tessera_tests -j "$jobs"
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 OMP_NUM_THREADS=1
build-asan/tests/tessera_tests "~[training]~[.]"
