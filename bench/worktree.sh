#!/usr/bin/env bash
# A worktree per task (issue 16): what a task's first stage costs when orch makes the task's git
# worktree and branch for it, against today's in-place run, on a repository of 10,000 files.
# Side by side in one run, each over N tasks of a two-stage pipeline whose first stage is timed
# (`orch tick` per job, the no-op agent of bench/overhead.sh, which changes nothing):
#   - in place: `worktrees = false`, the job runs in the main clone (what orch did before), once
#     without a commit (the default then) and once with `auto_commit = true`;
#   - worktree: the default, each task's first run fetches the base branch from the remote (a
#     bare repository on disk), adds the task's worktree on a new branch (10,000 files checked
#     out) and measures its size;
#   - the floor: `git worktree add -b BRANCH PATH main` alone, N times, in the same repository.
# Overhead of the worktree = worktree − in place; its share that is git's own = the floor.
#
#   bash bench/worktree.sh          BENCH_JOBS=N tasks per figure (default 30; BENCH_FILES=10000)
#   BENCH_ROUNDS=R                   the N jobs of each figure in R rounds (default 3), the figures
#                                    taken in turn each round, each figure its best round: the
#                                    machine is shared, and a checkout of 10,000 files is the first
#                                    to feel it
#
# Prints `FIGURE name value` lines (µs per job) and rewrites its section of BENCHMARKS.md.
source "$(dirname "$0")/lib.sh"
build
N=${BENCH_JOBS:-30}
FILES=${BENCH_FILES:-10000}
ROUNDS=${BENCH_ROUNDS:-3}
PER=$(( N / ROUNDS ))
agent=$ROOT/bench/noop-agent
work=$(mktemp -d "$OUT/worktree.XXXXXX")
trap 'rm -rf "$work"' EXIT

quiet_git() { git -c user.name=bench -c user.email=bench@example.org "$@" >/dev/null 2>&1; }

# The repository: FILES small files in 100 directories, one commit, pushed to a bare remote.
echo "== a repository of $FILES files"
seed=$work/seed
mkdir -p "$seed"
python3 - "$seed" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"dir{i % 100:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:05d}.txt"), "w") as f:
        f.write(f"line {i}\n" * 8)
PY
quiet_git -C "$seed" init -q -b main
quiet_git -C "$seed" add -A
quiet_git -C "$seed" commit -q -m "10,000 files"
quiet_git init -q --bare -b main "$work/remote.git"
quiet_git -C "$seed" push -q "$work/remote.git" main

# world NAME PROJECT-KEYS: a main clone of the remote, a config whose project is it with those
# keys, N tasks queued.
world() {
  local dir=$work/$1
  mkdir -p "$dir/home/.claude"
  quiet_git clone -q "$work/remote.git" "$dir/main"
  (umask 077 && expires=$(( ($(date +%s) + 86400) * 1000 )) &&
    printf '{"claudeAiOauth":{"accessToken":"sk-ant-oat01-bench","expiresAt":%s}}' "$expires" \
      >"$dir/home/.claude/.credentials.json")
  printf '[pipeline]\nstages = ["first", "second"]\n\n[projects.web]\nworkdir = "%s"\n%b\n' \
    "$dir/main" "$2" >"$dir/config.toml"
  for ((i = 1; i <= N; i++)); do in_world "$dir" "$ORCH" enqueue --project web --task "B-$i" --title "Task $i" >/dev/null; done
  in_world "$dir" "$ORCH" preflight >/dev/null
}

in_world() {
  local dir=$1; shift
  HOME=$dir/home ORCH_DB=$dir/orch.db ORCH_CONFIG=$dir/config.toml ORCH_CLAUDE_BIN=$agent \
    ORCH_RETRY_BASE_SECONDS=0 "$@"
}

# first_stages_us NAME: µs per job over PER ticks, each the first stage of a task.
first_stages_us() {
  local dir=$work/$1 start end before
  before=$(sqlite3 "$dir/orch.db" "SELECT count(*) FROM jobs WHERE stage = 'first' AND state = 'done'")
  start=$(now_ns)
  for ((i = 0; i < PER; i++)); do
    in_world "$dir" "$ORCH" tick --worker bench >/dev/null || { echo "bench: tick $i failed" >&2; return 1; }
  done
  end=$(now_ns)
  local first
  first=$(sqlite3 "$dir/orch.db" "SELECT count(*) FROM jobs WHERE stage = 'first' AND state = 'done'")
  [ $((first - before)) = "$PER" ] || { echo "bench: $1: $((first - before)) of $PER first stages done" >&2; return 1; }
  echo $(( (end - start) / PER / 1000 ))
}

# floor_us ROUND: µs per `git worktree add` of a new branch from main, alone, PER times.
floor_us() {
  local main=$work/floor/main start end
  [ -d "$main" ] || { mkdir -p "$work/floor"; quiet_git clone -q "$work/remote.git" "$main"; }
  start=$(now_ns)
  for ((i = 0; i < PER; i++)); do
    git -C "$main" worktree add -q -b "floor-$1-$i" "$work/floor/wt-$1-$i" main 2>/dev/null
  done
  end=$(now_ns)
  echo $(( (end - start) / PER / 1000 ))
}

