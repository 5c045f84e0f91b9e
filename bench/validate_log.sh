#!/usr/bin/env bash
# Benchmark `orch validate-log` on a generated stream-json log (1 GiB by default, page-cached),
# against `jq -c 'select(.type=="result")'` and a Python line-by-line json.loads loop, in one run.
# Targets (issue 6): >= 1 GB/s, >= 10x jq, peak RSS <= 16 MiB.
#
#   bench/validate_log.sh            # SIZE_MB=1024, peers on the whole log
#   SIZE_MB=256 bench/validate_log.sh
#   PEER_MB=256 bench/validate_log.sh   # peers on the first 256 MiB only, their rate scaled
#
# The log is cached under bench/out/ (gitignored). Needs python3, jq and GNU time (/usr/bin/time),
# installs the last two with apt-get when missing. Prints `FIGURE name value` lines (throughput in
# GB/s, peak RSS in KiB) for bench/run.sh.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

SIZE_MB=${SIZE_MB:-1024}
PEER_MB=${PEER_MB:-$SIZE_MB}
RUNS=${RUNS:-5}
out=bench/out
log=$out/stream-${SIZE_MB}m.jsonl
mkdir -p "$out"

command -v python3 >/dev/null || { echo "bench: python3 is missing" >&2; exit 1; }
need jq jq
need /usr/bin/time time

if [ ! -s "$log" ]; then
  echo "== generating $log"
  python3 bench/gen_stream_log.py "$log.tmp" "$SIZE_MB"
  mv "$log.tmp" "$log"
fi
peer_log=$log
if [ "$PEER_MB" != "$SIZE_MB" ]; then
  peer_log=$out/stream-${SIZE_MB}m-first-${PEER_MB}m.jsonl
  # whole lines only, then the same result line the full log ends with
  [ -s "$peer_log" ] || { head -c "$((PEER_MB << 20))" "$log" | sed '$d'; tail -n 2 "$log"; } >"$peer_log"
fi

[ -n "${BENCH_NO_BUILD:-}" ] || echo "== cargo build --release"
build
bin=$ORCH
bytes=$(stat -c %s "$log")
peer_bytes=$(stat -c %s "$peer_log")

# orch reads no configuration here: an empty HOME and config.
sandbox=$(mktemp -d)
trap 'rm -rf "$sandbox"' EXIT
: >"$sandbox/config.toml"
# Every tool runs in this clean environment, outside what GNU time measures.
clean_env=(env -i PATH="$PATH" HOME="$sandbox" ORCH_CONFIG="$sandbox/config.toml")

echo "== warming the page cache"
cat "$log" "$peer_log" >/dev/null
cat "$log" "$peer_log" >/dev/null

# run NAME CMD...: wall seconds (EPOCHREALTIME) and peak RSS (GNU time) of one run
run() {
  local name=$1; shift
  local start end
  start=$EPOCHREALTIME
  "${clean_env[@]}" /usr/bin/time -f '%M' -o "$sandbox/$name.rss" "$@" >"$sandbox/$name.out"
  end=$EPOCHREALTIME
  python3 -c "print(f'{$end - $start:.4f}')"
}

best=
for _ in $(seq "$RUNS"); do
  t=$(run orch "$bin" validate-log --json "$log" 2>/dev/null || true)
  # validate-log exits with the verdict; the generated log must judge ok
  grep -q '"class": "ok"' "$sandbox/orch.out" || { echo "bench: unexpected verdict" >&2; cat "$sandbox/orch.out" >&2; exit 1; }
  if [ -z "$best" ] || python3 -c "import sys; sys.exit(not $t < $best)"; then best=$t; fi
done
orch_rss=$(cat "$sandbox/orch.rss")

jq_t=$(run jq jq -c 'select(.type=="result")' "$peer_log")
jq_rss=$(cat "$sandbox/jq.rss")
grep -q '"type":"result"' "$sandbox/jq.out"

py_t=$(run py python3 -c '
import json, sys
result = None
with open(sys.argv[1], "rb") as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj.get("type") == "result":
            result = obj
print(result["subtype"])
' "$peer_log")
py_rss=$(cat "$sandbox/py.rss")

python3 - "$bytes" "$peer_bytes" "$best" "$orch_rss" "$jq_t" "$jq_rss" "$py_t" "$py_rss" "$RUNS" <<'PY' | figures
import sys
size, peer_size = int(sys.argv[1]), int(sys.argv[2])
orch_t, orch_rss, jq_t, jq_rss, py_t, py_rss = map(float, sys.argv[3:9])
runs = sys.argv[9]
gb = 1e9
rate = lambda n, t: n / t / gb
orch = rate(size, orch_t)
jq = rate(peer_size, jq_t)
py = rate(peer_size, py_t)
scaled = "" if peer_size == size else f" (measured on the first {peer_size / 2**20:.0f} MiB, rate scaled)"
print(f"log: {size / 2**20:.0f} MiB stream-json, page-cached")
print(f"{'tool':<34} {'time':>9} {'GB/s':>7} {'peak RSS':>10} {'orch is':>9}")
print(f"{'orch validate-log (best of ' + runs + ')':<34} {orch_t:>8.3f}s {orch:>7.2f} {orch_rss / 1024:>7.1f} MiB {'':>9}")
jq_name = 'jq select(.type=="result")'
print(f"{jq_name:<34} {size / (jq * gb):>8.2f}s {jq:>7.3f} {jq_rss / 1024:>7.1f} MiB {orch / jq:>8.1f}x")
print(f"{'python json.loads loop':<34} {size / (py * gb):>8.2f}s {py:>7.3f} {py_rss / 1024:>7.1f} MiB {orch / py:>8.1f}x")
if scaled:
    print(f"jq and python{scaled}; their times are for the whole log at that rate")
for name, value in [("validate_orch_gbps", orch), ("validate_jq_gbps", jq), ("validate_py_gbps", py)]:
    print(f"FIGURE {name} {value:.3f}")
for name, value in [("validate_orch_rss_kib", orch_rss), ("validate_jq_rss_kib", jq_rss), ("validate_py_rss_kib", py_rss)]:
    print(f"FIGURE {name} {value:.0f}")
print(f"FIGURE validate_log_mib {size / 2**20:.0f}")
print(f"FIGURE validate_peer_mib {peer_size / 2**20:.0f}")
ok = orch >= 1.0 and orch / jq >= 10 and orch_rss <= 16 * 1024
print("targets (>= 1 GB/s, >= 10x jq, <= 16 MiB):", "met" if ok else "NOT met")
sys.exit(0 if ok else 1)
PY
