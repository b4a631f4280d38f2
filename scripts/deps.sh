#!/usr/bin/env bash
# Install tessera's build dependencies on Debian 12. Idempotent: touches apt only if
# something is missing. Safe to run as non-root when everything is already present.
# Extra package names given as arguments are installed too (scripts/fuzz.sh adds clang's).
set -euo pipefail

packages=(g++ cmake ninja-build libeigen3-dev libstb-dev catch2 pkg-config python3-numpy "$@")

missing=()
for pkg in "${packages[@]}"; do
    # `dpkg -s` also succeeds for removed-but-not-purged packages, so check the status line.
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "deps.sh: all dependencies present"
    exit 0
fi

echo "deps.sh: missing packages: ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: not root; install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
