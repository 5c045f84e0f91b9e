#!/usr/bin/env bash
# Limits benchmarks (issue 18): what the budget checks add to a claim. Usage: bash bench/limits.sh
#   BENCH_CLAIMS  claims per figure (default 2000)
#   BENCH_ROUNDS  rounds; each figure is its best round, orch and peer alike (default 5)
# The claim of a project with a task and a daily budget (never reached) against the same claim
# without budgets, in the same process, on databases of 100,000 queued jobs and 10,000 runs with a
# cost finalized today: once on the disk (every claim pays an fsync), once on tmpfs (what is left
# is the CPU the checks cost). Prints `FIGURE` lines and rewrites the "Limits (issue 18)" section of
# BENCHMARKS.md unless BENCH_SECTIONS=0.
source "$(dirname "$0")/lib.sh"
build
CLAIMS=${BENCH_CLAIMS:-2000}
ROUNDS=${BENCH_ROUNDS:-5}
field() { sed -E "s/.*$1=([0-9.]+).*/\\1/" <<<"$2"; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a + 0 < b + 0) ? a : b }'; }

# best DIR: the best budget_us and plain_us over the rounds, with the bench's databases in DIR.
best() {
  local dir=$1 line b= p=
  for ((round = 1; round <= ROUNDS; round++)); do
    line=$(cd "$ROOT" && TMPDIR=$dir cargo bench --locked --quiet --bench claim -- 100000 "$CLAIMS" budget | tail -1)
    b=$(min "$(field budget_us "$line")" "$b")
    p=$(min "$(field plain_us "$line")" "$p")
  done
  echo "$b $p"
}

disk=$(mktemp -d "$OUT/limits.XXXXXX")
trap 'rm -rf "$disk"' EXIT
read -r disk_budget disk_plain < <(best "$disk")
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  read -r mem_budget mem_plain < <(best /dev/shm)
else
  mem_budget=n/a mem_plain=n/a
fi

figure limits_claim_budget_disk_us "$disk_budget"
figure limits_claim_plain_disk_us "$disk_plain"
figure limits_claim_budget_tmpfs_us "$mem_budget"
figure limits_claim_plain_tmpfs_us "$mem_plain"

sections || exit 0
body=$disk/section.md
cat >"$body" <<MD
Command: \`bash bench/limits.sh\` (BENCH_CLAIMS=$CLAIMS claims per figure, best of $ROUNDS rounds, orch and peer alike). Machine: $(machine), $(date -u +%Y-%m-%d).

| figure | orch | peer | ratio | target |
|---|---|---|---|---|
| in-process claim with a task and a daily budget, 100,000 queued, on disk | ${disk_budget} µs | the same claim without budgets: ${disk_plain} µs | $(ratio "$disk_budget" "$disk_plain")× | ≤ 1.2× |
| the same on tmpfs (no fsync: the checks' CPU) | ${mem_budget} µs | ${mem_plain} µs | $(ratio "$mem_budget" "$mem_plain")× | ≤ 1.5× |

Both stores also hold 10,000 runs with a cost finalized today. A task's spending is kept on its row
and a project's per day in \`project_days\`, both by finalize, so a claim reads two rows rather than
adding up the runs.
MD
cat "$body"
replace_section "Limits (issue 18)" "$body"
