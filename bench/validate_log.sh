#!/usr/bin/env bash
# Benchmark `orch validate-log` on a generated log of each agent kind's format (1 GiB by default,
# page-cached): Claude Code's stream-json (bench/gen_stream_log.py), Codex's `exec --json` events
# and Gemini's stream-json (bench/gen_agent_log.py), each judged by its kind's rules (`--agent
# KIND`) against the same peers in the same run: jq selecting the kind's closing event (`result`
# or `turn.completed`) and a Python line-by-line json.loads loop. Codex's and Gemini's logs hold
# their stderr text lines too, so jq reads them raw there (`jq -cR 'fromjson? | select(…)'`).
# Targets (issue 6, for every kind): >= 1 GB/s, >= 10x jq, peak RSS <= 16 MiB.
#
#   bench/validate_log.sh               # SIZE_MB=1024, every kind, peers on the whole log
#   SIZE_MB=256 bench/validate_log.sh
#   PEER_MB=256 bench/validate_log.sh   # peers on the first 256 MiB only, their rate scaled
#   KINDS=codex bench/validate_log.sh   # one kind
#
# The logs are cached under bench/out/ (gitignored). Needs python3, jq and GNU time
# (/usr/bin/time), installs the last two with apt-get when missing. Prints `FIGURE name value`
# lines (throughput in GB/s, peak RSS in KiB) for bench/run.sh: Claude Code's as `validate_*`,
# the others as `validate_<kind>_*`.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

SIZE_MB=${SIZE_MB:-1024}
PEER_MB=${PEER_MB:-$SIZE_MB}
RUNS=${RUNS:-5}
KINDS=${KINDS:-claude codex gemini}
out=bench/out
mkdir -p "$out"

command -v python3 >/dev/null || { echo "bench: python3 is missing" >&2; exit 1; }
need jq jq
need /usr/bin/time time

[ -n "${BENCH_NO_BUILD:-}" ] || echo "== cargo build --release"
build
bin=$ORCH

# orch reads no configuration here: an empty HOME and config.
sandbox=$(mktemp -d)
trap 'rm -rf "$sandbox"' EXIT
: >"$sandbox/config.toml"
# Every tool runs in this clean environment, outside what GNU time measures.
clean_env=(env -i PATH="$PATH" HOME="$sandbox" ORCH_CONFIG="$sandbox/config.toml")

# run NAME CMD...: wall seconds (EPOCHREALTIME) and peak RSS (GNU time) of one run
run() {
  local name=$1; shift
  local start end
  start=$EPOCHREALTIME
  "${clean_env[@]}" /usr/bin/time -f '%M' -o "$sandbox/$name.rss" "$@" >"$sandbox/$name.out"
  end=$EPOCHREALTIME
  python3 -c "print(f'{$end - $start:.4f}')"
}

