#!/usr/bin/env bash
# Years (issue 20): commands that must cost the same however much work has finished, the prune
# that removes it, and the cost report.
#
#   1. `orch status`, `status --json`, `metrics`, `jobs` and a `tick` with nothing to do, on a
#      database of 1,000,000 finished + 1,000 live jobs against the same on 1,000 finished +
#      1,000 live; and against the peer, `sqlite3` opening the big database and running one
#      indexed count: all interleaved round by round (bench/interleave.py), medians. Peak RSS of
#      `orch status` on both.
#   2. `orch prune --older-than 1h` of the 1,000,000 finished jobs with their history, runs and
#      outbox rows (on a copy): its time and peak RSS, its longest batch, the worst latency of an
#      `orch claim` loop running beside it (against the same loop before the prune), the database
#      size before and after.
#   3. `orch usage --by project,day` over the pruned copy: a year of rollup (every finalized run,
#      a row per task, stage and day) plus 100,000 runs not finalized yet, against `sqlite3`
#      grouping the rollup alone.
#
#   bash bench/years.sh              YEARS_FINISHED=1000000 finished jobs (BENCH_QUICK: 100000)
#   BENCH_N=N                        rounds of the interleaved figures (default 200)
#
# The two databases are generated once with SQL (test data, not product code: every row as orch
# writes it, the counters and the rollup filled by orch's own triggers) into bench/out/years/ and
# reused while orch makes the same schema. Logs of the generated runs are not created:
# prune removes their rows and finds no files (the figure is the database's work).
# Prints `FIGURE name value` lines for bench/run.sh; rewrites the "Years (issue 20)" section of
# BENCHMARKS.md unless BENCH_SECTIONS=0.
source "$(dirname "$0")/lib.sh"
need sqlite3 sqlite3
need hyperfine hyperfine
need /usr/bin/time time
need python3 python3
build
N=${BENCH_N:-200}
if [ -n "${BENCH_QUICK:-}" ]; then FINISHED=${YEARS_FINISHED:-100000}; else FINISHED=${YEARS_FINISHED:-1000000}; fi
LIVE=1000
SMALL=1000
dir=$OUT/years
mkdir -p "$dir/work" "$dir/home/.claude"
mkdir -p -m 700 "$dir/logs"
work=$(mktemp -d "$OUT/years-run.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The world: ten projects, the stand-in agent (its preflight cached for the whole run), and the
# tick's own prune off: the prune is measured on its own.
config=$dir/config.toml
: >"$config"
for p in 0 1 2 3 4 5 6 7 8 9; do
  mkdir -p "$dir/work/p$p"
  printf '[projects.p%s]\nworkdir = "%s"\nmax_running = 1000\n\n' "$p" "$dir/work/p$p" >>"$config"
done
export ORCH_CONFIG=$config ORCH_CLAUDE_BIN=$ROOT/tests/agent/fake-claude HOME=$dir/home \
  ORCH_PREFLIGHT_CHECK_AUTH=false ORCH_PREFLIGHT_CACHE_TTL=86400 ORCH_PRUNE_INTERVAL_HOURS=0 \
  ORCH_HOST=bench-host ORCH_LOG_DIR=$dir/logs

schema=$(
  rm -f "$work/probe.db"
  "$ORCH" --db "$work/probe.db" status >/dev/null
  sqlite3 "$work/probe.db" .schema | md5sum | cut -c1-16
)

# generate PATH FINISHED: an orch database holding FINISHED finished jobs (a task of six stages
# for every six, one in twenty failed at its last stage; each job with three history entries and
# one finalized run; each task with one delivered usage comment), spread over the last 365 days,
# and LIVE live jobs (half running under another worker's lease, half queued and due in 50
# minutes: nothing to claim). Kept while orch makes the same schema.
generate() {
  local db=$1 finished=$2 stamp="$1.schema"
  if [ -f "$db" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$schema" ]; then return 0; fi
  echo "generating $db ($finished finished + $LIVE live jobs)" >&2
  rm -f "$db" "$db-wal" "$db-shm" "$stamp"
  "$ORCH" --db "$db" status >/dev/null
  local tasks=$((finished / 6)) now
  now=$(($(date +%s) * 1000))
  sqlite3 "$db" <<SQL
PRAGMA journal_mode = DELETE;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -400000;
BEGIN;
CREATE TEMP TABLE stages (s INTEGER, name TEXT);
INSERT INTO stages VALUES (0, 'analyst'), (1, 'architect'), (2, 'developer'), (3, 'reviewer'),
                          (4, 'tester'), (5, 'deployer');
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $tasks)
INSERT INTO tasks (id, project, key, title, body, state, created_at, updated_at)
SELECT i, 'p' || (i % 10), 'T-' || i, 'task number ' || i,
       'Make the thing do what the issue says, with tests. ' || printf('%.150c', 'x'),
       CASE WHEN i % 20 = 0 THEN 'failed' ELSE 'complete' END, t0, t0 + 6 * 60000
FROM (SELECT i, $now - 31536000000 + i * (31536000000 / $tasks) - 7200000 AS t0 FROM seq);
INSERT INTO jobs (id, task_id, project, stage, state, priority, attempt, max_attempts, run_after,
                  last_class, last_reason, created_at, updated_at)
SELECT (t.id - 1) * 6 + s + 1, t.id, t.project, name,
       CASE WHEN t.state = 'failed' AND s = 5 THEN 'failed' ELSE 'done' END, 0, 1, 3,
       t.created_at + s * 60000,
       CASE WHEN t.state = 'failed' AND s = 5 THEN 'timeout' ELSE 'ok' END, 'the run said so',
       t.created_at + s * 60000, t.created_at + s * 60000 + 50000
FROM tasks t, stages ORDER BY t.id, s;
INSERT INTO job_history (job_id, at, from_state, to_state, actor, reason)
SELECT j.id, j.created_at + k * 1000,
       CASE k WHEN 0 THEN NULL WHEN 1 THEN 'queued' ELSE 'running' END,
       CASE k WHEN 0 THEN 'queued' WHEN 1 THEN 'running' ELSE j.state END,
       'w' || (j.id % 4), CASE k WHEN 0 THEN 'enqueued' WHEN 1 THEN 'claimed, attempt 1/3' ELSE 'finalized' END
FROM jobs j, (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2) ORDER BY j.id, k;
INSERT INTO agent_runs (id, job_id, attempt, worker, agent, agent_version, started_at, ended_at,
                        duration_ms, exit_code, log_path, log_bytes, result_ok, class, reason,
                        usage_json, decision, host, result_text)
SELECT j.id, j.id, 1, 'w' || (j.id % 4), 'claude', '2.1.197', j.created_at + 1000,
       j.created_at + 41000, 40000, CASE j.state WHEN 'done' THEN 0 ELSE 1 END,
       '$dir/logs/job-' || j.id || '-run-' || j.id || '.log', 52000, j.state = 'done', j.last_class,
       'the run said so',
       '{"cost_usd":0.0123,"input_tokens":120,"output_tokens":30,"cache_read_tokens":2000,"cache_write_tokens":500,"turns":2,"duration_ms":40000,"models":["claude-sonnet-4-5"]}',
       CASE j.state WHEN 'done' THEN 'advanced' ELSE 'failed' END, 'bench-host',
       'Done: the change is made and its tests pass.'
FROM jobs j;
UPDATE agent_runs SET finalized_at = ended_at + 1000;
INSERT INTO outbox (kind, project, task, job_id, run_id, payload, state, attempts, next_attempt_at,
                    created_at, sent_at)
SELECT 'comment', t.project, t.key, t.id * 6, t.id * 6,
       '{"project":"' || t.project || '","task":"' || t.key || '","issue":1,"stage":"deployer","verdict":"ok"}',
       'sent', 1, t.updated_at, t.updated_at, t.updated_at + 1000
FROM tasks t;
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $LIVE)
INSERT INTO tasks (id, project, key, title, state, created_at, updated_at)
SELECT $tasks + i, 'p' || (i % 10), 'L-' || i, 'live task ' || i, 'active', $now, $now FROM seq;
INSERT INTO jobs (id, task_id, project, stage, state, attempt, max_attempts, run_after, lease_owner,
                  lease_expires_at, lease_renewed_at, created_at, updated_at)
SELECT $tasks * 6 + (t.id - $tasks), t.id, t.project, 'developer',
       CASE WHEN t.id % 2 = 0 THEN 'running' ELSE 'queued' END,
       CASE WHEN t.id % 2 = 0 THEN 1 ELSE 0 END, 3,
       CASE WHEN t.id % 2 = 0 THEN $now ELSE $now + 3000000 END,
       CASE WHEN t.id % 2 = 0 THEN 'other' END,
       CASE WHEN t.id % 2 = 0 THEN $now + 86400000 END,
       CASE WHEN t.id % 2 = 0 THEN $now END, $now, $now
FROM tasks t WHERE t.id > $tasks;
INSERT INTO job_history (job_id, at, from_state, to_state, actor, reason)
SELECT id, created_at, NULL, 'queued', 'bench', 'enqueued' FROM jobs WHERE task_id > $tasks;
INSERT INTO maintenance (name, last_done_at) VALUES ('prune', $now + 86400000);
COMMIT;
PRAGMA journal_mode = WAL;
SQL
  echo "$schema" >"$stamp"
}

