#!/usr/bin/env bash
# Claim benchmarks (issue 3). Usage: bash bench/claim.sh   (BENCH_N=runs per figure, default 300)
source "$(dirname "$0")/lib.sh"
need sqlite3 sqlite3
build
(cd "$ROOT" && cargo build --release --locked --quiet --bench claim)
N=${BENCH_N:-300}
work=$(mktemp -d "$OUT/claim.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf '[projects.web]\nworkdir = "%s"\nmax_running = 100000000\n' "$work" >"$work/config.toml"
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

claim_sql="PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;
UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_owner = 'sh',
       lease_expires_at = CAST(unixepoch('subsec') * 1000 AS INTEGER) + 900000,
       updated_at = CAST(unixepoch('subsec') * 1000 AS INTEGER)
WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND project = 'web'
            AND run_after <= CAST(unixepoch('subsec') * 1000 AS INTEGER)
            ORDER BY priority DESC, run_after, id LIMIT 1) RETURNING id;"

make_db "$work/a.db" 100000
make_db "$work/b.db" 100000
# The one-time stand-in agent check (preflight) is off here: this measures the claim itself.
orch_us=$(per_call_us "$N" env ORCH_DB="$work/a.db" "$ORCH" claim --worker bench)
shell_us=$(per_call_us "$N" sqlite3 "$work/b.db" "$claim_sql")

make_db "$work/k.db" 1000
make_db "$work/m.db" 1000000
k_us=$(per_call_us "$N" env ORCH_DB="$work/k.db" "$ORCH" claim --worker bench)
m_us=$(per_call_us "$N" env ORCH_DB="$work/m.db" "$ORCH" claim --worker bench)

inproc=$(cd "$ROOT" && cargo bench --locked --quiet --bench claim -- 100000 2000 | tail -1)
store_rate=$(sed -E 's/.*store_per_sec=([0-9]+).*/\1/' <<<"$inproc")
raw_rate=$(sed -E 's/.*raw_per_sec=([0-9]+).*/\1/' <<<"$inproc")
inproc_k=$(cd "$ROOT" && cargo bench --locked --quiet --bench claim -- 1000 1000 | tail -1)
inproc_m=$(cd "$ROOT" && cargo bench --locked --quiet --bench claim -- 1000000 1000 | tail -1)
k_inproc=$(sed -E 's/.*store_us=([0-9.]+).*/\1/' <<<"$inproc_k")
m_inproc=$(sed -E 's/.*store_us=([0-9.]+).*/\1/' <<<"$inproc_m")

body=$work/section.md
cat >"$body" <<MD
Command: \`bash bench/claim.sh\` (BENCH_N=$N runs per per-invocation figure). Machine: $(machine), $(date -u +%Y-%m-%d).

| figure | orch | peer | ratio | target |
|---|---|---|---|---|
| \`orch claim\` per invocation, 100,000 queued | ${orch_us} µs | sqlite3 shell, same single-row claim: ${shell_us} µs | $(ratio "$orch_us" "$shell_us")× | ≤ 1.5× |
| in-process claim rate, 100,000 queued | ${store_rate}/s | raw UPDATE loop, same durability: ${raw_rate}/s | $(awk -v a="$store_rate" -v b="$raw_rate" 'BEGIN{printf "%.0f%%", 100*a/b}') | ≥ 70% |
| \`orch claim\` per invocation, 1,000,000 vs 1,000 queued | ${m_us} µs | ${k_us} µs | $(ratio "$m_us" "$k_us")× | ≤ 2× |
| in-process claim, 1,000,000 vs 1,000 queued | ${m_inproc} µs | ${k_inproc} µs | $(ratio "$m_inproc" "$k_inproc")× | ≤ 2× |

Every claim is one \`BEGIN IMMEDIATE\` transaction with \`synchronous=FULL\` in WAL mode, so each pays
one fsync of the WAL; both sides pay it alike.
MD
cat "$body"
replace_section "Claim (issue 3)" "$body"
