# Shared helpers for bench/*.sh: build once, time commands, write BENCHMARKS.md sections.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/bench/out
mkdir -p "$OUT"
ORCH=$ROOT/target/release/orch

need() { # need CMD DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 for $1" >&2
  (apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$2" >/dev/null; }) \
    || { echo "bench: $1 is needed ($2)" >&2; exit 1; }
}

build() {
  [ -n "${BENCH_NO_BUILD:-}" ] || (cd "$ROOT" && cargo build --release --locked --quiet)
}

now_ns() { date +%s%N; }

# per_call_us N CMD...: mean microseconds per run of CMD over N runs (stdout discarded).
per_call_us() {
  local n=$1; shift
  local start end
  start=$(now_ns)
  for ((i = 0; i < n; i++)); do "$@" >/dev/null 2>&1 || true; done
  end=$(now_ns)
  echo $(( (end - start) / n / 1000 ))
}

machine() {
  echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
}

# ratio A B: A/B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

# replace_section TITLE FILE: put FILE's text under "## TITLE" in BENCHMARKS.md, replacing the old.
replace_section() {
  local title=$1 body=$2 md=$ROOT/BENCHMARKS.md
  [ -f "$md" ] || printf '# Benchmarks\n\nEvery figure comes from a script under bench/, run on the machine named beside it; each\nscript rewrites its own section. Ratios compare against a peer measured in the same run.\n' >"$md"
  python3 - "$md" "$title" "$body" <<'PY'
import sys, re
md, title, body = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().rstrip() + "\n"
text = open(md).read()
head = f"## {title}\n"
start = text.find(head)
if start == -1:
    text = text.rstrip() + "\n\n" + head + "\n" + body
else:
    end = text.find("\n## ", start + len(head))
    end = len(text) if end == -1 else end + 1
    text = text[:start] + head + "\n" + body + ("\n" if end < len(text) else "") + text[end:]
open(md, "w").write(text)
PY
}