big=$dir/finished-$FINISHED.db
small=$dir/finished-$SMALL.db
# fig NAME VALUE: a figure for bench/run.sh, kept for this script's own section too.
fig() { figure "$1" "$2"; echo "$1=$2" >>"$work/figures.env"; }

started=$(date +%s)
generate "$big" "$FINISHED"
generate "$small" "$SMALL"
# A database generated on an earlier day: its live jobs made live again (leases held for a day,
# queued jobs due in 50 minutes), its prune done a moment ago.
refresh() {
  local now
  now=$(($(date +%s) * 1000))
  sqlite3 "$1" "PRAGMA busy_timeout = 5000; BEGIN;
    UPDATE jobs SET lease_expires_at = $now + 86400000, lease_renewed_at = $now WHERE state = 'running';
    UPDATE jobs SET run_after = $now + 3000000 WHERE state = 'queued';
    UPDATE maintenance SET last_done_at = $now WHERE name = 'prune';
    COMMIT;" >/dev/null
}
for db in "$big" "$small"; do
  refresh "$db"
  "$ORCH" --db "$db" preflight >/dev/null
done
echo "generated (or reused) in $(( $(date +%s) - started )) s" >&2

# mean_us JSON INDEX: the mean of hyperfine's INDEX-th command, in µs.
mean_us() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['results'][int(sys.argv[2])]['mean'] * 1e6))" "$1" "$2"; }

