#!/bin/sh
# Gray images end to end, and the sngan recipe through the example programs.
# usage: channels_and_recipes.sh CASE EXAMPLES_DIR OUT_DIR
set -u
case_name=$1 B=$2 out=$3
rm -rf "$out" && mkdir -p "$out"
tiny="--samples 64 --image-size 16 --batch 16 --epochs 1 --threads 1"
fail() { echo "FAILED: $*"; exit 1; }
# png_color_type FILE: the PNG's IHDR colour type (0 gray, 2 RGB)
png_color_type() { od -An -tu1 -j25 -N1 "$1" | tr -d ' '; }

case "$case_name" in
  gray)  # --channels 1: one channel in, and gray PNGs out
    "$B/dcgan" $tiny --channels 1 --out "$out/dcgan" > "$out/dcgan.log" || fail "dcgan --channels 1"
    grep -q "Conv2DTranspose(64, 1," "$out/dcgan.log" || fail "dcgan's G does not end in one channel"
    [ "$(png_color_type "$out/dcgan/samples.png")" = 0 ] || fail "dcgan's samples are not a gray PNG"
    "$B/cgan" $tiny --channels 1 --out "$out/cgan" > /dev/null || fail "cgan --channels 1"
    [ "$(png_color_type "$out/cgan/samples.png")" = 0 ] || fail "cgan's samples are not a gray PNG"
    "$B/vae" $tiny --latent 8 --channels 1 --out "$out/vae" > /dev/null || fail "vae --channels 1"
    [ "$(png_color_type "$out/vae/samples.png")" = 0 ] || fail "vae's samples are not a gray PNG"
    "$B/texture_classifier" --samples 160 --image-size 16 --batch 16 --epochs 1 --threads 1 --channels 1 --out "$out/tc" > /dev/null ||
      fail "texture_classifier --channels 1"
    "$B/texture_autoencoder" --samples 160 --image-size 32 --batch 16 --epochs 1 --test-images 40 --threads 1 --channels 1 \
      --out "$out/ae" > /dev/null || fail "texture_autoencoder --channels 1"
    "$B/dcgan" $tiny --channels 2 --out "$out/bad" > /dev/null 2> "$out/bad.err" && fail "--channels 2 accepted"
    grep -q "^dcgan: --channels: expected 0, 1 or 3, got 2$" "$out/bad.err" || fail "--channels 2 not refused in one line" ;;
  sngan)  # the recipe end to end: SN's records in the checkpoint, and --resume continuing it bit for bit
    for program in dcgan cgan; do
      "$B/$program" $tiny --recipe sngan --epochs 2 --out "$out/$program" > "$out/$program.log" || fail "$program --recipe sngan"
      sed -n '/(discriminator)/,$p' "$out/$program.log" | grep -q "BatchNorm" && fail "$program's sngan D has a BatchNorm"
      grep -aq "D/0.weight_orig\|D/body.0.weight_orig" "$out/$program/checkpoint.tsr" || fail "$program: no spectral norm in D"
      "$B/$program" $tiny --recipe sngan --out "$out/$program-half" > /dev/null || fail "$program: one epoch"
      "$B/$program" $tiny --recipe sngan --epochs 2 --out "$out/$program-half" --resume "$out/$program-half/checkpoint.tsr" > /dev/null ||
        fail "$program: --resume"
      cmp "$out/$program/checkpoint.tsr" "$out/$program-half/checkpoint.tsr" || fail "$program: resumed sngan differs"
    done ;;
  *) fail "unknown case $case_name" ;;
esac
echo "OK: $case_name"
