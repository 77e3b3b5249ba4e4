#!/usr/bin/env bash
# End-to-end test of scripts/slurm (ctest: slurm_eval_array, label slurm) against a real Slurm:
# starts a private munged and a private single-node Slurm cluster (slurmctld + slurmd on localhost,
# generated slurm.conf, free ports, every file under SCRATCH), runs submit-eval.sh --shards 3 --cpu
# on a tiny random model and 6 scenes, waits for the array and the merge job, then checks that the
# merged output is what one unsharded local `eval` writes (timing fields aside). Then it cuts one
# shard short as a kill would and submits again, without --cpu (the node has a pretend GPU): the
# tasks must resume, not redo, and the merge must come out the same. Tears everything down on exit. Needs root (slurmd launches the jobs) and the Debian packages slurm-wlm and munge
# (scripts/setup.sh installs them); without them it prints one line and exits 77 (skipped).
#
#   tests/slurm/slurm_e2e.sh DARTLENS_CLI SCRATCH_DIR
set -uo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
[ $# -eq 2 ] || { echo "usage: $0 DARTLENS_CLI SCRATCH_DIR" >&2; exit 2; }
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cli=$(realpath "$1")
scratch=$(realpath -m "$2")
[ -x "$cli" ] || { echo "slurm_e2e: $cli is not executable" >&2; exit 2; }

missing=()
for b in slurmctld slurmd munged munge sbatch squeue scontrol scancel sinfo python3; do
  command -v "$b" >/dev/null || missing+=("$b")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "SKIP: no ${missing[*]} (install the Debian packages slurm-wlm munge; scripts/setup.sh does)"
  exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: needs root (slurmd must run as root to launch jobs); CI runs it as root"
  exit 77
fi

t_start=$(date +%s)
log() { echo "slurm_e2e [$(($(date +%s) - t_start)) s]: $*" >&2; }
fail() { echo "slurm_e2e: FAILED: $*" >&2; exit 1; }

# Leftovers of an earlier run that was killed before its teardown: stop its daemons (only
# processes whose command line names that run's files), then start clean.
kill_pidfile() {  # kill_pidfile FILE MARKER: TERM, then KILL, the process in FILE if its cmdline has MARKER
  local f=$1 marker=$2 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null) || return 0
  case "$pid" in ''|*[!0-9]*) return 0 ;; esac
  rm -f "$f"
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$marker" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}
stop_all() {  # stop_all RUNTIME_DIR CONF
  local rt=$1 conf=$2
  kill_pidfile "$rt/slurmd.pid.own" "$conf"
  kill_pidfile "$rt/slurmctld.pid.own" "$conf"
  kill_pidfile "$rt/munged.pid.own" "$rt/munge.socket.2"
}
if [ -f "$scratch/runtime-dir" ]; then
  old_rt=$(cat "$scratch/runtime-dir")
  stop_all "$old_rt" "$scratch/slurm.conf"
  case "$old_rt" in /tmp/dlslurm.*) rm -rf "$old_rt" ;; esac
