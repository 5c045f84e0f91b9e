#!/usr/bin/env bash
# Intake (issue 17): `orch sync` of 1,000 labelled issues over 20 pages of a Gitea stand-in on
# 127.0.0.1 (bench/forge_issues.py: 50 issues a page, bodies of 1 KiB), against `curl` fetching
# the same 20 pages in one process over one kept-alive connection, in the same run:
#   - first sync: a fresh database (schema made beforehand), 1,000 tasks and jobs made in one
#     transaction;
#   - second sync: the same list again, nothing made (1,000 look-ups, no write);
#   - curl: the 20 pages alone, what any client must spend on the wire and the forge.
# The three are timed in turn, round after round (R rounds, medians).
#
#   bash bench/intake.sh             BENCH_ROUNDS=R (default 15), BENCH_ISSUES=N (default 1000)
#
# Prints `FIGURE name value` lines (ms) and rewrites its section of BENCHMARKS.md.
source "$(dirname "$0")/lib.sh"
build
need curl curl
ROUNDS=${BENCH_ROUNDS:-15}
ISSUES=${BENCH_ISSUES:-1000}
PAGE=50
TOKEN=bench-intake-token
work=$(mktemp -d "$OUT/intake.XXXXXX")
python3 "$ROOT/bench/forge_issues.py" "$ISSUES" 1024 "$TOKEN" >"$work/port" &
forge=$!
trap 'kill $forge 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
url=http://127.0.0.1:$port
mkdir -p "$work/home"
cat >"$work/config.toml" <<TOML
[projects.web]
workdir = "$work"
intake = true

[projects.web.forge]
kind = "gitea"
url = "$url"
repo = "team/web"
TOML
export HOME=$work/home ORCH_CONFIG=$work/config.toml ORCH_FORGE_TOKEN=$TOKEN
ORCH_DB=$work/template.db "$ORCH" status >/dev/null
pages=$(( (ISSUES + PAGE - 1) / PAGE ))
# Gitea pages by a full page: orch asks for one more (empty) page when the last is full.
(( ISSUES % PAGE == 0 )) && pages=$(( pages + 1 ))
urls=()
for ((p = 1; p <= pages; p++)); do
  urls+=("$url/api/v1/repos/team/web/issues?state=open&type=issues&labels=orch&limit=$PAGE&page=$p")
done
# One sync to check the set-up: every issue becomes a task.
cp "$work/template.db" "$work/check.db"
made=$(ORCH_DB=$work/check.db "$ORCH" sync --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["projects"][0]["created"]))')
[ "$made" = "$ISSUES" ] || { echo "bench: the first sync made $made tasks, not $ISSUES" >&2; exit 1; }

python3 - "$ROUNDS" "$work" "$ORCH" "$TOKEN" "${urls[@]}" <<'PY' | tee "$work/figures" | figures
import os, shutil, statistics, subprocess, sys, time
rounds, work, orch, token, urls = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
def timed(args, db=None):
    env = dict(os.environ)
    if db:
        env["ORCH_DB"] = db
    started = time.perf_counter()
    done = subprocess.run(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        sys.exit(f"bench: {args[0]} exited {done.returncode}: {done.stderr.decode()[:300]}")
    return took
curl = ["curl", "-s", "-f", "-o", "/dev/null", "-H", f"Authorization: token {token}"]
for u in urls:
    curl += [u, "-o", "/dev/null"]
times = {"first": [], "again": [], "curl": []}
for r in range(rounds):
    db = os.path.join(work, f"round{r}.db")
    shutil.copy(os.path.join(work, "template.db"), db)
    steps = [("first", [orch, "sync"], db), ("again", [orch, "sync"], db), ("curl", curl, None)]
    if r % 2:
        steps = [steps[2], steps[0], steps[1]]
    for name, args, d in steps:
        times[name].append(timed(args, d))
    os.remove(db)
for name, values in times.items():
    print(f"FIGURE intake_{name}_ms {statistics.median(values):.1f}")
print("ROUNDS " + "; ".join(f"{n} " + " / ".join(f"{v:.0f}" for v in vs) for n, vs in times.items()))
PY

sections || exit 0
fig() { awk -v n="$1" '$1 == "FIGURE" && $2 == n { print $3 }' "$work/figures"; }
first=$(fig intake_first_ms) again=$(fig intake_again_ms) curl=$(fig intake_curl_ms)
rounds=$(sed -n 's/^ROUNDS //p' "$work/figures")
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
cat >"$work/section.md" <<MD
Command: \`bash bench/intake.sh\` ($ROUNDS rounds, medians; release build at $commit, $(date -u +%F)).
Machine: $(machine), shared with other builds.

A Gitea stand-in on 127.0.0.1 (bench/forge_issues.py, Python's threading HTTP server, keep-alive)
serves $ISSUES open issues labelled \`orch\`, 1 KiB bodies, $PAGE to a page: $pages pages, the last
one empty (a full page means there may be more). The three figures are timed in turn, round after
round, each a whole process from start to exit:

| figure | median |
|---|---|
| \`orch sync\`, first: a fresh database, $ISSUES tasks and jobs made in one transaction | $first ms |
| \`orch sync\`, again: the same issues, nothing made | $again ms |
| \`curl\` fetching the same $pages pages in one process over one connection | $curl ms |

orch's first sync is $(ratio "$first" "$curl")× curl's fetch, the second $(ratio "$again" "$curl")×.
The rounds (ms): $rounds.

What orch does besides the fetch (not timed apart): starting up and opening the database, each
answer scrubbed of the token in every encoding by the HTTP client before it is parsed, the JSON,
a look-up per issue in one write transaction (both syncs), the tasks, jobs and history rows and
their counters (the first), and the sync recorded as the fleet's turn in the store.
MD
replace_section "Intake (issue 17): orch sync" "$work/section.md"
