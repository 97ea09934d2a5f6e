#!/usr/bin/env bash
# `saecooc slurm --submit` against a real single-node SLURM cluster (munged, slurmctld, slurmd
# started here as root, stopped on exit): 2 SAEs × 2 shards of the tiny world, checked byte for
# byte against a single-machine `saecooc cooc`; the logs must show progress lines; a cooc task
# cancelled mid-run must be completed by a second `saecooc slurm --submit`.
#
# Needs root and `slurm-wlm munge` (.ci/run installs them). Where SLURM cannot start it prints
# `SKIPPED …` and exits 0, unless SAECOOC_REQUIRE_SLURM=1 (CI), where it fails.
# SAECOOC_BIN: the saecooc binary (`make slurm-test` builds it and sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
  if [ "${SAECOOC_REQUIRE_SLURM:-0}" = 1 ]; then
    echo "slurm-test: FAILED: $* (SAECOOC_REQUIRE_SLURM=1)" >&2
    exit 1
  fi
  echo "SKIPPED slurm test: $*"
  exit 0
}
fail() {
  echo "slurm-test: FAILED: $*" >&2
  exit 1
}
say() { echo "slurm-test: $*"; }

[ "$(id -u)" -eq 0 ] || skip "needs root to start munged, slurmctld and slurmd"
for tool in munged slurmctld slurmd sbatch squeue sinfo scancel; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install slurm-wlm munge)"
done

[ -n "${SAECOOC_BIN:-}" ] || fail "set SAECOOC_BIN to the saecooc binary (or run \`make slurm-test\`)"
bin="$(realpath "$SAECOOC_BIN")"
[ -x "$bin" ] || fail "no saecooc binary at $SAECOOC_BIN"

