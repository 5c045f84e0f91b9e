#!/usr/bin/env bash
# Claim benchmarks (issue 3). Usage: bash bench/claim.sh
#   BENCH_N       runs per per-invocation figure (default 300)
#   BENCH_CLAIMS  claims per in-process figure (default 2000)
# Prints `FIGURE name value` lines (bench/run.sh collects them) and rewrites the "Claim (issue 3)"
# section of BENCHMARKS.md unless BENCH_SECTIONS=0.
source "$(dirname "$0")/lib.sh"
need sqlite3 sqlite3
build
N=${BENCH_N:-300}
CLAIMS=${BENCH_CLAIMS:-2000}
work=$(mktemp -d "$OUT/claim.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf '[projects.web]\nworkdir = "%s"\nmax_running = 10000\n' "$work" >"$work/config.toml"
export ORCH_CONFIG=$work/config.toml ORCH_PREFLIGHT_CHECK_AUTH=false ORCH_CLAUDE_BIN=$ROOT/tests/agent/fake-claude

# make_db PATH JOBS: an orch database holding JOBS queued jobs.
make_db() {
  ORCH_DB=$1 "$ORCH" status >/dev/null
  sqlite3 "$1" "BEGIN;
    WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $2)
    INSERT INTO tasks (id, project, key, created_at, updated_at) SELECT i, 'web', 'T' || i, 0, 0 FROM seq;
    INSERT INTO jobs (id, task_id, project, stage, state, max_attempts, run_after, created_at, updated_at)
    SELECT id, id, 'web', 'analyst', 'queued', 3, id, 0, 0 FROM tasks; COMMIT;"
}

# claimed PATH EXPECTED: fail unless the database holds EXPECTED running jobs (each timed run claimed one).
claimed() {
  local running
  running=$(sqlite3 "$1" "SELECT count(*) FROM jobs WHERE state = 'running'")
  [ "$running" = "$2" ] || { echo "bench: $1 has $running running jobs, expected $2: a timed run claimed nothing" >&2; exit 1; }
}

# Epoch milliseconds the way any sqlite3 shell computes them (unixepoch('subsec') needs 3.42; on an
# older shell it is NULL, and the claim would silently match nothing).
now_ms="CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
claim_sql="PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;
UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = 'sh',
       lease_expires_at = $now_ms + 900000, updated_at = $now_ms
WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND project = 'web' AND run_after <= $now_ms
            ORDER BY priority DESC, run_after, id LIMIT 1) RETURNING id;"

make_db "$work/a.db" 100000
make_db "$work/b.db" 100000
# The one-time stand-in agent check (preflight) is off here: this measures the claim itself.
orch_us=$(ORCH_DB="$work/a.db" per_call_us "$N" "$ORCH" claim --worker bench)
shell_us=$(per_call_us "$N" sqlite3 "$work/b.db" "$claim_sql")
claimed "$work/a.db" "$N"
claimed "$work/b.db" "$N"

make_db "$work/k.db" 1000
make_db "$work/m.db" 1000000
k_us=$(ORCH_DB="$work/k.db" per_call_us "$N" "$ORCH" claim --worker bench)
m_us=$(ORCH_DB="$work/m.db" per_call_us "$N" "$ORCH" claim --worker bench)
claimed "$work/k.db" "$N"
claimed "$work/m.db" "$N"

# bench_line QUEUED CLAIMS: benches/claim.rs's result line; field NAME LINE: one number of it.
bench_line() { (cd "$ROOT" && cargo bench --locked --quiet --bench claim -- "$1" "$2" | tail -1); }
field() { sed -E "s/.*$1=([0-9.]+).*/\\1/" <<<"$2"; }
inproc=$(bench_line 100000 "$CLAIMS")
inproc_k=$(bench_line 1000 $((CLAIMS / 2)))
inproc_m=$(bench_line 1000000 $((CLAIMS / 2)))
store_rate=$(field store_per_sec "$inproc")
raw_rate=$(field raw_per_sec "$inproc")
k_inproc=$(field store_us "$inproc_k")
m_inproc=$(field store_us "$inproc_m")

figure claim_orch_us "$orch_us"
figure claim_shell_us "$shell_us"
figure claim_inproc_per_sec "$store_rate"
figure claim_raw_per_sec "$raw_rate"
figure claim_1k_us "$k_us"
figure claim_1m_us "$m_us"
figure claim_inproc_1k_us "$k_inproc"
figure claim_inproc_1m_us "$m_inproc"

sections || exit 0
body=$work/section.md
cat >"$body" <<MD
Command: \`bash bench/claim.sh\` (BENCH_N=$N runs per per-invocation figure, BENCH_CLAIMS=$CLAIMS). Machine: $(machine), $(date -u +%Y-%m-%d).

| figure | orch | peer | ratio | target |
|---|---|---|---|---|
| \`orch claim\` per invocation, 100,000 queued | ${orch_us} µs | sqlite3 shell, same single-row claim: ${shell_us} µs | $(ratio "$orch_us" "$shell_us")× | ≤ 1.5× |
| in-process claim rate, 100,000 queued | ${store_rate}/s | raw UPDATE loop, same durability: ${raw_rate}/s | $(awk -v a="$store_rate" -v b="$raw_rate" 'BEGIN{printf "%.0f%%", 100*a/b}') | ≥ 70% |
| \`orch claim\` per invocation, 1,000,000 vs 1,000 queued | ${m_us} µs | ${k_us} µs | $(ratio "$m_us" "$k_us")× | ≤ 2× |
| in-process claim, 1,000,000 vs 1,000 queued | ${m_inproc} µs | ${k_inproc} µs | $(ratio "$m_inproc" "$k_inproc")× | ≤ 2× |

Every claim is one \`BEGIN IMMEDIATE\` transaction with \`synchronous=FULL\` in WAL mode, so each pays
one fsync of the WAL; both sides pay it alike. The script checks that every timed run claimed a job
(the database holds exactly N running jobs afterwards), on both sides.
MD
cat "$body"
replace_section "Claim (issue 3)" "$body"
