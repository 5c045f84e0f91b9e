#!/usr/bin/env bash
# Orchestration overhead per job (issue 10): what `orch tick` adds to an agent run. N jobs of a
# one-stage pipeline are worked by bench/noop-agent (one success result line, exit 0), timed:
#   - cron style: N `orch tick` processes, one job each (notify, recover, preflight from the
#     cache, claim, run, finalize, and the process and database open around them);
#   - batched: one `orch tick --max-jobs N`;
# against the peer, the same no-op agent run N times directly with the same argv, its output to a
# file. Overhead per job = tick per job − agent per job. The cron loop runs again with the database
# and logs on tmpfs (/dev/shm), where fsync costs nothing, to show what durability costs.
#
#   bash bench/overhead.sh          BENCH_JOBS=N jobs per figure (default 200)
#
# The agent's credentials are a file in a temporary HOME given to orch only. Prints `FIGURE name
# value` lines (µs per job) for bench/run.sh.
source "$(dirname "$0")/lib.sh"
need sqlite3 sqlite3
build
N=${BENCH_JOBS:-200}
agent=$ROOT/bench/noop-agent

# world DIR JOBS: a config with one project and a one-stage pipeline, valid credentials, JOBS
# queued jobs.
world() {
  local dir=$1 jobs=$2
  mkdir -p "$dir/home/.claude" "$dir/work"
  (umask 077 && expires=$(( ($(date +%s) + 86400) * 1000 )) &&
    printf '{"claudeAiOauth":{"accessToken":"sk-ant-oat01-bench","refreshToken":"sk-ant-ort01-bench","expiresAt":%s,"scopes":["user:inference"],"subscriptionType":"max"}}' \
      "$expires" >"$dir/home/.claude/.credentials.json")
  printf '[pipeline]\nstages = ["only"]\n\n[projects.web]\nworkdir = "%s"\n' "$dir/work" >"$dir/config.toml"
  for ((i = 1; i <= jobs; i++)); do in_world "$dir" "$ORCH" enqueue --project web --task "B-$i" >/dev/null; done
  # The first preflight spawns the agent's --version and caches the verdict, as in steady state.
  in_world "$dir" "$ORCH" preflight >/dev/null
}

# in_world DIR CMD...: CMD with the world's environment (HOME only here, never for cargo).
in_world() {
  local dir=$1; shift
  HOME=$dir/home ORCH_DB=$dir/orch.db ORCH_CONFIG=$dir/config.toml ORCH_CLAUDE_BIN=$agent \
    ORCH_RETRY_BASE_SECONDS=0 "$@"
}

# done_jobs DIR: how many jobs are done.
done_jobs() { sqlite3 "$1/orch.db" "SELECT count(*) FROM jobs WHERE state = 'done'"; }

# cron_us DIR: µs per job over N `orch tick` processes, each of which must do one job (exit 0).
cron_us() {
  local dir=$1 start end before
  before=$(done_jobs "$dir")
  start=$(now_ns)
  for ((i = 0; i < N; i++)); do
    in_world "$dir" "$ORCH" tick --worker bench >/dev/null || { echo "bench: tick $i failed" >&2; return 1; }
  done
  end=$(now_ns)
  [ $(( $(done_jobs "$dir") - before )) = "$N" ] || { echo "bench: $dir: not every tick did a job" >&2; return 1; }
  echo $(( (end - start) / N / 1000 ))
}

# batch_us DIR: µs per job of one `orch tick --max-jobs N`.
batch_us() {
  local dir=$1 start end before
  before=$(done_jobs "$dir")
  start=$(now_ns)
  in_world "$dir" "$ORCH" tick --worker bench --max-jobs "$N" >/dev/null
  end=$(now_ns)
  [ $(( $(done_jobs "$dir") - before )) = "$N" ] || { echo "bench: $dir: the batch did not do $N jobs" >&2; return 1; }
  echo $(( (end - start) / N / 1000 ))
}

# agent_us DIR: µs per run of the no-op agent started directly, argv as orch gives it, output to a file.
agent_us() {
  local dir=$1 start end
  start=$(now_ns)
  for ((i = 0; i < N; i++)); do
    (cd "$dir/work" && exec "$agent" -p "You work on the only stage of task B-$i." --output-format stream-json --verbose) \
      >"$dir/agent.log" </dev/null
  done
  end=$(now_ns)
  echo $(( (end - start) / N / 1000 ))
}

disk=$(mktemp -d "$OUT/overhead.XXXXXX")
tmpfs=
[ -d /dev/shm ] && [ -w /dev/shm ] && tmpfs=$(mktemp -d /dev/shm/orch-overhead.XXXXXX)
trap 'rm -rf "$disk" ${tmpfs:+"$tmpfs"}' EXIT

# N for the cron loop, N for the batch, one for the fsync count.
world "$disk" $((2 * N + 1))
agent_per_job=$(agent_us "$disk")
tick_per_job=$(cron_us "$disk")
batch_per_job=$(batch_us "$disk")
echo "no-op agent run directly: $agent_per_job µs per run ($N runs)"
echo "orch tick, one job per process: $tick_per_job µs per job; overhead $((tick_per_job - agent_per_job)) µs"
echo "orch tick --max-jobs $N: $batch_per_job µs per job; overhead $((batch_per_job - agent_per_job)) µs"
figure overhead_agent_us "$agent_per_job"
figure overhead_tick_us "$tick_per_job"
figure overhead_batch_us "$batch_per_job"
if [ -n "$tmpfs" ]; then
  world "$tmpfs" "$N"
  tmpfs_per_job=$(cron_us "$tmpfs")
  echo "orch tick, one job per process, database and logs on tmpfs (fsync free): $tmpfs_per_job µs per job"
  figure overhead_tick_tmpfs_us "$tmpfs_per_job"
fi
if command -v strace >/dev/null; then
  syncs=$(in_world "$disk" strace -f -c -e trace=fsync,fdatasync -o "$disk/strace" "$ORCH" tick --worker bench >/dev/null &&
    awk '$NF == "fsync" || $NF == "fdatasync" { n += $4 } END { print n + 0 }' "$disk/strace")
  echo "fsync + fdatasync calls in one tick that does one job: $syncs"
  figure overhead_syncs_per_job "$syncs"
fi
