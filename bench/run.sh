#!/usr/bin/env bash
# Every benchmark, side by side in one run, against its peer; rewrites the "Summary (bench/run.sh)"
# table at the top of BENCHMARKS.md. The per-issue sections below it keep their detail and are
# rewritten only by their own scripts.
#
#   bash bench/run.sh                  full: 300 runs per per-invocation claim figure, 2,000
#                                      in-process claims, 1,000 preflight runs, a 1 GiB log,
#                                      200 jobs per overhead figure, 1,000,000 finished jobs
#   BENCH_QUICK=1 bash bench/run.sh    quick: 100, 500, 200, a 256 MiB log, 50 jobs, 100,000
#   BENCH_ROUNDS=N                     rounds of the fsync-bound figures (claim, overhead),
#                                      default 2; the table shows each figure's best round
#
# Builds the release binary once; installs sqlite3, jq, hyperfine and GNU time with apt-get when
# missing. The scripts it runs (claim.sh, preflight.sh, validate_log.sh, overhead.sh, years.sh) print
# `FIGURE name value` lines, collected here; their output is kept in bench/out/run-*.log.
source "$(dirname "$0")/lib.sh"
need python3 python3
need sqlite3 sqlite3
need jq jq
need hyperfine hyperfine
need /usr/bin/time time

if [ -n "${BENCH_QUICK:-}" ]; then
  mode=quick
  export BENCH_N=100 BENCH_CLAIMS=500 BENCH_JOBS=50 SIZE_MB=256
  preflight_runs=200
else
  mode=full
  export BENCH_N=300 BENCH_CLAIMS=2000 BENCH_JOBS=200 SIZE_MB=1024
  preflight_runs=1000
fi
rounds=${BENCH_ROUNDS:-2}
unset PEER_MB

echo "== building (release)"
build
export BENCH_NO_BUILD=1 BENCH_SECTIONS=0
collected=$(mktemp -d "$OUT/run.XXXXXX")
trap 'rm -rf "$collected"' EXIT

# step NAME FIGURES-FILE CMD...: run one script, its output on the terminal and in bench/out/run-NAME.log.
step() {
  local name=$1 file=$2; shift 2
  echo "== $name"
  BENCH_FIGURES=$file "$@" 2>&1 | tee "$OUT/run-$name.log"
}

started=$(date +%s)
for ((round = 1; round <= rounds; round++)); do
  step "claim-$round" "$collected/round-$round.env" bash "$ROOT/bench/claim.sh"
  step "overhead-$round" "$collected/round-$round.env" bash "$ROOT/bench/overhead.sh"
done
step preflight "$collected/once.env" bash "$ROOT/bench/preflight.sh" "$preflight_runs"
# years.sh generates its databases once (bench/out/years/) and reuses them; its section of
# BENCHMARKS.md is rewritten only when it is run on its own.
step years "$collected/once.env" bash "$ROOT/bench/years.sh" || true
# validate_log.sh exits 1 when a target is missed; the table says so.
step validate-log "$collected/once.env" bash "$ROOT/bench/validate_log.sh" || true
elapsed=$(( $(date +%s) - started ))

body=$collected/summary.md
python3 - "$collected" "$rounds" "$mode" "$(machine)" "$elapsed" "$body" <<'PY'
import glob, os, subprocess, sys, datetime

collected, rounds, mode, machine, elapsed, out = sys.argv[1:7]
rounds = int(rounds)

def load(path):
    values = {}
    for line in open(path):
        name, _, value = line.strip().partition("=")
        if name:
            values[name] = float(value)
    return values

per_round = [load(f"{collected}/round-{r}.env") for r in range(1, rounds + 1)]
f = load(f"{collected}/once.env")
higher_is_better = ("_per_sec", "_gbps")
for name in per_round[0]:
    values = [r[name] for r in per_round if name in r]
    f[name] = max(values) if name.endswith(higher_is_better) else min(values)

def ms(us):
    return f"{us / 1000:.2f} ms"

def mark(ok):
    return "yes" if ok else "**NO**"

rows = []
def row(figure, orch, peer, ratio, target, met):
    rows.append(f"| {figure} | {orch} | {peer} | {ratio} | {target} | {met} | {machine} |")

r = f["claim_orch_us"] / f["claim_shell_us"]
row("`orch claim` per invocation, 100,000 queued", ms(f["claim_orch_us"]),
    f"`sqlite3` shell, the same one-row claim: {ms(f['claim_shell_us'])}", f"{r:.2f}×", "≤ 1.5×", mark(r <= 1.5))
