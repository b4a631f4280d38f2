#!/bin/sh
# An example interrupted by a signal saves a checkpoint, exits 128 + signal and says how to go
# on; resumed, it ends with the same checkpoint and metrics.csv, byte for byte, as a run never
# interrupted (the epoch it stopped in logs the means of all its steps).
# usage: interrupt_resume.sh EXAMPLE OUT_DIR INT|TERM EXIT_CODE "FLAGS"
set -u
exe=$1 out=$2 sig=$3 code=$4 flags=$5
rm -rf "$out" && mkdir -p "$out"
"$exe" $flags --out "$out/straight" > /dev/null || { echo "the straight run failed"; exit 1; }
"$exe" $flags --out "$out/interrupted" > "$out/interrupted.log" 2>&1 &
pid=$!
while [ ! -f "$out/interrupted/checkpoint.tsr" ]; do  # after the first epoch: mid-training
  kill -0 "$pid" 2> /dev/null || { echo "it finished before the signal"; exit 1; }
  sleep 0.02
done
kill "-$sig" "$pid"
wait "$pid"
status=$?
cat "$out/interrupted.log"
[ "$status" -eq "$code" ] || { echo "exit code $status, expected $code"; exit 1; }
grep -q "^interrupted by SIG$sig in epoch .*; continue with --resume $out/interrupted/checkpoint.tsr\$" "$out/interrupted.log" ||
  { echo "no line saying how to resume"; exit 1; }
"$exe" $flags --out "$out/interrupted" --resume "$out/interrupted/checkpoint.tsr" > /dev/null || { echo "resume failed"; exit 1; }
cmp "$out/straight/checkpoint.tsr" "$out/interrupted/checkpoint.tsr" && cmp "$out/straight/metrics.csv" "$out/interrupted/metrics.csv"