failed=0
# bench_kind KIND: generate (once) and judge that kind's log, against the peers.
bench_kind() {
  local kind=$1 log final prefix
  case $kind in
    claude) log=$out/stream-${SIZE_MB}m.jsonl final=result prefix=validate ;;
    codex | gemini) log=$out/$kind-${SIZE_MB}m.jsonl prefix=validate_$kind
      final=$([ "$kind" = codex ] && echo turn.completed || echo result) ;;
    *) echo "bench: unknown kind $kind" >&2; exit 2 ;;
  esac
  if [ ! -s "$log" ]; then
    echo "== generating $log"
    if [ "$kind" = claude ]; then
      python3 bench/gen_stream_log.py "$log.tmp" "$SIZE_MB"
    else
      python3 bench/gen_agent_log.py "$kind" "$log.tmp" "$SIZE_MB"
    fi
    mv "$log.tmp" "$log"
  fi
  local peer_log=$log
  if [ "$PEER_MB" != "$SIZE_MB" ]; then
    peer_log=${log%.jsonl}-first-${PEER_MB}m.jsonl
    # whole lines only, then the same closing lines the full log ends with
    [ -s "$peer_log" ] || { head -c "$((PEER_MB << 20))" "$log" | sed '$d'; tail -n 2 "$log"; } >"$peer_log"
  fi
  local bytes peer_bytes
  bytes=$(stat -c %s "$log")
  peer_bytes=$(stat -c %s "$peer_log")

  echo "== $kind: warming the page cache"
  cat "$log" "$peer_log" >/dev/null
  cat "$log" "$peer_log" >/dev/null

  local best= t
  for _ in $(seq "$RUNS"); do
    t=$(run orch "$bin" validate-log --agent "$kind" --json "$log" 2>/dev/null || true)
    # validate-log exits with the verdict; the generated log must judge ok
    grep -q '"class": "ok"' "$sandbox/orch.out" || { echo "bench: unexpected verdict" >&2; cat "$sandbox/orch.out" >&2; exit 1; }
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(not $t < $best)"; then best=$t; fi
  done
  local orch_rss jq_t jq_rss py_t py_rss
  orch_rss=$(cat "$sandbox/orch.rss")

  local jq_filter="select(.type==\"$final\")" jq_flags=-c
  # stderr's text lines would stop jq: read lines raw and skip what is not JSON
  [ "$kind" = claude ] || { jq_filter="fromjson? | $jq_filter" jq_flags=-cR; }
  jq_t=$(run jq jq "$jq_flags" "$jq_filter" "$peer_log")
  jq_rss=$(cat "$sandbox/jq.rss")
  grep -q "\"type\":\"$final\"" "$sandbox/jq.out"

  py_t=$(run py python3 -c '
import json, sys
final = None
with open(sys.argv[1], "rb") as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("type") == sys.argv[2]:
            final = obj
print(final["type"])
' "$peer_log" "$final")
  py_rss=$(cat "$sandbox/py.rss")

  python3 - "$bytes" "$peer_bytes" "$best" "$orch_rss" "$jq_t" "$jq_rss" "$py_t" "$py_rss" "$RUNS" "$kind" "$jq_flags $jq_filter" "$prefix" <<'PY' | figures || failed=1
import sys
size, peer_size = int(sys.argv[1]), int(sys.argv[2])
orch_t, orch_rss, jq_t, jq_rss, py_t, py_rss = map(float, sys.argv[3:9])
runs, kind, jq_name, prefix = sys.argv[9:13]
gb = 1e9
rate = lambda n, t: n / t / gb
orch = rate(size, orch_t)
jq = rate(peer_size, jq_t)
py = rate(peer_size, py_t)
scaled = "" if peer_size == size else f" (measured on the first {peer_size / 2**20:.0f} MiB, rate scaled)"
print(f"{kind} log: {size / 2**20:.0f} MiB, page-cached")
print(f"{'tool':<56} {'time':>9} {'GB/s':>7} {'peak RSS':>10} {'orch is':>9}")
orch_name = f"orch validate-log --agent {kind} (best of {runs})"
print(f"{orch_name:<56} {orch_t:>8.3f}s {orch:>7.2f} {orch_rss / 1024:>7.1f} MiB {'':>9}")
jq_name = f"jq {jq_name}"
print(f"{jq_name:<56} {size / (jq * gb):>8.2f}s {jq:>7.3f} {jq_rss / 1024:>7.1f} MiB {orch / jq:>8.1f}x")
print(f"{'python json.loads loop':<56} {size / (py * gb):>8.2f}s {py:>7.3f} {py_rss / 1024:>7.1f} MiB {orch / py:>8.1f}x")
if scaled:
    print(f"jq and python{scaled}; their times are for the whole log at that rate")
for name, value in [("orch_gbps", orch), ("jq_gbps", jq), ("py_gbps", py)]:
    print(f"FIGURE {prefix}_{name} {value:.3f}")
for name, value in [("orch_rss_kib", orch_rss), ("jq_rss_kib", jq_rss), ("py_rss_kib", py_rss)]:
    print(f"FIGURE {prefix}_{name} {value:.0f}")
print(f"FIGURE {prefix}_log_mib {size / 2**20:.0f}")
print(f"FIGURE {prefix}_peer_mib {peer_size / 2**20:.0f}")
ok = orch >= 1.0 and orch / jq >= 10 and orch_rss <= 16 * 1024
print(f"{kind} targets (>= 1 GB/s, >= 10x jq, <= 16 MiB):", "met" if ok else "NOT met")
sys.exit(0 if ok else 1)
PY
}

for kind in $KINDS; do
  bench_kind "$kind"
done
exit "$failed"
