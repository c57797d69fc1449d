#!/usr/bin/env bash
# metrics_cost.sh: what IOLoop::Metrics() costs the loop that keeps it, in user-space
# instructions, on W1 (the pipe chain), counted by callgrind.
#
#   bash bench/metrics_cost.sh [N_PAIRS] [OPS]     (default 1000 20000; from the root)
#
# It builds bench:measure optimised with line tables, runs W1 under callgrind, and sums
# the instructions (inclusive: the idle clock reads count with their callee) that
# callgrind_annotate puts on the source lines updating a LoopMetrics counter in
# ioloop/io_loop.cc and io_loop.h. Prints them per event and per loop iteration.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
pairs="${1:-1000}"
ops="${2:-20000}"
command -v valgrind >/dev/null || {
  echo "metrics_cost.sh: needs valgrind (apt-get install valgrind)" >&2
  exit 1
}
# A separate output base keeps these -g objects from replacing compare.sh's binaries.
bazel=(./bazelw --output_base="${HOME}/.cache/ioloop-metrics-cost")
"${bazel[@]}" build --config=opt --copt=-g //bench:measure >/dev/null 2>&1 || {
  "${bazel[@]}" build --config=opt --copt=-g //bench:measure
  exit 1
}
bin="$("${bazel[@]}" info --config=opt --copt=-g bazel-bin 2>/dev/null)/bench/measure"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg" \
  "$bin" --impl=ioloop --workload=w1 --n="$pairs" --ops="$ops" >/dev/null 2>"$work/log"
total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/log")
# callgrind_annotate resolves the build's /proc/self/cwd/... paths against its own
# working directory, which is the repository root here.
callgrind_annotate --auto=yes --inclusive=yes --show-percs=no "$work/cg" >"$work/annotated" 2>/dev/null
python3 - "$work/annotated" "$total" "$ops" <<'PY'
import re, sys
counters = r"(iterations_|events_dispatched_|callbacks_run_|timeouts_fired_|idle_ns_|idle_start|counter\.store)"
metrics = iterations = 0
for line in open(sys.argv[1]):
    # Every iteration of Start() calls RunCallbacks() once: its call count is theirs.
    calls = re.search(r"=> .*IOLoop::RunCallbacks\(\) \((\d+)x\)", line)
    if calls:
        iterations = max(iterations, int(calls.group(1)))
    m = re.match(r"\s*([\d,]+)\s{2,}(.*)", line)
    if not m or not re.search(counters, m.group(2)):
        continue
    metrics += int(m.group(1).replace(",", ""))
total, ops = int(sys.argv[2]), int(sys.argv[3])
print(f"w1 events={ops} instructions={total} per_event={total / ops:.1f}")
print(f"metrics instructions={metrics} per_event={metrics / ops:.2f} "
      f"share={100 * metrics / total:.2f}%")
if iterations:
    print(f"loop iterations={iterations} metrics per_iteration={metrics / iterations:.1f}")
PY