r = f["claim_inproc_per_sec"] / f["claim_raw_per_sec"]
row("in-process claim rate, 100,000 queued", f"{f['claim_inproc_per_sec']:,.0f}/s",
    f"raw `UPDATE … RETURNING` loop, same durability: {f['claim_raw_per_sec']:,.0f}/s", f"{r:.2f}×", "≥ 0.70×", mark(r >= 0.70))
r = f["claim_1m_us"] / f["claim_1k_us"]
row("`orch claim` per invocation, 1,000,000 queued", ms(f["claim_1m_us"]),
    f"the same at 1,000 queued: {ms(f['claim_1k_us'])}", f"{r:.2f}×", "≤ 2×", mark(r <= 2))
r = f["claim_inproc_1m_us"] / f["claim_inproc_1k_us"]
row("in-process claim, 1,000,000 queued", f"{f['claim_inproc_1m_us']:.0f} µs",
    f"the same at 1,000 queued: {f['claim_inproc_1k_us']:.0f} µs", f"{r:.2f}×", "≤ 2×", mark(r <= 2))
r = f["preflight_orch_us"] / f["preflight_agent_us"]
row("`orch preflight`, cached verdict", ms(f["preflight_orch_us"]),
    f"spawning `tests/agent/fake-claude --version`: {ms(f['preflight_agent_us'])}", f"{r:.2f}×", "≤ 3 ms",
    mark(f["preflight_orch_us"] <= 3000))
def size(mib):
    return f"{mib / 1024:.0f} GiB" if mib % 1024 == 0 else f"{mib:.0f} MiB"
log = size(f["validate_log_mib"])
scaled = "" if f["validate_peer_mib"] == f["validate_log_mib"] else f" (on the first {size(f['validate_peer_mib'])})"
r = f["validate_orch_gbps"] / f["validate_jq_gbps"]
row(f"`orch validate-log`, {log} stream-json log", f"{f['validate_orch_gbps']:.2f} GB/s",
    f"`jq -c 'select(.type==\"result\")'`{scaled}: {f['validate_jq_gbps']:.3f} GB/s", f"{r:.0f}×",
    "≥ 1 GB/s and ≥ 10×", mark(f["validate_orch_gbps"] >= 1 and r >= 10))
r = f["validate_orch_gbps"] / f["validate_py_gbps"]
row(f"`orch validate-log`, {log} stream-json log", f"{f['validate_orch_gbps']:.2f} GB/s",
    f"Python `json.loads` per line{scaled}: {f['validate_py_gbps']:.3f} GB/s", f"{r:.0f}×", "—", "—")
r = f["validate_orch_rss_kib"] / f["validate_jq_rss_kib"]
row(f"`orch validate-log` peak RSS, {log} log", f"{f['validate_orch_rss_kib'] / 1024:.1f} MiB",
    f"jq: {f['validate_jq_rss_kib'] / 1024:.1f} MiB, Python: {f['validate_py_rss_kib'] / 1024:.1f} MiB", f"{r:.2f}×",
    "≤ 16 MiB", mark(f["validate_orch_rss_kib"] <= 16 * 1024))
# The other kinds' judges, each on a log of its own format against the same peer.
for kind, final in [("codex", "turn.completed"), ("gemini", "result")]:
    p = f"validate_{kind}_"
    if p + "orch_gbps" not in f:
        continue
    log = size(f[p + "log_mib"])
    scaled = "" if f[p + "peer_mib"] == f[p + "log_mib"] else f" (on the first {size(f[p + 'peer_mib'])})"
    r = f[p + "orch_gbps"] / f[p + "jq_gbps"]
    row(f"`orch validate-log --agent {kind}`, {log} {kind} log", f"{f[p + 'orch_gbps']:.2f} GB/s",
        f"`jq -cR 'fromjson? | select(.type==\"{final}\")'`{scaled}: {f[p + 'jq_gbps']:.3f} GB/s", f"{r:.0f}×",
        "≥ 1 GB/s and ≥ 10×", mark(f[p + "orch_gbps"] >= 1 and r >= 10))
    row(f"`orch validate-log --agent {kind}` peak RSS, {log} log", f"{f[p + 'orch_rss_kib'] / 1024:.1f} MiB",
        f"jq: {f[p + 'jq_rss_kib'] / 1024:.1f} MiB", f"{f[p + 'orch_rss_kib'] / f[p + 'jq_rss_kib']:.2f}×",
        "≤ 16 MiB", mark(f[p + "orch_rss_kib"] <= 16 * 1024))
agent = f["overhead_agent_us"]
for key, what in [("overhead_tick_us", "one `orch tick` process per job (cron)"),
                  ("overhead_batch_us", "one `orch tick --max-jobs N`")]:
    tick = f[key]
    row(f"orchestration per job, {what}, no-op agent",
        f"{ms(tick)} (overhead {ms(tick - agent)})",
        f"the no-op agent run directly: {ms(agent)}", f"{tick / agent:.1f}×", "none given", "—")

