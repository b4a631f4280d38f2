#!/bin/sh
# What the example programs do with hostile but realistic command lines: one line on stderr and
# exit 2, nothing lost, one run per output folder, and --resume telling what it does.
# usage: reliability.sh CASE EXAMPLES_DIR OUT_DIR
set -u
case_name=$1 B=$2 out=$3
rm -rf "$out" && mkdir -p "$out"
small="--samples 64 --image-size 16 --batch 16 --threads 1"
fail() { echo "FAILED: $*"; exit 1; }

# run EXPECTED_STATUS PROGRAM ARGS...: stdout to $out/stdout, stderr to $out/stderr
run() {
  expected=$1; shift
  "$@" > "$out/stdout" 2> "$out/stderr"
  status=$?
  cat "$out/stdout" "$out/stderr"
  [ "$status" -eq "$expected" ] || fail "exit status $status, expected $expected: $*"
}
# one_line TEXT: the error is one line, the last on stderr (above it only the progress lines of
# the epochs that ran), holding TEXT
one_line() {
  [ "$(grep -cE '^(dcgan|cgan|vae): ' "$out/stderr")" -eq 1 ] || fail "not exactly one error line"
  tail -n 1 "$out/stderr" | grep -qE '^(dcgan|cgan|vae): ' || fail "the error is not the last line"
  grep -qF -- "$1" "$out/stderr" || fail "stderr does not say '$1'"
}

case "$case_name" in
  batch_larger_than_data)  # the dataset is smaller than one batch
    for program in dcgan cgan; do
      run 2 "$B/$program" --samples 64 --image-size 16 --batch 100000000 --out "$out/$program"
      one_line "the 64 images to train on make no batch of --batch 100000000"
    done ;;
  nan_names_epoch_and_step)  # the GAN's NaN stop says where, and keeps the checkpoint
    run 2 "$B/dcgan" $small --epochs 4 --lr 1e20 --out "$out/run"
    one_line "dcgan: epoch 1, step "
    grep -q "is NaN\|is inf\|is -inf" "$out/stderr" || fail "the loss is not named" ;;
  one_run_per_folder)  # a second run into the same --out stops at once, naming the first
    "$B/dcgan" --samples 4096 --image-size 16 --batch 16 --threads 1 --epochs 50 --out "$out/run" > /dev/null 2>&1 &
    first=$!
    while [ ! -s "$out/run/.lock" ]; do sleep 0.02; done
    run 2 "$B/dcgan" $small --epochs 1 --out "$out/run"
    kill "$first"; wait "$first"
    one_line "dcgan: --out: another run (PID $first) is writing into $out/run" ;;
  overwrite)  # a run without --resume into a folder holding a checkpoint refuses unless --overwrite
    run 0 "$B/dcgan" $small --epochs 1 --out "$out/run"
    run 2 "$B/dcgan" $small --epochs 1 --out "$out/run"
    one_line "already holds a run (checkpoint.tsr); continue it with --resume $out/run/checkpoint.tsr, or start afresh with --overwrite"
    run 0 "$B/dcgan" $small --epochs 1 --out "$out/run" --overwrite ;;
  resume_says_what_it_does)  # explicit flags win and are named; kept ones are refused
    run 0 "$B/dcgan" $small --epochs 1 --out "$out/run"
    touch "$out/run/checkpoint.tsr.tmp.Ab12Cd"  # a write cut short by kill -9
    run 0 "$B/dcgan" $small --epochs 2 --lr 0.001 --out "$out/run" --resume "$out/run/checkpoint.tsr"
    grep -qxF "resume: --lr 0.001 (the checkpoint's run used 0)" "$out/stdout" || fail "the new --lr is not said"  # 0: the recipe's
    [ ! -e "$out/run/checkpoint.tsr.tmp.Ab12Cd" ] || fail "the stale temporary file is still there"
    run 2 "$B/dcgan" $small --epochs 3 --seed 7 --out "$out/run" --resume "$out/run/checkpoint.tsr"
    one_line "--seed 7: the checkpoint's run used 0, which a resumed run keeps"
    run 0 "$B/dcgan" $small --epochs 2 --out "$out/run" --resume "$out/run/checkpoint.tsr"
    grep -q "^nothing to train: $out/run/checkpoint.tsr is at epoch 2 and --epochs is 2" "$out/stdout" || fail "no 'nothing to train'"
    ! grep -q "^samples: " "$out/stdout" || fail "lists output files it did not write" ;;
  memory_budget)  # past the budget: one line naming the request and the budget, exit 2
    run 2 env TESSERA_MEMORY_LIMIT=48M "$B/dcgan" --samples 64 --image-size 128 --batch 64 --epochs 1 --threads 1 --out "$out/run"
    one_line "out of memory budget: a tensor of shape"
    grep -qF "budget of 48.0 MB (TESSERA_MEMORY_LIMIT=48M)" "$out/stderr" || fail "the budget is not named"
    run 2 "$B/dcgan" $small --latent 1000000000 --epochs 1 --out "$out/latent"
    one_line "out of memory budget"
    # without a budget the system refuses 2 TB at once (where it does not overcommit blindly)
    if [ "$(cat /proc/sys/vm/overcommit_memory 2> /dev/null)" != 1 ]; then
      run 2 env TESSERA_MEMORY_LIMIT=none "$B/dcgan" $small --latent 1000000000 --epochs 1 --out "$out/unbudgeted"
      one_line "out of memory"
    fi ;;
  nonfinite_optimizer_state)  # a divergence that keeps the loss finite stops too; the checkpoint stays finite
    run 2 "$B/vae" --batch 16 --samples 256 --epochs 6 --image-size 16 --lr 0.07 --threads 1 --out "$out/run"
    one_line "training stopped without saving" ;;
  *) fail "unknown case $case_name" ;;
esac
echo "OK: $case_name"