# 1. Each command on the small and the big database and the peer, interleaved round by round
# (bench/interleave.py): medians, the cost of spawning a process taken out.
export INTERLEAVE_SQL="SELECT count(*) FROM jobs WHERE state = 'queued'"
specs=("peer_count=sqlite3 $big @SQL@")
names=(status status_json metrics jobs tick)
commands=("status" "status --json" "metrics" "jobs" "tick --worker bench")
for i in "${!names[@]}"; do
  specs+=("${names[$i]}_small=$ORCH --db $small ${commands[$i]}" "${names[$i]}_big=$ORCH --db $big ${commands[$i]}")
done
python3 "$ROOT/bench/interleave.py" "$N" 10 "${specs[@]}" >"$work/times.json"
median() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]['median_us'])" "$work/times.json" "$1"; }
fig years_peer_count_us "$(median peer_count)"
for name in "${names[@]}"; do
  fig "years_${name}_small_us" "$(median "${name}_small")"
  fig "years_${name}_big_us" "$(median "${name}_big")"
done
for db in small big; do
  path=$small; [ $db = big ] && path=$big
  /usr/bin/time -f %M -o "$work/rss" "$ORCH" --db "$path" status >/dev/null
  fig "years_status_rss_${db}_kib" "$(cat "$work/rss")"
done

