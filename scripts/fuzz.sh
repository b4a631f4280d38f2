#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (ASan + UBSan) and runs each for a bounded
# time on its seed corpus in fuzz/corpus/. Usage: bash scripts/fuzz.sh [seconds per target, 15]
# A crash leaves its input as build-fuzz/crash-<target>-*; turn it into a regression test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-15}

bash scripts/deps.sh clang libclang-rt-14-dev

if [[ ! -f build-fuzz/CMakeCache.txt ]]; then
    CXX=clang++ cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build build-fuzz -j "$(( $(nproc) < 2 ? $(nproc) : 2 ))"

# One target: its statistics, or its log's tail and where its crashing input is.
fuzz_one() {
    local target=$1 scratch status=0
    scratch=$(mktemp -d)  # new inputs found this run stay out of the committed corpus
    build-fuzz/fuzz_$target -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/crash-$target-" "$scratch" "fuzz/corpus/$target" \
        > "build-fuzz/fuzz_$target.log" 2>&1 || status=$?
    rm -rf "$scratch"
    echo "fuzz_$target: ${seconds}s"
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" "build-fuzz/fuzz_$target.log" || true
    if [[ $status -ne 0 ]]; then
        tail -n 40 "build-fuzz/fuzz_$target.log" >&2
        echo "fuzz_$target FAILED (exit $status); inputs: build-fuzz/crash-$target-*" >&2
        return 1
    fi
}
export -f fuzz_one
export seconds

# The targets two at a time, one per core (each is single-threaded).
jobs=$(( $(nproc) < 2 ? 1 : 2 ))
if ! printf '%s\n' image npy npz checkpoint idx cifar cli | xargs -P "$jobs" -I{} bash -c 'fuzz_one "$@"' _ {}; then
    echo "fuzzing: a target failed" >&2
    exit 1
fi
echo "fuzzing: all targets ran ${seconds}s without a crash"
