#!/usr/bin/env bash
# The GPU check: one prepared run for a machine with an NVIDIA GPU and no network.
#
#   scripts/gpu-check.sh [--out DIR] [--cpu] [--quick]
#
# Finds (or builds) dartlens-cli against this machine's PyTorch, then in one go:
#   1. fidelity: the live Hugging Face cases (tests/hf) with DartLens on --device cuda, f32 (CPU
#      tolerances) and f16 (stated tolerance, greedy tokens equal), when transformers is here;
#   2. DART and FastV kept sets on CUDA (f32 and f16) against CPU f32, on the 576-token preset;
#   3. `bench` on a random model with llava-1.5-7b-hf's exact geometry (4096 wide, 32 layers,
#      32 heads, 576 image tokens, F16), generated here: prefill, decode ms/token, DART and FastV
#      at 64 tokens against their FLOP bound, CUDA peak memory per method.
# Everything lands in DIR (default $OUT when set, else build-gpu-check): report.md (the one
# report file) plus the raw JSON/markdown each step wrote.
#
# Without a GPU (or with --cpu) it runs the same steps on the CPU up to the first CUDA call:
# --device cpu, f32, the 576-token preset instead of the 7B one, and says so in the report.
# --quick: fewer repetitions and tokens (what the CI test of this script uses).
#
# dartlens-cli is looked for in $DARTLENS_CLI, build-pip/bin, then a carried bundle
# (build-pip/gpu-bundle.tar.xz from scripts/gpu-bundle.sh: the binary plus the Debian libraries
# it needs, run against this machine's torch of the same release); failing all, it is built here
# (needs OpenCV, SentencePiece, nlohmann-json and CLI11 development files).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUTDIR=${OUT:-$ROOT/build-gpu-check}
FORCE_CPU=0
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUTDIR=$2; shift ;;
    --cpu) FORCE_CPU=1 ;;
    --quick) QUICK=1 ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=${GPU_CHECK_WORK:-$(mktemp -d /tmp/dartlens-gpu-check.XXXXXX)}
REPORT=$OUTDIR/report.md
FAILED=0
T0=$(date +%s)

say() { echo "gpu-check: $*" >&2; }
section() { printf '\n## %s\n\n' "$1" >>"$REPORT"; say "$1 ($(( $(date +%s) - T0 )) s)"; }
fail() { FAILED=$((FAILED + 1)); printf -- '- **FAILED**: %s\n' "$1" >>"$REPORT"; say "FAILED: $1"; }

# --- Python with torch (this machine's) -----------------------------------------------------------
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3 "$ROOT/.venv/bin/python"; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import torch' 2>/dev/null; then PY=$cand; break; fi
  done
  if [ -z "$PY" ] && [ -x "$ROOT/scripts/venv.sh" ]; then
    V=$("$ROOT/scripts/venv.sh" 2>/dev/null) && PY="$V/bin/python"
  fi
