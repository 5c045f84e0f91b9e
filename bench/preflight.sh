#!/usr/bin/env bash
# Benchmark: `orch preflight` on a warm cache, per invocation, against spawning the stand-in
# agent's `--version` (what a cache miss costs at the very least; the real `claude --version`
# costs about 80 ms and 218 MB). Target: <= 3 ms per cached preflight.
#
#   bench/preflight.sh [RUNS]      (default 500 runs each)
#
# Uses hyperfine when it is on PATH (apt-get install hyperfine), else a bash loop timed with
# `date +%s%N`. Runs in a temporary HOME and database; never reads ~/.claude. Prints
# `FIGURE preflight_orch_us N` and `FIGURE preflight_agent_us N` (means) for bench/run.sh.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
runs=${1:-500}

build
orch=$ORCH
fake=$ROOT/tests/agent/fake-claude

world=$(mktemp -d)
trap 'rm -rf "$world"' EXIT
mkdir -p "$world/home/.claude"
export HOME=$world/home ORCH_DB=$world/orch.db ORCH_CONFIG=$world/config.toml
export ORCH_CLAUDE_BIN=$fake
# Only the agent orch spawns counts its calls (the profile's env), not the peer runs below.
calls=$world/calls
printf '[agents.claude.env]\nFAKE_CLAUDE_CALLS = "%s"\n' "$calls" >"$ORCH_CONFIG"
expires=$(( ($(date +%s) + 86400) * 1000 ))
umask 077
printf '{"claudeAiOauth":{"accessToken":"sk-ant-oat01-bench","refreshToken":"sk-ant-ort01-bench","expiresAt":%s}}' \
  "$expires" >"$HOME/.claude/.credentials.json"

# Warm the cache: one evaluation spawns the agent, every run after it must not.
"$orch" preflight >/dev/null
"$orch" preflight --json | grep -q '"cached": true' || { echo "the cache is not warm" >&2; exit 1; }
calls_before=$(wc -l <"$calls")

echo "orch $("$orch" --version | cut -d' ' -f2), $(nproc) cores, $runs runs each"
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 20 --runs "$runs" \
    --export-json "$world/result.json" \
    -n "orch preflight (warm cache)" "$orch preflight" \
    -n "fake-claude --version" "$fake --version"
  python3 - "$world/result.json" <<'PY' | figures
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for r in results:
    print(f"{r['command']:<28} mean {r['mean']*1000:7.3f} ms  median {r['median']*1000:7.3f} ms  "
          f"min {r['min']*1000:7.3f} ms  max {r['max']*1000:7.3f} ms")
orch, fake = results[0], results[1]
print(f"a warm preflight takes {orch['mean'] / fake['mean']:.2f}x the time of spawning the stand-in's --version")
print("target <= 3 ms per cached preflight:", "met" if orch["mean"] <= 0.003 else "MISSED")
print(f"FIGURE preflight_orch_us {orch['mean'] * 1e6:.0f}")
print(f"FIGURE preflight_agent_us {fake['mean'] * 1e6:.0f}")
PY
else
  time_loop() { # name, figure, command...
    local name=$1 fig=$2; shift 2
    local start end
    for _ in 1 2 3 4 5 6 7 8 9 10; do "$@" >/dev/null; done
    start=$(date +%s%N)
    for ((i = 0; i < runs; i++)); do "$@" >/dev/null; done
    end=$(date +%s%N)
    awk -v n="$name" -v t=$((end - start)) -v r="$runs" 'BEGIN { printf "%-28s mean %7.3f ms\n", n, t / r / 1e6 }'
    figure "$fig" $(( (end - start) / runs / 1000 ))
  }
  time_loop "orch preflight (warm cache)" preflight_orch_us "$orch" preflight
  time_loop "fake-claude --version" preflight_agent_us "$fake" --version
fi

echo "agent spawns during the warm preflights: $(( $(wc -l <"$calls") - calls_before ))"
# For scale: a cache miss, which spawns the stand-in agent and writes the verdict.
if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 5 --runs $(( runs / 5 )) -n "orch preflight --no-cache" "$orch preflight --no-cache" |
    grep -E 'Time|Range'
fi
if command -v /usr/bin/time >/dev/null; then
  echo "max RSS: orch preflight (warm) $(/usr/bin/time -f %M "$orch" preflight 2>&1 >/dev/null | tail -1) KB," \
       "fake-claude --version $(/usr/bin/time -f %M "$fake" --version 2>&1 >/dev/null | tail -1) KB"
fi
