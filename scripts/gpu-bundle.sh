#!/usr/bin/env bash
# Packs the PyTorch build's dartlens-cli for a GPU machine that has torch (same release) but not
# Debian's OpenCV / SentencePiece / OpenBLAS libraries: build-pip/gpu-bundle.tar.xz holds
# bin/dartlens-cli (stripped), bin/libdartlens_spm.so and lib/ with every shared library they
# load except torch's own, CUDA's and the C runtime's (taken from the target machine).
# scripts/gpu-check.sh unpacks it when build-pip/bin/dartlens-cli does not run there. Carry
# `build-pip/gpu-bundle.tar.xz` with the device tool (its limit: 64 MiB with the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build-pip}
[ -x "$BUILD/bin/dartlens-cli" ] || { echo "gpu-bundle: build $BUILD first (scripts/setup.sh --torch pip)" >&2; exit 1; }
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib"
strip -o "$STAGE/bin/dartlens-cli" "$BUILD/bin/dartlens-cli"
strip -o "$STAGE/bin/libdartlens_spm.so" "$BUILD/bin/libdartlens_spm.so"
# Libraries to leave to the target: torch/CUDA (its own torch), glibc, the C++ runtime, GPU driver.
SKIP='/(torch|nvidia)/|lib(c|m|dl|rt|pthread|gcc_s|stdc\+\+|cuda|nvidia-[a-z]+)\.so|ld-linux'
for f in "$STAGE/bin/dartlens-cli" "$STAGE/bin/libdartlens_spm.so"; do
  ldd "$f" | awk '/=> \// {print $3}'
done | sort -u | grep -Ev "$SKIP" | while read -r lib; do cp -L "$lib" "$STAGE/lib/"; done
python3 - "$BUILD/CMakeCache.txt" >"$STAGE/TORCH_VERSION" <<'PY' || true
import re, sys
for line in open(sys.argv[1]):
    m = re.match(r"Torch_DIR:PATH=(.*)", line)
    if m: print(m.group(1))
PY
tar -cJf "$BUILD/gpu-bundle.tar.xz" -C "$STAGE" .
echo "gpu-bundle: $BUILD/gpu-bundle.tar.xz: $(du -h "$BUILD/gpu-bundle.tar.xz" | cut -f1) ($(ls "$STAGE/lib" | wc -l) libraries, $(du -sh "$STAGE" | cut -f1) unpacked)" >&2
