#!/usr/bin/env bash
# Prints the path of DartLens's Python virtual environment (PyTorch 2.x with CUDA, transformers,
# Pillow, numpy, safetensors, sentencepiece: scripts/requirements-pip.txt), creating it when absent.
# It lives outside the clone, keyed by the pinned versions, so that every clone (CI's fresh one
# too) reuses it: ${DARTLENS_VENV_ROOT:-~/.cache/dartlens}/venv-<python>-<hash of the pins>.
# Exit status: 0 and the path on stdout when the venv is ready; 1 (message on stderr) when it
# cannot be made, e.g. PyPI unreachable. Progress goes to stderr.
#   scripts/venv.sh --if-present   prints the path only when the venv already exists (creates nothing)
set -euo pipefail
cd "$(dirname "$0")/.."
REQ=scripts/requirements-pip.txt
PY=${DARTLENS_PYTHON_BASE:-python3}
command -v "$PY" >/dev/null || { echo "venv: $PY not found (apt-get install python3 python3-venv)" >&2; exit 1; }
PYVER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
HASH=$(grep -v '^#' "$REQ" | sed '/^$/d' | sha256sum | cut -c1-12)
ROOT=${DARTLENS_VENV_ROOT:-$HOME/.cache/dartlens}
VENV="$ROOT/venv-py$PYVER-$HASH"
if [ -f "$VENV/.complete" ]; then echo "$VENV"; exit 0; fi
[ "${1:-}" = --if-present ] && exit 1
mkdir -p "$ROOT"
# One creator at a time (two clones or two builds may ask at once).
exec 9>"$ROOT/.venv.lock"
flock 9
if [ -f "$VENV/.complete" ]; then echo "$VENV"; exit 0; fi
rm -rf "$VENV"
echo "venv: creating $VENV (torch with CUDA is ~4 GB of wheels; a few minutes)" >&2
if ! "$PY" -m venv "$VENV" >&2; then
  echo "venv: '$PY -m venv' failed (apt-get install python3-venv)" >&2; rm -rf "$VENV"; exit 1
fi
start=$(date +%s)
if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQ" >&2; then
  echo "venv: pip install -r $REQ failed (is PyPI reachable?)" >&2; rm -rf "$VENV"; exit 1
fi
echo "venv: ready in $(( $(date +%s) - start )) s, $(du -sh "$VENV" | cut -f1)" >&2
touch "$VENV/.complete"
echo "$VENV"