if "years_finished" in f:
    big = f"{f['years_finished']:,.0f}"
    peer = f["years_peer_count_us"]
    for name, what in [("status", "`orch status`"), ("status_json", "`orch status --json`"),
                       ("metrics", "`orch metrics`"), ("jobs", "`orch jobs`"),
                       ("tick", "`orch tick`, nothing to do")]:
        b, small = f[f"years_{name}_big_us"], f[f"years_{name}_small_us"]
        r1, r2 = b / small, b / peer
        row(f"{what}, {big} finished + 1,000 live jobs", ms(b),
            f"the same at 1,000 finished: {ms(small)}; `sqlite3` indexed count on the big database: {ms(peer)}",
            f"{r1:.2f}× / {r2:.2f}×", "≤ 1.5× / ≤ 2×", mark(r1 <= 1.5 and r2 <= 2))
    longest = f["years_prune_longest_batch_ms"]
    row(f"`orch prune` of {f['years_prune_jobs']:,.0f} finished jobs: its longest batch (write lock)",
        f"{longest:.1f} ms (whole prune {f['years_prune_s']:.0f} s, peak RSS {f['years_prune_rss_kib'] / 1024:.1f} MiB)",
        f"worst `orch claim` beside it: {f['years_claim_prune_max_ms']:.1f} ms (p99 {f['years_claim_prune_p99_ms']:.1f} ms; "
        f"before the prune: {f['years_claim_base_max_ms']:.1f} ms)", "—", "≤ 100 ms per batch", mark(longest <= 100))
    before, after = f["years_db_before_bytes"] / 2**20, f["years_db_after_bytes"] / 2**20
    row("database after that prune", f"{after:,.0f} MiB", f"before: {before:,.0f} MiB", f"{after / before:.2f}×",
        "none given", "—")
    row(f"`orch usage --by project,day`, {f['years_usage_rollup_rows']:,.0f} rollup rows (a year) + "
        f"{f['years_usage_live_runs']:,.0f} runs not finalized", ms(f["years_usage_us"]),
        f"`sqlite3` grouping the rollup alone: {ms(f['years_usage_peer_us'])}",
        f"{f['years_usage_us'] / f['years_usage_peer_us']:.2f}×", "none given", "—")

n = os.environ["BENCH_N"]
jobs = os.environ["BENCH_JOBS"]
claims = os.environ["BENCH_CLAIMS"]
def git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()
# The binary's source: uncommitted changes outside it (this file, BENCHMARKS.md) do not count.
commit = git("rev-parse", "--short", "HEAD")
if git("status", "--porcelain", "--", "src", "benches", "Cargo.toml", "Cargo.lock"):
    commit += " with uncommitted changes to the source"
today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
quick = " BENCH_QUICK=1" if mode == "quick" else ""
lines = [
    f"Command: `{quick.strip() + ' ' if quick else ''}bash bench/run.sh` — **{mode} mode** "
    f"({n} runs per per-invocation claim figure, {claims} in-process claims, {log} log, {jobs} jobs per "
    f"overhead figure), {rounds} round(s) of the fsync-bound figures (claim, overhead): each shows its "
    f"best round, orch and peer alike. Release build at {commit}, {today}, {elapsed} s in all.",
    "",
    "Ratio is orch ÷ peer in the row's unit (time, rate or size). The machine is shared with other",
    "builds and test runs, so figures move between runs; the per-issue sections below have the detail.",
    "",
    "| figure | orch | peer | ratio | target | met? | machine |",
    "|---|---|---|---|---|---|---|",
    *rows,
    "",
]
if rounds > 1:
    spread = []
    for name in sorted(per_round[0]):
        values = [r[name] for r in per_round if name in r]
        spread.append(f"{name} " + " / ".join(f"{v:g}" for v in values))
    lines += ["Each round's figures (µs; claims/s for `*_per_sec`): " + "; ".join(spread) + ".", ""]
tmpfs = f.get("overhead_tick_tmpfs_us")
syncs = f.get("overhead_syncs_per_job")
notes = []
if tmpfs:
    notes.append(f"with the database and logs on tmpfs, where fsync is free, a tick costs {ms(tmpfs)} per job")
if syncs:
    notes.append(f"a tick that does one job makes {syncs:.0f} fsync/fdatasync calls")
if notes:
    lines += ["Overhead detail: " + "; ".join(notes) + ".", ""]
open(out, "w").write("\n".join(lines))
PY
cat "$body"
replace_section "Summary (bench/run.sh)" "$body" top
echo "== BENCHMARKS.md: Summary (bench/run.sh) rewritten ($mode mode)"