# 2. The prune, on a copy, beside a claim loop.
copy=$work/prune.db
cp "$big" "$copy"
db_bytes() { local total=0 f; for f in "$1" "$1-wal"; do [ -f "$f" ] && total=$((total + $(stat -c %s "$f"))); done; echo $total; }
fig years_db_before_bytes "$(db_bytes "$copy")"
claims=$work/claims.py
cat >"$claims" <<'PY'
# Run `orch claim` (nothing is due: it takes the write lock and finds nothing) in a loop until the
# file STOP exists; print each call's latency in ms, one a line.
import os, subprocess, sys, time
orch, db, stop, out = sys.argv[1:5]
with open(out, "w") as f:
    while not os.path.exists(stop):
        t = time.perf_counter()
        rc = subprocess.run([orch, "--db", db, "claim", "--worker", "bench-claim"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        f.write(f"{(time.perf_counter() - t) * 1000:.3f} {rc}\n")
PY
stats() { # stats FILE: count, median, p99 and max of a latency file, and how many calls failed
  python3 - "$1" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
ms = sorted(float(r[0]) for r in rows)
bad = sum(1 for r in rows if r[1] not in ("0", "3"))
pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
print(len(ms), pick(0.5), pick(0.99), ms[-1], bad)
PY
}
python3 "$claims" "$ORCH" "$copy" "$work/stop-base" "$work/base.txt" &
sleep 5; touch "$work/stop-base"; wait
read -r base_n base_p50 base_p99 base_max base_bad < <(stats "$work/base.txt")
python3 "$claims" "$ORCH" "$copy" "$work/stop" "$work/during.txt" &
loop=$!
/usr/bin/time -f "%e %M" -o "$work/prune.time" "$ORCH" --db "$copy" prune --older-than 1h --json >"$work/prune.json"
touch "$work/stop"; wait $loop
read -r prune_s prune_rss <"$work/prune.time"
read -r n p50 p99 max bad < <(stats "$work/during.txt")
[ "$base_bad$bad" = 00 ] || { echo "bench: claims failed during the prune (see $work)" >&2; exit 1; }
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))" "$work/prune.json" "$1"; }
[ "$(field jobs)" -eq $((FINISHED / 6 * 6)) ] || { echo "bench: the prune removed $(field jobs) jobs" >&2; exit 1; }
sqlite3 "$copy" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
fig years_prune_s "$prune_s"
fig years_prune_rss_kib "$prune_rss"
fig years_prune_jobs "$(field jobs)"
fig years_prune_batches "$(field batches)"
fig years_prune_longest_batch_ms "$(field longest_batch_ms)"
fig years_claim_base_n "$base_n"
fig years_claim_base_p50_ms "$base_p50"
fig years_claim_base_max_ms "$base_max"
fig years_claim_prune_n "$n"
fig years_claim_prune_p50_ms "$p50"
fig years_claim_prune_p99_ms "$p99"
fig years_claim_prune_max_ms "$max"
fig years_db_after_bytes "$(db_bytes "$copy")"

# 3. The cost report: the pruned copy's year of rollup, and 100,000 runs not finalized yet (200
# for each running live job, spread over the last 90 days).
now=$(($(date +%s) * 1000))
sqlite3 "$copy" "BEGIN;
  WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 200)
  INSERT INTO agent_runs (job_id, attempt, worker, agent, started_at, ended_at, duration_ms, host)
  SELECT j.id, 1, 'other', 'claude', $now - i * 38880000, $now - i * 38880000 + 40000, 40000, 'elsewhere'
  FROM jobs j, seq WHERE j.state = 'running';
  COMMIT;" >/dev/null
rollup_rows=$(sqlite3 "$copy" "SELECT count(*) FROM usage_rollup")
live_runs=$(sqlite3 "$copy" "SELECT count(*) FROM agent_runs WHERE finalized_at IS NULL")
usage_json=$work/usage.json
hyperfine -N --warmup 2 --runs $((N / 20 + 3)) --export-json "$usage_json" \
  "$ORCH --db $copy usage --by project,day" \
  "sqlite3 $copy \"SELECT project, day, class, sum(runs), total(cost_usd), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(turns), sum(wall_ms) FROM usage_rollup GROUP BY project, day, class\"" >&2
fig years_usage_us "$(mean_us "$usage_json" 0)"
fig years_usage_peer_us "$(mean_us "$usage_json" 1)"
fig years_usage_rollup_rows "$rollup_rows"
fig years_usage_live_runs "$live_runs"
fig years_finished "$FINISHED"
rm -f "$copy" "$copy-wal" "$copy-shm"

sections || exit 0
python3 - "$work/figures.env" "$(machine)" "$N" "$(cd "$ROOT" && git rev-parse --short HEAD)" >"$work/section.md" <<'PY'
import datetime, sys
path, machine, runs, commit = sys.argv[1:5]
f = {}
for line in open(path):
    name, _, value = line.strip().partition("=")
    f[name] = float(value)
