#!/usr/bin/env bash
# Runs `dartlens-cli eval` as a Slurm job array, one shard per task, then merges the shards.
#
#   scripts/slurm/submit-eval.sh --shards N --out OUTDIR [--cpu] [--cli PATH] [--max-running K]
#                                [sbatch options...] -- <eval arguments without --shard/--out>
#
#   --shards N        array tasks 0..N-1; task I-1 runs `eval --shard I/N --resume --out OUTDIR/shard-I`
#   --out OUTDIR      shard-I/, logs/ and, once every shard succeeded, the merged samples_*.jsonl and
#                     results.json/.csv/.md (what one unsharded run writes). On a shared filesystem.
#   --cpu             no GPU: drops eval-array.sbatch's `#SBATCH --gres=gpu:1`
#   --cli PATH        the dartlens-cli to run (default: $DARTLENS_CLI, else this checkout's
#                     build/bin/dartlens-cli, else dartlens-cli on PATH); must exist on the nodes
#   --max-running K   at most K array tasks at once (--array=0-<N-1>%K)
#   sbatch options    e.g. -p gpu -A myproj --time=02:00:00 -c 8 --gres=gpu:a100:1; they apply to the
#                     array tasks, and to the merge job except the GPU ones (--gres, --gpus*, -G)
#
# Submits the array, then a merge job (`eval-merge OUTDIR/shard-1 .. shard-N --out OUTDIR`) with
# --dependency=afterok:<array job>. Prints `array_job=<id>` and `merge_job=<id>` on stdout.
# Running the same command again resumes: each shard keeps the samples already in its directory.
# Environment: DARTLENS_SETUP=FILE is sourced by every job before it runs dartlens-cli (modules,
# venv); otherwise the jobs get this shell's environment. See scripts/slurm/README.md.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "submit-eval: $*" >&2; exit 2; }

shards="" out="" cpu=0 cli=${DARTLENS_CLI:-} max_running=""
sb=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    --shards) shards=${2:-}; shift 2 || die "--shards needs a count" ;;
    --shards=*) shards=${1#--shards=}; shift ;;
    --out) out=${2:-}; shift 2 || die "--out needs a directory" ;;
    --out=*) out=${1#--out=}; shift ;;
    --cpu) cpu=1; shift ;;
    --cli) cli=${2:-}; shift 2 || die "--cli needs a path" ;;
    --cli=*) cli=${1#--cli=}; shift ;;
    --max-running) max_running=${2:-}; shift 2 || die "--max-running needs a count" ;;
    --max-running=*) max_running=${1#--max-running=}; shift ;;
    -a|--array|--array=*|-a*) die "the array is --shards N (and --max-running K), not $1" ;;
    -d|--dependency|--dependency=*) die "$1: not supported (the merge job depends on the array)" ;;
    *) sb+=("$1"); shift ;;
  esac
done
eval_args=("$@")
case "$shards" in ''|*[!0-9]*|0) die "give --shards N (N >= 1); usage: submit-eval.sh --shards N --out OUTDIR [--cpu] [sbatch options] -- <eval arguments>" ;; esac
[ -n "$out" ] || die "give --out OUTDIR"
[ ${#eval_args[@]} -gt 0 ] || die "no eval arguments: put them after --, e.g. -- --task pope --questions Q.jsonl -m MODEL"
case "$max_running" in ''|*[!0-9]*) [ -z "$max_running" ] || die "--max-running needs a count" ;; esac
for a in "${eval_args[@]}"; do
  case "$a" in --shard|--shard=*|--out|--out=*|--resume) die "'$a' among the eval arguments: the array sets --shard, --out and --resume itself" ;; esac
done
command -v sbatch >/dev/null || die "sbatch not found (load the Slurm module?)"

if [ -z "$cli" ]; then
  if [ -x "$here/../../build/bin/dartlens-cli" ]; then cli="$here/../../build/bin/dartlens-cli"
  else cli=$(command -v dartlens-cli || true); fi
fi
[ -n "$cli" ] && [ -x "$cli" ] || die "no dartlens-cli: give --cli PATH or set DARTLENS_CLI"
cli=$(realpath "$cli")
out=$(realpath -m "$out")
mkdir -p "$out/logs"

# The array script: a copy in OUTDIR/logs (what ran), without the GPU request for --cpu.
script="$out/logs/eval-array.sbatch"
if [ $cpu = 1 ]; then
  sed '/^#SBATCH[[:space:]]\{1,\}--gres/d' "$here/eval-array.sbatch" >"$script"
else
  cp "$here/eval-array.sbatch" "$script"
fi

has_output=0
merge_sb=()
skip=0
for o in "${sb[@]}"; do
  if [ $skip = 1 ]; then skip=0; continue; fi
  case "$o" in
    -o|--output|--output=*|-o*) has_output=1 ;;
  esac
  case "$o" in
    --gres|--gpus|--gpus-per-node|--gpus-per-task|--gpus-per-socket|--cpus-per-gpu|--mem-per-gpu|--gpu-bind|--gpu-freq|-G) skip=1 ;;
    --gres=*|--gpus=*|--gpus-per-*=*|--cpus-per-gpu=*|--mem-per-gpu=*|--gpu-bind=*|--gpu-freq=*|-G*) ;;
    *) merge_sb+=("$o") ;;
  esac
done
log_opts=()
[ $has_output = 1 ] || log_opts=(--output="$out/logs/eval-%A_%a.out")
range="0-$((shards - 1))"
[ -n "$max_running" ] && range+="%$max_running"

array_id=$(sbatch --parsable --array="$range" "${log_opts[@]}" "${sb[@]}" \
                  "$script" --cli "$cli" --shards "$shards" "$out" "${eval_args[@]}") ||
  { echo "submit-eval: sbatch of the array failed" >&2; exit 1; }
array_id=${array_id%%;*}

# The merge job: a small script of its own, also kept in OUTDIR/logs.
merge="$out/logs/merge.sbatch"
dirs=()
for ((i = 1; i <= shards; i++)); do dirs+=("$out/shard-$i"); done
{
  echo '#!/usr/bin/env bash'
  echo '#SBATCH --job-name=dartlens-merge'
  echo 'set -euo pipefail'
  echo 'if [ -n "${DARTLENS_SETUP:-}" ]; then . "$DARTLENS_SETUP"; fi'
  printf 'exec %q eval-merge' "$cli"
  printf ' %q' "${dirs[@]}"
  printf ' --out %q\n' "$out"
} >"$merge"
merge_log=()
[ $has_output = 1 ] || merge_log=(--output="$out/logs/merge-%j.out")
merge_id=$(sbatch --parsable --dependency="afterok:$array_id" --kill-on-invalid-dep=yes "${merge_log[@]}" \
                  "${merge_sb[@]}" "$merge") || {
  echo "submit-eval: the array job $array_id is submitted but the merge job failed to submit; merge by hand" \
       "when it is done: sbatch --dependency=afterok:$array_id $merge  (or run: bash $merge)" >&2
  echo "array_job=$array_id"
  exit 1
}
merge_id=${merge_id%%;*}

echo "array_job=$array_id"
echo "merge_job=$merge_id"
cat >&2 <<EOF
submit-eval: $shards shards as array job $array_id ($([ $cpu = 1 ] && echo "CPU only" || echo "a GPU each")), then merge job $merge_id
  shards: $out/shard-1 .. shard-$shards      merged: $out/results.md, samples_*.jsonl
  logs:   $out/logs/                         watch:  squeue -j $array_id,$merge_id
EOF