# best A B…: the smallest.
best() { printf '%s\n' "$@" | sort -n | head -1; }

world inplace 'worktrees = false'
world committed 'worktrees = false\nauto_commit = true\ncommit_author = "bench <bench@example.org>"'
world worktree 'worktrees = true'
declare -a r_inplace r_committed r_worktree r_floor
for ((round = 1; round <= ROUNDS; round++)); do
  r_inplace+=("$(first_stages_us inplace)")
  r_committed+=("$(first_stages_us committed)")
  r_worktree+=("$(first_stages_us worktree)")
  r_floor+=("$(floor_us "$round")")
  echo "round $round: in place ${r_inplace[-1]} µs, with auto_commit ${r_committed[-1]} µs, worktree ${r_worktree[-1]} µs, git worktree add ${r_floor[-1]} µs"
done
inplace_us=$(best "${r_inplace[@]}")
committed_us=$(best "${r_committed[@]}")
worktree_us=$(best "${r_worktree[@]}")
floor=$(best "${r_floor[@]}")
rounds_text=""
for ((round = 0; round < ROUNDS; round++)); do
  rounds_text+="${rounds_text:+; }$(awk -v a="${r_inplace[$round]}" -v b="${r_committed[$round]}" -v c="${r_worktree[$round]}" -v d="${r_floor[$round]}" \
    'BEGIN{printf "%.0f / %.0f / %.0f / %.0f ms", a/1000, b/1000, c/1000, d/1000}')"
done
made=$(sqlite3 "$work/worktree/orch.db" "SELECT count(*) FROM tasks WHERE worktree IS NOT NULL")
bytes=$(sqlite3 "$work/worktree/orch.db" "SELECT coalesce(avg(worktree_bytes), 0) FROM tasks WHERE worktree IS NOT NULL")
echo "in place (worktrees = false): $inplace_us µs per first stage"
echo "in place with auto_commit: $committed_us µs per first stage"
echo "worktree per task: $worktree_us µs per first stage ($made worktrees, $(( ${bytes%.*} / 1048576 )) MiB each)"
echo "git worktree add alone: $floor µs"
figure worktree_inplace_us "$inplace_us"
figure worktree_inplace_commit_us "$committed_us"
figure worktree_first_stage_us "$worktree_us"
figure worktree_add_floor_us "$floor"

if sections; then
  body=$(mktemp)
  overhead=$((worktree_us - inplace_us))
  cat >"$body" <<EOF
Command: \`bash bench/worktree.sh\` (BENCH_JOBS=$N tasks per figure in $ROUNDS rounds, a repository of
$FILES files in 100 directories, $(du -sh "$seed" --exclude=.git | cut -f1) checked out). $(machine); release build at
$(git -C "$ROOT" rev-parse --short HEAD), $(date -u +%Y-%m-%d). Each figure is the mean over $PER
\`orch tick\` processes, each the first stage of a task of a two-stage pipeline, with the no-op
agent (bench/noop-agent, which changes nothing: no commit, no push); the figures were taken in
turn, round after round, and each shows its best round (the rounds, in the table's order:
$rounds_text).

| figure | per job | ratio to in place |
|---|---|---|
| in place (\`worktrees = false\`, what orch did before) | $(awk -v v="$inplace_us" 'BEGIN{printf "%.1f ms", v/1000}') | 1.00× |
| in place with \`auto_commit = true\` (\`git add -A\`, nothing to commit) | $(awk -v v="$committed_us" 'BEGIN{printf "%.1f ms", v/1000}') | $(ratio "$committed_us" "$inplace_us")× |
| a worktree per task: fetch the base, add the worktree ($FILES files), \`git add -A\` in it, measure it | $(awk -v v="$worktree_us" 'BEGIN{printf "%.1f ms", v/1000}') | $(ratio "$worktree_us" "$inplace_us")× |
| the floor: \`git worktree add -b B PATH main\` alone | $(awk -v v="$floor" 'BEGIN{printf "%.1f ms", v/1000}') | — |

The worktree adds $(awk -v v="$overhead" 'BEGIN{printf "%.1f ms", v/1000}') to a task's first stage; \`git worktree add\`
alone, the floor, takes $(awk -v v="$floor" 'BEGIN{printf "%.1f ms", v/1000}') of the same repository (checking out $FILES
files). What lies between the floor and the worktree figure is the fetch of the base branch, the
branch's bookkeeping, the commit's \`git add -A\` in a worktree just checked out (it reads every
file once: git cannot trust the stat data of files written in the same instant as its index)
and measuring the worktree's size. Later stages of the task reuse the worktree and pay none of
the checkout; the task's last stage removes it.
EOF
  replace_section "Worktree per task (bench/worktree.sh)" "$body"
  rm -f "$body"
fi