work="$(mktemp -d /tmp/saecooc-slurm-test.XXXXXX)"
chmod 755 "$work"
pids=()
stop_daemons() {
  local rc=$?
  [ -n "${SLURM_CONF:-}" ] && scancel --user=root >/dev/null 2>&1 || true
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ]; then
    for log in "$work"/slurmctld.log "$work"/slurmd.log "$work"/jobs/logs/*; do
      [ -f "$log" ] && { echo "== $log"; tail -n 20 "$log"; }
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap stop_daemons EXIT

# --- munge: its own key, socket and files under $work.
mkdir -p "$work/munge" "$work/state" "$work/spool"
chmod 711 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
socket="$work/munge/munge.socket"
munged --force --key-file="$work/munge/munge.key" --socket="$socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" \
  --seed-file="$work/munge/munged.seed" --foreground >"$work/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || skip "munged did not start: $(tail -n 3 "$work/munge/munged.log" 2>/dev/null)"

# --- slurm.conf: this machine as the one node, reached at 127.0.0.1 (a container's hostname
# need not resolve).
host="$(hostname -s)"
cpus="$(nproc)"
mem_mib=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
export SLURM_CONF="$work/slurm.conf"
cat >"$SLURM_CONF" <<CONF
ClusterName=saecooctest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
SlurmctldPort=${SAECOOC_SLURMCTLD_PORT:-6817}
SlurmdPort=${SAECOOC_SLURMD_PORT:-6818}
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mib State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

slurmctld -D -i -f "$SLURM_CONF" >"$work/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$work/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  state="$(sinfo -h -n "$host" -o %t 2>/dev/null || true)"
  [ "$state" = idle ] && break
  sleep 0.2
done
[ "${state:-}" = idle ] || skip "the SLURM node did not come up idle (sinfo: '${state:-}')"
say "SLURM up: node $host, $cpus CPUs, $mem_mib MiB"

# --- the tiny world with two SAEs, counted long enough to cancel a task mid-run.
cd "$work"
"$bin" --quiet synth --out world --documents 8000
first=blocks.1.hook_resid_pre
second=blocks.0.hook_resid_pre
batches="${SAECOOC_SLURM_TEST_BATCHES:-240}"
mkdir -p "world/sae/$second"
cp "world/sae/$first/sae_weights.safetensors" "world/sae/$second/"
sed -e "s/\"hook_name\": *\"$first\"/\"hook_name\": \"$second\"/" \
  -e 's/"hook_layer": *1/"hook_layer": 0/' "world/sae/$first/cfg.json" >"world/sae/$second/cfg.json"
grep -q "$second" "world/sae/$second/cfg.json" || fail "could not write the second SAE's cfg.json"
sed -e "s/^sae_ids = .*/sae_ids = [\"$first\", \"$second\"]/" \
  -e "s/^n_batches = .*/n_batches = $batches/" \
  -e 's/^min_subgraph_size = .*/min_subgraph_size = 20/' \
  -e 's/^max_subgraph_size = .*/max_subgraph_size = 40/' \
  -e 's/^skip_subgraph_plots = .*/skip_subgraph_plots = true/' \
  -e 's/^skip_subgraph_pickles = .*/skip_subgraph_pickles = true/' world/cooc.toml >two.toml

# Progress lines at most every 0.2 s, in every job (sbatch exports the environment).
export SAECOOC_PROGRESS_SECONDS=0.2

say "reference: one machine, no shards"
"$bin" --quiet cooc --config two.toml --results-dir reference

study() { "$bin" slurm --config two.toml --shards 2 --results-dir results --out jobs --checkpoint-every 1 --submit; }
job_of() { sed -n "s/^submitted $1: job //p" "$2"; }
wait_for_queue() {
  for _ in $(seq "${1:-900}"); do
    [ -z "$(squeue -h -o %i)" ] && return 0
    sleep 0.2
  done
  fail "jobs still queued: $(squeue)"
}

say "first submission (a cooc task cancelled mid-run)"
study >submit1.txt
cat submit1.txt
cooc1="$(job_of cooc submit1.txt)"
[ -n "$cooc1" ] || fail "saecooc slurm --submit printed no cooc job id"
grep -q -- "--array=0,1,2,3" jobs/cooc.sh || fail "cooc.sh is not an array over 2 SAEs × 2 shards"
checkpoint="results/synthetic-gpt2/synthetic/${first//./_}/n_batches_$batches/shards/checkpoint_0_of_2.npz"
for _ in $(seq 600); do [ -f "$checkpoint" ] && break; sleep 0.05; done
[ -f "$checkpoint" ] || fail "task 0 wrote no checkpoint ($checkpoint)"
scancel "${cooc1}_0"
say "cancelled task ${cooc1}_0 after its first checkpoint"
wait_for_queue
shard0="${checkpoint%checkpoint_0_of_2.npz}shard_0_of_2.npz"
[ ! -f "$shard0" ] || fail "task 0 finished before it was cancelled; raise SAECOOC_SLURM_TEST_BATCHES"

say "second submission: only the cancelled task, then merge, graphs, export"
study >submit2.txt
cat submit2.txt
grep -q -- "--array=0$" jobs/cooc.sh || fail "the second cooc.sh runs other tasks than the cancelled one: $(grep -- --array jobs/cooc.sh)"
wait_for_queue
grep -l "resuming from" jobs/logs/cooc_*_0.log >/dev/null || fail "the resubmitted task did not resume from its checkpoint"

say "outputs equal the single-machine run byte for byte"
compared=0
for ref in reference/synthetic-gpt2/synthetic/*/n_batches_*/feature_acts_cooc_*.npz; do
  got="results/${ref#reference/}"
  cmp "$ref" "$got" || fail "$got differs from the single-machine $ref"
  compared=$((compared + 1))
done
[ "$compared" -eq 12 ] || fail "compared $compared .npz files, expected 12 (2 SAEs × 2 thresholds × 3 kinds)"
for sae in "$first" "$second"; do
  ls results/synthetic-gpt2/synthetic/"${sae//./_}"/n_batches_*/dataframes/node_info_df_*.csv >/dev/null ||
    fail "graphs wrote no node table for $sae"
done
[ -s jobs/site/index.html ] || fail "export wrote no site"

say "the logs show timestamped progress lines"
stamp='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z '
for log in jobs/logs/cooc_*.log; do
  grep -Eq "${stamp}.*batches" "$log" || fail "$log has no progress line: $(head -c 600 "$log")"
done
say "passed: 2 SAEs × 2 shards, $compared files equal, a cancelled task completed by a resubmission"
