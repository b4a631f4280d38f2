#!/bin/sh
# --recipe dcgan is the training GANs had before recipes, bit for bit: dcgan and cgan with it
# write the same weights and optimizer state as without the flag, and, on the machine kind the
# pre-recipe digests were recorded on (GCC 12's -march=native there: znver3 with AVX-512), the
# same as the code before recipes wrote (commit 6fb420c).
# usage: recipe_dcgan.sh EXAMPLES_DIR OUT_DIR MACHINE (MACHINE: znver3-avx512, or anything else)
set -u
B=$1 out=$2 machine=$3
here=$(dirname "$0")
rm -rf "$out" && mkdir -p "$out"
flags="--samples 128 --image-size 16 --batch 16 --epochs 2 --threads 1"
digest() { /usr/bin/python3 "$here/checkpoint_records.py" "$1/checkpoint.tsr"; }
for program in dcgan cgan; do
  "$B/$program" $flags --recipe dcgan --out "$out/$program-recipe" > /dev/null || { echo "$program --recipe dcgan failed"; exit 1; }
  "$B/$program" $flags --out "$out/$program-default" > /dev/null || { echo "$program failed"; exit 1; }
  [ "$(digest "$out/$program-recipe")" = "$(digest "$out/$program-default")" ] || { echo "$program: --recipe dcgan differs from the default"; exit 1; }
done
if [ "$machine" != znver3-avx512 ]; then
  echo "the pre-recipe digests were recorded with -march=native = znver3 + AVX-512; here: $machine (not compared)"
  exit 0
fi
[ "$(digest "$out/dcgan-recipe")" = e376a5de8d6ac363bdda7d4813ca1280aecec3e6c7d172b03cc33c9d0c1b973b ] || { echo "dcgan differs from before recipes"; exit 1; }
[ "$(digest "$out/cgan-recipe")" = 73984c8328f102271e7a79725e13bd1e516e0b0d324cafa7a884bca2b451d77f ] || { echo "cgan differs from before recipes"; exit 1; }
echo "OK: --recipe dcgan writes the checkpoints of before recipes, bit for bit"
