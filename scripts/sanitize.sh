#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer, in
# build-asan/. By default (and in CI) the suites that exercise every op, layer, reader and
# writer (tessera_core_tests); `bash scripts/sanitize.sh all` builds and runs the whole suite.
# The long training runs ([training]) are left to the plain build. Any report fails the run
# (halt_on_error, no recovery from UB). Built without -march=native: the portable kernels
# (kernels/arch/generic, x86-64's baseline) are the ones compiled and tested here, where the
# plain build tests the machine's own (AVX-512 or AVX2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=tessera_core_tests
[[ "${1:-}" == all ]] && target=tessera_tests

bash scripts/deps.sh

jobs=$(( $(nproc) < 2 ? $(nproc) : 2 ))
# -g1: line tables for the reports' stacks, without -g's full debug info (a quarter of the build
# time). GCC's -Wmaybe-uninitialized misfires inside libstdc++'s <regex> at -O1 with ASan.
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1 -g1 -Wno-maybe-uninitialized"
generator=()
[[ -f build-asan/CMakeCache.txt ]] || generator=(-G Ninja)  # chosen on first configure only
cmake -S . -B build-asan "${generator[@]}" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG= -DTESSERA_BUILD_EXAMPLES=OFF -DTESSERA_NATIVE_ARCH=OFF \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
cmake --build build-asan --target "$target" -j "$jobs"
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 OMP_NUM_THREADS=1
"build-asan/tests/$target" "~[training]~[.]"