fi
rm -rf "$scratch"
mkdir -p "$scratch/log" "$scratch/state" || fail "cannot create $scratch"
chmod 755 "$scratch"
# Unix sockets (munge's, slurmstepd's in the spool) must fit in 108 bytes: a long scratch path
# gets its runtime dir under /tmp.
if [ ${#scratch} -le 60 ]; then rt="$scratch/run"; mkdir -p "$rt"; else rt=$(mktemp -d /tmp/dlslurm.XXXXXX); fi
chmod 755 "$rt"
echo "$rt" >"$scratch/runtime-dir"
mkdir -p "$rt/spool"
conf="$scratch/slurm.conf"

# No outer Slurm job's or user's settings may leak into this cluster's clients.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SALLOC|SRUN|SQUEUE|SINFO|SCANCEL)_')

array_id="" merge_id=""
teardown() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$array_id$merge_id" ] && [ -f "$rt/slurmctld.pid.own" ]; then
    # shellcheck disable=SC2086  # either may be empty
    scancel $array_id $merge_id 2>/dev/null || true
    for _ in $(seq 25); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  stop_all "$rt" "$conf"
  case "$rt" in /tmp/dlslurm.*) rm -rf "$rt" ;; esac
  log "torn down (exit $rc)"
  exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

dump_logs() {
  local f
  for f in "$scratch"/log/*.log "$scratch"/out/logs/*.out; do
    [ -f "$f" ] || continue
    echo "----- $f (last 40 lines) -----" >&2
    tail -n 40 "$f" >&2
  done
}

# --- munge: a private munged on its own socket, with the package's key (or a fresh one). -------
if [ -r /etc/munge/munge.key ]; then
  cp /etc/munge/munge.key "$rt/munge.key"
else
  mungekey --create --keyfile="$rt/munge.key" 2>/dev/null ||
    dd if=/dev/urandom of="$rt/munge.key" bs=1024 count=1 status=none
fi
chmod 600 "$rt/munge.key"
sock="$rt/munge.socket.2"
munged --foreground --force --socket="$sock" --key-file="$rt/munge.key" --log-file="$scratch/log/munged.log" \
       --pid-file="$rt/munged.pid" --seed-file="$rt/munged.seed" </dev/null >>"$scratch/log/munged.log" 2>&1 &
echo $! >"$rt/munged.pid.own"
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
munge -S "$sock" -n 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1 ||
  { dump_logs; fail "munged did not come up on $sock"; }

# --- slurm.conf: one node (this host), one partition, no cgroups, no accounting. ---------------
node=$(hostname -s)
ncpu=$(nproc)
read -r port_ctld port_d < <(python3 -c '
import socket
s = [socket.socket(), socket.socket()]
for x in s: x.bind(("", 0))
print(*(x.getsockname()[1] for x in s))')
[ -n "$port_d" ] || fail "no free ports"
cat >"$conf" <<EOF
# Generated by tests/slurm/slurm_e2e.sh: a private single-node cluster for this test only.
ClusterName=dartlens-test
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port_ctld
SlurmdPort=$port_d
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
StateSaveLocation=$scratch/state
SlurmdSpoolDir=$rt/spool
SlurmctldPidFile=$rt/slurmctld.pid
SlurmdPidFile=$rt/slurmd.pid
SlurmctldLogFile=$scratch/log/slurmctld.log
SlurmdLogFile=$scratch/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$ncpu RealMemory=256 Gres=gpu:1 State=UNKNOWN
PartitionName=dltest Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
# A pretend GPU (/dev/null; eval runs with --device cpu): lets the default submission, which asks
# for a GPU per task, be scheduled here too.
echo "NodeName=$node Name=gpu File=/dev/null" >"$scratch/gres.conf"
# slurmd loads a cgroup plugin even with proctrack/linuxproc and task/none; on a cgroup v2 host the
# autodetected cgroup/v2 wants systemd/dbus (absent in containers) and slurmd fails to start.
# cgroup/v1 only reads what is mounted, and nothing here uses cgroups.
echo "CgroupPlugin=cgroup/v1" >"$scratch/cgroup.conf"
export SLURM_CONF="$conf"

slurmctld -D -c -f "$conf" </dev/null >>"$scratch/log/slurmctld.stderr.log" 2>&1 &
echo $! >"$rt/slurmctld.pid.own"
for _ in $(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
scontrol ping 2>/dev/null | grep -q UP || { dump_logs; fail "slurmctld did not come up (port $port_ctld)"; }
slurmd -D -f "$conf" -N "$node" </dev/null >>"$scratch/log/slurmd.stderr.log" 2>&1 &
echo $! >"$rt/slurmd.pid.own"
state=""
for _ in $(seq 150); do
  state=$(sinfo -h -N -n "$node" -o %T 2>/dev/null | head -n1)
  [ "$state" = idle ] && break
  sleep 0.2
done
if [ "$state" != idle ]; then
  scontrol show node "$node" >&2
  dump_logs
  fail "node $node is '$state', not idle"
fi
log "slurm up: node $node ($ncpu CPUs), ports $port_ctld/$port_d, conf $conf"

# --- the data: tiny random model (16 image tokens, image size 56) and 6 scenes. ----------------
"$cli" make-model --preset tiny --out "$scratch/model" >"$scratch/log/make-model.log" 2>&1 ||
  { cat "$scratch/log/make-model.log" >&2; fail "make-model"; }
"$cli" scenes --count 6 --seed 3 --out "$scratch/scenes" --size 112x112 >"$scratch/log/scenes.log" 2>&1 ||
  { cat "$scratch/log/scenes.log" >&2; fail "scenes"; }
# shellcheck disable=SC2054  # none,dart is one argument
eval_args=(--task pope --questions "$scratch/scenes/questions.jsonl" -m "$scratch/model"
           --method none,dart --keep 8 -n 4 -t 1 --device cpu)

# --- through Slurm: 3 array tasks + the merge job. ----------------------------------------------
out="$scratch/out"
cd "$scratch" || fail "cd $scratch"
job_state() { scontrol -o show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort -u | tr '\n' ' '; }
submit_and_wait() {  # submit_and_wait [--cpu]: the 3-shard array + merge; waits for both to complete
  local submit_out deadline mstate astates ntasks gpus want_gpus
  submit_out=$(bash "$src/scripts/slurm/submit-eval.sh" --shards 3 "$@" --cli "$cli" --out "$out" \
                 -c 1 --time=10 -- "${eval_args[@]}") || { dump_logs; fail "submit-eval.sh failed"; }
  array_id=$(sed -n 's/^array_job=//p' <<<"$submit_out")
  merge_id=$(sed -n 's/^merge_job=//p' <<<"$submit_out")
  [ -n "$array_id" ] && [ -n "$merge_id" ] || fail "submit-eval.sh printed no job ids: $submit_out"
  log "submitted array job $array_id and merge job $merge_id"
  deadline=$(($(date +%s) + 300))
  while :; do
    mstate=$(job_state "$merge_id")
    case "$mstate" in
      "COMPLETED ") break ;;
      *FAILED*|*CANCELLED*|*TIMEOUT*|*NODE_FAIL*|*OUT_OF_MEMORY*|*BOOT_FAIL*|*DEADLINE*|*PREEMPTED*) break ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then mstate="timed out (last state: $mstate)"; break; fi
    sleep 1
  done
  astates=$(job_state "$array_id")
  if [ "$mstate" != "COMPLETED " ] || [ "$astates" != "COMPLETED " ]; then
    scontrol show job "$array_id" >&2
    scontrol show job "$merge_id" >&2
    sinfo -N -l >&2
    dump_logs
    fail "array job $array_id: ${astates:-gone}; merge job $merge_id: ${mstate:-gone}"
  fi
  ntasks=$(scontrol -o show job "$array_id" | grep -c 'ArrayTaskId=')
  [ "$ntasks" -eq 3 ] || fail "array job $array_id has $ntasks tasks, not 3"
  # GPU requests: one per array task unless --cpu; never for the merge job.
  want_gpus=3
  [ "${1:-}" = --cpu ] && want_gpus=0
  gpus=$(scontrol -o show job "$array_id" | grep -c 'TresPerNode=gres:gpu:1')
  [ "$gpus" -eq "$want_gpus" ] || fail "array job $array_id: $gpus tasks ask for a GPU, not $want_gpus"
  ! scontrol -o show job "$merge_id" | grep -q 'gres:gpu' || fail "merge job $merge_id asks for a GPU"
  log "array job $array_id (3 tasks) and merge job $merge_id COMPLETED"
}
submit_and_wait --cpu

# --- the same eval, unsharded and local; then compare. ------------------------------------------
"$cli" eval "${eval_args[@]}" --out "$scratch/local" >"$scratch/log/local-eval.log" 2>&1 ||
  { cat "$scratch/log/local-eval.log" >&2; fail "the local eval"; }
log "local unsharded eval done"

compare() {
python3 - "$out" "$scratch/local" 3 <<'EOF' || fail "the merged output differs from the unsharded run"
import json, os, sys
merged, local, shards = sys.argv[1], sys.argv[2], int(sys.argv[3])
TIMING = {"vision_ms", "prefill_ms", "selection_ms", "decode_ms", "total_ms", "wall_ms"}
def samples(d):
    return sorted(f for f in os.listdir(d) if f.startswith("samples_") and f.endswith(".jsonl"))
def lines(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            pairs = json.loads(line, object_pairs_hook=lambda p: p)
            rows.append([(k, v) for k, v in pairs if k not in TIMING])
    return rows
errors = []
files = samples(local)
if not files:
    errors.append(f"{local}: no samples files")
if samples(merged) != files:
    errors.append(f"samples files: merged {samples(merged)} vs unsharded {files}")
total = 0
for name in files:
    if not os.path.exists(os.path.join(merged, name)):
        continue
    a, b = lines(os.path.join(merged, name)), lines(os.path.join(local, name))
    total += len(b)
    if not b:
        errors.append(f"{name}: empty")
    if len(a) != len(b):
        errors.append(f"{name}: {len(a)} merged lines vs {len(b)} unsharded")
    for i, (x, y) in enumerate(zip(a, b), 1):
        if x != y:
            errors.append(f"{name}:{i}: merged {dict(x)} vs unsharded {dict(y)}")
            break
    per_shard = [len(lines(os.path.join(merged, f"shard-{s}", name))) for s in range(1, shards + 1)]
    if sum(per_shard) != len(b) or min(per_shard) == 0:
        errors.append(f"{name}: shards hold {per_shard} samples, unsharded {len(b)}")
def results(d):
    with open(os.path.join(d, "results.json")) as f:
        j = json.load(f)
    rows = [{k: v for k, v in r.items() if not (k.startswith("mean_") and k.endswith("_ms"))} for r in j["rows"]]
    return j.get("config"), rows
(cm, rm), (cl, rl) = results(merged), results(local)
if cm != cl:
    errors.append(f"results.json config: merged {cm} vs unsharded {cl}")
if not rl:
    errors.append("results.json: no rows")
if rm != rl:
    errors.append(f"results.json rows differ:\n  merged    {rm}\n  unsharded {rl}")
for f in ("results.csv", "results.md"):
    if not os.path.exists(os.path.join(merged, f)):
        errors.append(f"{merged}/{f} missing")
for e in errors:
    print("slurm_e2e:", e, file=sys.stderr)
if not errors:
    print(f"slurm_e2e: {len(files)} samples files ({total} samples over {shards} shards) and "
          f"{len(rl)} results rows identical to the unsharded run, timings aside", file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
}
compare

# --- resume: shard 2 as a preempted task leaves it (5 answers per file, then a cut line); the
# same submit-eval.sh command again must answer only what is missing and merge the same output.
# This time without --cpu: each task asks for the (pretend) GPU, as on a cluster.
s2="$out/shard-2"
nfiles=0 before=0
for f in "$s2"/samples_*.jsonl; do
  before=$((before + $(wc -l <"$f")))
  nfiles=$((nfiles + 1))
  { head -n 5 "$f"; printf '{"index":7,"question_id":'; } >"$f.cut" && mv "$f.cut" "$f"
done
s1_lines=$(cat "$out"/shard-1/samples_*.jsonl | wc -l)
rm -f "$s2"/results.* "$out"/samples_*.jsonl "$out"/results.*
submit_and_wait
grep -qF "0 answers to compute, $s1_lines already in $out/shard-1" "$out/logs/eval-${array_id}_0.out" ||
  { dump_logs; fail "the resubmitted shard 1 did not resume (expected 0 answers to compute, $s1_lines already)"; }
want="$((before - 5 * nfiles)) answers to compute, $((5 * nfiles)) already in $s2"
grep -qF "$want" "$out/logs/eval-${array_id}_1.out" ||
  { dump_logs; fail "the resubmitted shard 2 did not resume (expected '$want')"; }
log "resubmission resumed: shard 2 answered only its missing $((before - 5 * nfiles))"
compare
log "PASSED"
