# Shared helpers for bench/*.sh: build once, time commands, write BENCHMARKS.md sections.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/bench/out
mkdir -p "$OUT"
ORCH=${CARGO_TARGET_DIR:-$ROOT/target}/release/orch

need() { # need CMD DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 for $1" >&2
  (apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$2" >/dev/null; }) \
    || { echo "bench: $1 is needed ($2)" >&2; exit 1; }
}

# build: the release binary (and the benches), unless bench/run.sh has built them already.
build() {
  [ -n "${BENCH_NO_BUILD:-}" ] || (cd "$ROOT" && cargo build --release --locked --quiet --bins --benches)
}

# figure NAME VALUE: one machine-readable figure, `FIGURE NAME VALUE` on stdout; also appended as
# NAME=VALUE to the file $BENCH_FIGURES when bench/run.sh collects them. VALUE is a plain number.
figure() {
  echo "FIGURE $1 $2"
  [ -z "${BENCH_FIGURES:-}" ] || echo "$1=$2" >>"$BENCH_FIGURES"
}

# figures: copy stdin to stdout, recording its `FIGURE NAME VALUE` lines as figure does.
figures() {
  local line
  while IFS= read -r line; do
    case $line in
      "FIGURE "*) read -r _ name value <<<"$line"; figure "$name" "$value" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done
}

# sections: whether a script rewrites its own BENCHMARKS.md section (bench/run.sh says no).
sections() { [ "${BENCH_SECTIONS:-1}" != 0 ]; }

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

# replace_section TITLE FILE [top]: put FILE's text under "## TITLE" in BENCHMARKS.md, replacing
# the old; a new section goes at the end, or before the first section with `top`.
replace_section() {
  local title=$1 body=$2 where=${3:-end} md=$ROOT/BENCHMARKS.md
  [ -f "$md" ] || printf '# Benchmarks\n\nEvery figure comes from a script under bench/, run on the machine named beside it; each\nscript rewrites its own section. Ratios compare against a peer measured in the same run.\n' >"$md"
  python3 - "$md" "$title" "$body" "$where" <<'PY'
import sys
md, title, body, where = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().rstrip() + "\n", sys.argv[4]
text = open(md).read()
head = f"## {title}\n"
start = text.find(head)
first = text.find("\n## ")
if start == -1 and where == "top" and first != -1:
    text = text[:first + 1] + head + "\n" + body + "\n" + text[first + 1:]
elif start == -1:
    text = text.rstrip() + "\n\n" + head + "\n" + body
else:
    end = text.find("\n## ", start + len(head))
    end = len(text) if end == -1 else end + 1
    text = text[:start] + head + "\n" + body + ("\n" if end < len(text) else "") + text[end:]
open(md, "w").write(text)
PY
}
