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

for target in image npy npz checkpoint idx cifar cli; do
    scratch=$(mktemp -d)  # new inputs found this run stay out of the committed corpus
    echo "fuzz_$target: ${seconds}s"
    status=0
    build-fuzz/fuzz_$target -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/crash-$target-" "$scratch" "fuzz/corpus/$target" \
        > "build-fuzz/fuzz_$target.log" 2>&1 || status=$?
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" "build-fuzz/fuzz_$target.log" || true
    rm -rf "$scratch"
    if [[ $status -ne 0 ]]; then
        tail -n 40 "build-fuzz/fuzz_$target.log" >&2
        echo "fuzz_$target FAILED (exit $status); inputs: build-fuzz/crash-$target-*" >&2
        exit 1
    fi
done
echo "fuzzing: all targets ran ${seconds}s without a crash"