fi
[ -n "$PY" ] || { say "no python with torch found (set PYTHON)"; exit 1; }
TORCH_LIB=$("$PY" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
TORCH_VER=$("$PY" -c 'import torch; print(torch.__version__)')
NGPU=$("$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null || echo 0)
if [ "$FORCE_CPU" = 1 ] || [ "$NGPU" = 0 ]; then
  DEV=cpu; MODE="CPU dry run (no GPU$([ "$FORCE_CPU" = 1 ] && echo ': --cpu'))"
else
  DEV=cuda; MODE="GPU: $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))')"
fi

{
  echo "# DartLens GPU check"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ), host $(hostname), $(nproc) CPU cores"
  echo "- mode: $MODE"
  echo "- python: $PY, torch $TORCH_VER"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/- nvidia-smi: /'
} >"$REPORT"

# --- dartlens-cli ---------------------------------------------------------------------------------
section "Build"
CLI=${DARTLENS_CLI:-}
LIBPATH="$TORCH_LIB"
runnable() { LD_LIBRARY_PATH="$LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$1" --help >/dev/null 2>&1; }
if [ -z "$CLI" ] && [ -x build-pip/bin/dartlens-cli ]; then
  CLI=$ROOT/build-pip/bin/dartlens-cli
  runnable "$CLI" || CLI=""
fi
if [ -z "$CLI" ] && [ -f build-pip/gpu-bundle.tar.xz ]; then
  mkdir -p "$WORK/bundle" && tar -xJf build-pip/gpu-bundle.tar.xz -C "$WORK/bundle"
  LIBPATH="$TORCH_LIB:$WORK/bundle/lib"
  CLI=$WORK/bundle/bin/dartlens-cli
  if runnable "$CLI"; then
    echo "- carried bundle (built against $(cat "$WORK/bundle/TORCH_VERSION" 2>/dev/null)), run on torch $TORCH_VER" >>"$REPORT"
  else
    LD_LIBRARY_PATH="$LIBPATH" ldd "$CLI" | grep "not found" | sed 's/^/    /' >>"$REPORT"
    CLI=""
  fi
fi
if [ -z "$CLI" ]; then
  say "building dartlens-cli against $TORCH_VER"
  TP=$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  if cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DDARTLENS_BUILD_GUI=OFF -DDARTLENS_BUILD_TESTS=OFF \
       -DCMAKE_PREFIX_PATH="$TP" -DCMAKE_LIBRARY_PATH="$TORCH_LIB" >"$OUTDIR/build.log" 2>&1 &&
     cmake --build build-gpu -j "$(nproc)" --target dartlens-cli >>"$OUTDIR/build.log" 2>&1; then
    CLI=$ROOT/build-gpu/bin/dartlens-cli
    echo "- built here against torch $TORCH_VER" >>"$REPORT"
  else
    fail "no runnable dartlens-cli and the build failed (build.log): $(grep -m1 -iE 'error|could not' "$OUTDIR/build.log")"
    cat "$REPORT" >&2
    exit 1
  fi
fi
export LD_LIBRARY_PATH="$LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "- dartlens-cli: $CLI" >>"$REPORT"
printf -- '- links libtorch_cuda: %s\n' "$(ldd "$CLI" | grep -c 'libtorch_cuda' | sed 's/^0$/no/; s/^[1-9].*/yes/')" >>"$REPORT"

# One line when CUDA is asked for where there is none: the contract of --device cuda.
if [ "$DEV" = cpu ]; then
  msg=$("$CLI" run -m tests/data/hf-llava-tiny --image resources/sample.jpg -p x --device cuda 2>&1 >/dev/null)
  rc=$?
  printf -- '- `--device cuda` without a GPU: exit %s, %s line(s): `%s`\n' "$rc" "$(printf '%s\n' "$msg" | wc -l)" "$msg" >>"$REPORT"
  [ "$rc" -ne 0 ] || fail "--device cuda without a GPU exited 0"
fi

# --- 1. fidelity against live Hugging Face ------------------------------------------------------------
section "1. Fidelity against Hugging Face (tests/hf)"
if [ -f tests/hf/hf_oracle.py ] && "$PY" -c 'import transformers' 2>/dev/null; then
  for DT in f32 f16; do
    if [ "$DEV" = cpu ] && [ "$DT" = f16 ]; then
      echo "- f16: skipped (no f16 matmul on CPU; runs on the GPU)" >>"$REPORT"; continue
    fi
    LOG=$OUTDIR/hf-$DEV-$DT.log
    DARTLENS_HF_DEVICE=$DEV DARTLENS_HF_DTYPE=$DT HF_HUB_OFFLINE=1 OMP_NUM_THREADS=4 \
      timeout 900 "$PY" tests/hf/hf_oracle.py --cli "$CLI" --work "$WORK/hf-$DT" llava >"$LOG" 2>&1
    rc=$?
    printf -- '- DartLens on %s %s vs HF (CPU f32): exit %s\n' "$DEV" "$DT" "$rc" >>"$REPORT"
    grep -E '^\[(ok|FAIL)' "$LOG" | sed 's/^/    /' >>"$REPORT"
    [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || fail "hf fidelity $DEV $DT (hf-$DEV-$DT.log)"
  done
else
  echo "- skipped: tests/hf or transformers missing here" >>"$REPORT"
fi

# --- 2. kept sets: CUDA vs CPU f32 ------------------------------------------------------------------
section "2. DART / FastV kept sets on $DEV vs CPU f32 (576-token preset)"
SMALL=$WORK/llava-geom-small
"$CLI" make-model --preset llava-geom-small --out "$SMALL" --seed 0 >/dev/null || fail "make-model llava-geom-small"
Q="What objects are in this picture?"
runjson() {  # device dtype out.json
  "$CLI" run -m "$SMALL" --image resources/sample.jpg -p "$Q" -n 4 --compare none,dart,fastv --keep 64 \
    --device "$1" --dtype "$2" --json "$3" >/dev/null 2>>"$OUTDIR/keptsets.log"
}
runjson cpu f32 "$OUTDIR/kept-cpu-f32.json" || fail "run cpu f32"
VARIANTS="f32"
[ "$DEV" = cuda ] && VARIANTS="f32 f16"
for DT in $VARIANTS; do
  # On the CPU dry run the "other" run is a second CPU f32 run (repeatability, same steps).
  OTHER=$OUTDIR/kept-$DEV-$DT.json
  [ "$DEV" = cpu ] && OTHER=$OUTDIR/kept-cpu-f32-again.json
  runjson "$DEV" "$DT" "$OTHER" || fail "run $DEV $DT"
  "$PY" - "$OUTDIR/kept-cpu-f32.json" "$OTHER" "$DEV $DT" >>"$REPORT" <<'EOF' || fail "kept-set comparison $DEV $DT"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ra = {r["pruning"]["method"]: r for r in a["runs"]}
rb = {r["pruning"]["method"]: r for r in b["runs"]}
for m in ("dart", "fastv"):
    ka, kb = set(ra[m]["pruning"]["kept_image_indices"]), set(rb[m]["pruning"]["kept_image_indices"])
    same = ka == kb
    print(f"- {m} on {sys.argv[3]}: {len(kb)} kept, overlap with CPU f32 {len(ka & kb)}/{len(ka)}"
          f"{' (identical)' if same else ''}; pivots {rb[m]['pruning'].get('pivot_image_indices')}"
          f" vs {ra[m]['pruning'].get('pivot_image_indices')}")
    if sys.argv[3].endswith("f32") and not same and m == "fastv":
        sys.exit(1)
EOF
done

# --- 3. bench on llava-1.5-7b geometry --------------------------------------------------------------
if [ "$DEV" = cuda ]; then PRESET=llava-1.5-7b-geom; DT=f16; else PRESET=llava-geom-small; DT=f32; fi
REPS=3; NP=16
[ "$QUICK" = 1 ] && { REPS=1; NP=4; }
section "3. bench: $PRESET, $DEV $DT, none / DART / FastV at B = 64"
BIG=$WORK/bench-$PRESET
t=$(date +%s)
"$CLI" make-model --preset "$PRESET" --out "$BIG" --seed 0 >/dev/null || fail "make-model $PRESET"
echo "- generated $PRESET in $(( $(date +%s) - t )) s ($(du -sh "$BIG" | cut -f1))" >>"$REPORT"
B_JSON=$OUTDIR/bench-$PRESET-$DEV-$DT.json
if "$CLI" bench -m "$BIG" --device "$DEV" --dtype "$DT" --method none,dart,fastv --keep 64 -r "$REPS" --warmup 1 \
     -n "$NP" -o json --out "$B_JSON" 2>>"$OUTDIR/bench.log"; then
  "$PY" - "$B_JSON" >>"$REPORT" <<'EOF' || fail "bench summary"
import json, sys
j = json.load(open(sys.argv[1]))
mib = lambda b: f"{b / 2**20:.0f}" if b else "-"
print(f"{j['model']}: {j['device']} {j['dtype']}, S = {j['sequence_length']} ({j['image_tokens']} image tokens), "
      f"reps {j['reps']}, n = {j['n_predict']}; vanilla prefill {j['vanilla_prefill_gflops']:.0f} GFLOP/s = "
      f"{j['fraction_of_gemm_peak']:.2f} of the GEMM rate on the same shapes ({j['gemm_reference_gflops']:.0f} GFLOP/s)\n")
print("| method | B | kept | prefill ms | speedup | FLOP ratio | efficiency | select ms | decode ms/tok | "
      "TTFT ms | KV alloc MiB | peak RSS MiB | device peak MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in j["results"]:
    print(f"| {r['method']} | {r['budget']} | {r['kept']} | {r['prefill_ms']:.2f} | {r['prefill_speedup']:.2f} | "
          f"{r['flop_ratio']:.2f} | {r['efficiency']:.2f} | {r['selection_ms']:.2f} | {r['decode_ms_per_token']:.2f} | "
          f"{r['ttft_ms']:.1f} | {mib(r['kv_cache_allocated_bytes'])} | {mib(r['peak_rss_bytes'])} | {mib(r['device_peak_bytes'])} |")
EOF
else
  fail "bench $PRESET (bench.log: $(tail -1 "$OUTDIR/bench.log"))"
fi
rm -rf "$BIG"

section "Summary"
echo "- $FAILED failure(s); $(( $(date +%s) - T0 )) s in all; files in $OUTDIR" >>"$REPORT"
[ -n "${GPU_CHECK_WORK:-}" ] || rm -rf "$WORK"
cat "$REPORT"
[ "$FAILED" -eq 0 ]