big = int(f["years_finished"])
ms = lambda us: f"{us / 1000:.2f} ms"
today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
out = [
    f"Command: `bash bench/years.sh` ({runs} interleaved rounds, medians; release build at {commit}, {today}). "
    f"Machine: {machine}, shared with other builds.",
    "",
    f"Databases: {big:,} finished jobs (tasks of six stages over the last 365 days, each job with three "
    "history entries and a finalized run, each task with a delivered comment) + 1,000 live jobs (half "
    "running under another worker's lease, half queued and not yet due), against 1,000 finished + "
    "1,000 live; generated once with SQL (bench/years.sh), the counters and the usage rollup filled by "
    "orch's own triggers. The peer is `sqlite3` opening the big database and running one indexed count "
    "(`SELECT count(*) FROM jobs WHERE state = 'queued'`).",
    "",
    f"| command | {big:,} finished | 1,000 finished | ratio (target ≤ 1.5×) | ÷ sqlite3 count, {ms(f['years_peer_count_us'])} (target ≤ 2×) |",
    "|---|---|---|---|---|",
]
for name, what in [("status", "`orch status`"), ("status_json", "`orch status --json`"),
                   ("metrics", "`orch metrics`"), ("jobs", "`orch jobs`"),
                   ("tick", "`orch tick`, nothing to do")]:
    b, s_ = f[f"years_{name}_big_us"], f[f"years_{name}_small_us"]
    r, p = b / s_, b / f["years_peer_count_us"]
    out.append(f"| {what} | {ms(b)} | {ms(s_)} | {r:.2f}× {'yes' if r <= 1.5 else '**NO**'} | {p:.2f}× {'yes' if p <= 2 else '**NO**'} |")
out += [
    "",
    f"Peak RSS of `orch status`: {f['years_status_rss_big_kib'] / 1024:.1f} MiB at {big:,} finished, "
    f"{f['years_status_rss_small_kib'] / 1024:.1f} MiB at 1,000.",
    "",
    f"`orch prune --older-than 1h` of the {big:,} finished jobs (on a copy), with an `orch claim` loop "
    "beside it (nothing to claim: each call takes the write lock, finds nothing and exits 3):",
    "",
    "| figure | value |",
    "|---|---|",
    f"| time, peak RSS | {f['years_prune_s']:.1f} s, {f['years_prune_rss_kib'] / 1024:.1f} MiB |",
    f"| removed | {int(f['years_prune_jobs']):,} jobs with their tasks, history, runs and comments, in {int(f['years_prune_batches']):,} batches |",
    f"| longest batch (its transaction holds the write lock) | {f['years_prune_longest_batch_ms']:.1f} ms (target ≤ 100 ms) |",
    f"| `orch claim` during the prune: calls, median, p99, worst | {int(f['years_claim_prune_n']):,}, {f['years_claim_prune_p50_ms']:.1f} ms, {f['years_claim_prune_p99_ms']:.1f} ms, {f['years_claim_prune_max_ms']:.1f} ms |",
    f"| `orch claim` before it (5 s): calls, median, worst | {int(f['years_claim_base_n']):,}, {f['years_claim_base_p50_ms']:.1f} ms, {f['years_claim_base_max_ms']:.1f} ms |",
    f"| database before → after (file and WAL) | {f['years_db_before_bytes'] / 2**20:,.0f} MiB → {f['years_db_after_bytes'] / 2**20:,.0f} MiB |",
    "",
    f"`orch usage --by project,day` over the pruned copy: {int(f['years_usage_rollup_rows']):,} rollup rows "
    f"(a year) + {int(f['years_usage_live_runs']):,} runs not finalized yet: {ms(f['years_usage_us'])}; "
    f"`sqlite3` grouping the rollup alone by project, day and class: {ms(f['years_usage_peer_us'])} "
    f"({f['years_usage_us'] / f['years_usage_peer_us']:.2f}×).",
]
print("\n".join(out))
PY
replace_section "Years (issue 20)" "$work/section.md"
echo "== BENCHMARKS.md: Years (issue 20) rewritten"
