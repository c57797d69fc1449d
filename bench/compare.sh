#!/usr/bin/env bash
# compare.sh: ioloop (on epoll and on io_uring) against raw epoll, libevent and libuv,
# side by side, in one run.
#
#   bash bench/compare.sh [REPS]        (default 5; from the repository root)
#   COMPARE_BLOCKS=stream bash bench/compare.sh 1   (only the stream-layer W5 block;
#                                        "loops" is every other block; default both)
#
# Wall time: every (workload, implementation) pair runs in a fresh process, interleaved
# (ioloop raw libevent libuv, ioloop raw libevent libuv, ...) REPS times; the table
# shows median [min-max]. These 2-core machines are noisy, so it also counts, for W1,
# W4 and W5, user-space instructions per operation (valgrind --tool=callgrind, which
# is repeatable whatever else runs) and system calls per operation (strace -c -f,
# taken as the difference between a run of 2X and a run of X operations, so set-up
# cancels out). Results land in bench/results/ (table.md, raw data, chart.png).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
reps="${1:-5}"
out="$root/bench/results"
mkdir -p "$out"
impls=(ioloop ioloop_uring raw libevent libuv)
blocks=" ${COMPARE_BLOCKS:-loops stream} "

need=()
for tool in valgrind strace gnuplot python3; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${need[@]}" | sed 's/^gnuplot$/gnuplot-nox/' | tr '\n' ' ')
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "compare.sh: installing $pkgs"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
  else
    echo "compare.sh: please install: $pkgs" >&2
    exit 1
  fi
fi

./bazelw build --config=opt //bench:loop_benchmark //bench:measure >/dev/null 2>&1 || {
  ./bazelw build --config=opt //bench:loop_benchmark //bench:measure
  exit 1
}
bin="$(./bazelw info --config=opt bazel-bin 2>/dev/null)/bench"

if [[ "$blocks" == *" loops "* ]]; then
# --- wall time -----------------------------------------------------------------
rows=(
  "W1_PipeChainDispatch/IMPL/100"
  "W1_PipeChainDispatch/IMPL/1000"
  "W1_PipeChainDispatch/IMPL/9900"
  "W1_PipeChainSetup/IMPL/1000"
  "W2_Timers/IMPL/1000000/0/iterations:3"
  "W2_Timers/IMPL/1000000/1/iterations:3"
  "W3_CancelChurn/IMPL/1000000/iterations:3"
  "W4_CrossThread/IMPL/500000/iterations:3"
  "W5_TcpEcho/IMPL/1000/iterations:1/real_time"
)
: >"$out/wall.jsonl"
for rep in $(seq 1 "$reps"); do
  for row in "${rows[@]}"; do
    for impl in "${impls[@]}"; do
      name="${row/IMPL/$impl}"
      filter="^${name}\$"  # Names hold only [A-Za-z0-9_/:], nothing to escape.
      "$bin/loop_benchmark" --benchmark_filter="$filter" --benchmark_format=json 2>/dev/null |
        python3 -c 'import json,sys; [print(json.dumps(b)) for b in json.load(sys.stdin)["benchmarks"]]' \
        >>"$out/wall.jsonl"
    done
  done
  echo "compare.sh: wall-time repetition $rep/$reps done"
done

# W3's peak RSS, each implementation in a fresh process doing only W3.
: >"$out/rss.txt"
for rep in $(seq 1 "$reps"); do
  for impl in "${impls[@]}"; do
    "$bin/measure" --impl="$impl" --workload=w3 --ops=1000000 >>"$out/rss.txt"
  done
done

# --- instructions (callgrind) and system calls (strace) --------------------------
callgrind_ir() {  # prints the instructions collected between the measure's toggles
  local log
  log=$(mktemp)
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null "$@" 2>"$log" >/dev/null
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log"
  rm -f "$log"
}
syscalls() {  # prints "total epoll_ctl" system calls of a whole run
  local log
  log=$(mktemp)
  strace -f -c -o "$log" "$@" >/dev/null 2>&1
  python3 - "$log" <<'PY'
import sys
total = ctl = 0
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] not in ("total",):
        calls = int(parts[3])
        total += calls
        if parts[-1] == "epoll_ctl":
            ctl += calls
print(total, ctl)
PY
  rm -f "$log"
}
w5_server() {  # $1 impl, $2 wrapper...: prints the W5 server's ops under a wrapper
  w5_server_line "$@" | sed -n 's/.* ops=\([0-9]*\).*/\1/p'
}
w5_server_line() {  # $1 impl, $2 wrapper...: runs the W5 server with the shared client, prints its result line
  local impl="$1"; shift
  # The server's stdout comes through a FIFO: reading its "port=" line blocks until the
  # server is listening (no polling of a file that may not be written yet).
  local dir fifo line port pid
  dir=$(mktemp -d)
  fifo="$dir/server.out"
  mkfifo "$fifo"
  "$@" "$bin/measure" --impl="$impl" --workload=w5server --n=50 >"$fifo" 2>/dev/null &
  pid=$!
  exec 5<"$fifo"
  port=""
  while IFS= read -r -t 120 line <&5; do
    case "$line" in port=*) port="${line#port=}"; break ;; esac
  done
  [ -n "$port" ] || { echo "compare.sh: the $impl W5 server did not start" >&2; exit 1; }
  "$bin/measure" --workload=w5client --port="$port" --n=50 --ms=2000 >/dev/null
  wait "$pid"
  grep "workload=w5server" <&5
  exec 5<&-
  rm -rf "$dir"
}

: >"$out/counts.txt"
for impl in "${impls[@]}"; do
  ir=$(callgrind_ir "$bin/measure" --impl="$impl" --workload=w1 --n=1000 --ops=20000)
  echo "$impl w1 instructions_per_op $(python3 -c "print($ir/20000)")" >>"$out/counts.txt"
  read -r s1 c1 < <(syscalls "$bin/measure" --impl="$impl" --workload=w1 --n=1000 --ops=20000)
  read -r s2 _ < <(syscalls "$bin/measure" --impl="$impl" --workload=w1 --n=1000 --ops=40000)
  echo "$impl w1 syscalls_per_op $(python3 -c "print(($s2-$s1)/20000)")" >>"$out/counts.txt"
  echo "$impl w1 epoll_ctl_per_registration $(python3 -c "print($c1/1000)")" >>"$out/counts.txt"

  ir=$(callgrind_ir "$bin/measure" --impl="$impl" --workload=w4 --ops=200000)
  echo "$impl w4 instructions_per_op $(python3 -c "print($ir/200000)")" >>"$out/counts.txt"
  # W4's system calls are futex waits and wake-ups whose number varies with thread
  # scheduling, so the difference method turns to noise: report the whole run's
  # calls per callback (an upper bound that includes set-up).
  read -r s2 _ < <(syscalls "$bin/measure" --impl="$impl" --workload=w4 --ops=200000)
  echo "$impl w4 syscalls_per_op_whole_run $(python3 -c "print($s2/200000)")" >>"$out/counts.txt"

  log=$(mktemp)
  ops=$(w5_server "$impl" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null --log-file="$log")
  ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log")
  echo "$impl w5 instructions_per_op $(python3 -c "print($ir/max($ops,1))")" >>"$out/counts.txt"
  ops=$(w5_server "$impl" strace -f -c -o "$log")
  s=$(python3 -c "
import sys
t=0
for l in open('$log'):
    p=l.split()
    if len(p)>=5 and p[0][0].isdigit(): t+=int(p[3])
print(t)")
  echo "$impl w5 syscalls_per_op $(python3 -c "print($s/max($ops,1))")" >>"$out/counts.txt"
  rm -f "$log"
  echo "compare.sh: instruction and system-call counts for $impl done"
done

fi  # loops

if [[ "$blocks" == *" stream "* ]]; then
# --- W5 on the stream layer (net/): the echo server on TCPServer + IOStream ---------
# Per round trip, server side, for the raw epoll loop, the raw-fd echo on ioloop, and
# the IOStream echo (three styles on the default poller, the streaming one also on
# io_uring: `iostream_uring`, which measures whatever I/O path IOStream takes on an
# io_uring loop), at 50 and 1,000 connections, same client in another process:
#   - instructions: callgrind, user space, server process, serving part only, a 2 s
#     client run minus a 0 s one (below), per extra round trip: accepting and setting
#     up 1,000 streams would otherwise weigh on the few round trips a slowed-down
#     server manages;
#   - system calls: `strace -f -c` of the server process (all calls; the server is
#     one thread and the client is not traced): a 2 s client run minus a 0 s one (the
#     client connects, sends one message per connection and closes), divided by the
#     difference in round trips, so set-up and teardown (process start, accepts,
#     socket options, closes) cancel out. (The difference of a 2 s and a 1 s run would
#     too, but strace's slow-down varies so much between runs on a shared machine
#     that the two round-trip counts can come out in either order.)
#   - round trips/s: the client's count over its run (median of REPS runs);
#   - server CPU per round trip, user space and kernel: the serving thread's CPU time
#     (clock_gettime, split by getrusage(RUSAGE_THREAD)'s ru_stime) over a 0 s run's,
#     in the same runs; on loopback the kernel part includes the TCP work of the
#     client's receives that the server's sends trigger;
#   - memory per connection: (VmHWM after serving - VmRSS once listening) / connections,
#     user-space memory only (the kernel's socket buffers are not in RSS);
#   - allocations per round trip (over a 0 s run's) and bytes copied per byte echoed.
# An implementation the kernel refuses (io_uring) shows n/a.
: >"$out/net_counts.txt"
stream_run() {  # $1 impl, $2 connections, $3 client ms, $4 wrapper...: server line + client_round_trips=
  local impl="$1" conns="$2" ms="$3"; shift 3
  local dir fifo line port pid rt
  dir=$(mktemp -d)
  fifo="$dir/server.out"
  mkfifo "$fifo"
  "$@" "$bin/measure" --impl="$impl" --workload=w5server --n="$conns" >"$fifo" 2>"$dir/server.err" &
  pid=$!
  exec 6<"$fifo"
  port=""
  while IFS= read -r -t 300 line <&6; do
    case "$line" in port=*) port="${line#port=}"; break ;; esac
  done
  if [ -z "$port" ]; then  # Refused (exit 3: no io_uring here) or failed to start.
    wait "$pid" || true
    echo "compare.sh: the $impl W5 server did not start: $(head -c 300 "$dir/server.err")" >&2
    exec 6<&-
    rm -rf "$dir"
    return 0
  fi
  rt=$("$bin/measure" --workload=w5client --port="$port" --n="$conns" --ms="$ms" |
    sed -n 's/.*round_trips=\([0-9]*\).*/\1/p')
  wait "$pid"
  line=$(grep "workload=w5server" <&6 || true)
  exec 6<&-
  rm -rf "$dir"
  echo "$line client_round_trips=$rt"
}
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $2"; }
strace_total() {  # all system calls in an `strace -c` summary
  python3 -c "
import sys
t=0
for l in open(sys.argv[1]):
    p=l.split()
    if len(p)>=5 and p[0][0].isdigit() and p[-1]!='total': t+=int(p[3])
print(t)" "$1"
}
emit() { echo "$1 $2 $3 $4" >>"$out/net_counts.txt"; }  # impl connections metric value
for conns in 50 1000; do
  if [ "$conns" -eq 50 ]; then
    stream_impls=(raw ioloop iostream iostream_strings iostream_coro iostream_uring)
  else
    stream_impls=(raw ioloop iostream iostream_uring)
  fi
  for impl in "${stream_impls[@]}"; do
    log=$(mktemp)
    # The 0 s baseline first: it tells whether the server starts at all (n/a if not).
    line=$(stream_run "$impl" "$conns" 0 valgrind --tool=callgrind --instr-atstart=no \
      --callgrind-out-file=/dev/null --log-file="$log")
    if [ -z "$(field ops "$line")" ]; then
      echo "compare.sh: stream-layer W5 $impl/$conns: n/a" >&2
      rm -f "$log"
      continue
    fi
    ops0=$(field ops "$line"); ir0=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log")
    line=$(stream_run "$impl" "$conns" 2000 valgrind --tool=callgrind --instr-atstart=no \
      --callgrind-out-file=/dev/null --log-file="$log")
    ops2=$(field ops "$line"); ir2=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log")
    emit "$impl" "$conns" instructions_per_round_trip \
      "$(python3 -c "print(round(($ir2-$ir0)/max($ops2-$ops0,1),1))")"
    line=$(stream_run "$impl" "$conns" 0 strace -f -c -o "$log")
    ops0=$(field ops "$line"); s0=$(strace_total "$log")
    line=$(stream_run "$impl" "$conns" 2000 strace -f -c -o "$log")
    ops2=$(field ops "$line"); s2=$(strace_total "$log")
    emit "$impl" "$conns" syscalls_per_round_trip \
      "$(python3 -c "print(round(($s2-$s0)/max($ops2-$ops0,1),3))")"
    rm -f "$log"
    line=$(stream_run "$impl" "$conns" 0)
    ops0=$(field ops "$line"); allocs0=$(field allocations "$line")
    cpu0=$(field server_cpu_ns "$line"); kernel0=$(field server_kernel_ns "$line")
    for rep in $(seq 1 "$reps"); do
      line=$(stream_run "$impl" "$conns" 1000)
      ops=$(field ops "$line")
      emit "$impl" "$conns" round_trips_per_s "$(field client_round_trips "$line")"
      kernel=$(($(field server_kernel_ns "$line") - kernel0))
      emit "$impl" "$conns" server_user_us_per_round_trip \
        "$(python3 -c "print(round(($(field server_cpu_ns "$line")-$cpu0-$kernel)/1000/max($ops-$ops0,1),3))")"
      emit "$impl" "$conns" server_kernel_us_per_round_trip \
        "$(python3 -c "print(round($kernel/1000/max($ops-$ops0,1),3))")"
      emit "$impl" "$conns" allocations_per_round_trip \
        "$(python3 -c "print(round(($(field allocations "$line")-$allocs0)/max($ops-$ops0,1),4))")"
      emit "$impl" "$conns" memory_per_connection_kb \
        "$(python3 -c "print(round(($(field peak_rss_kb "$line")-$(field rss_before_kb "$line"))/$conns,2))")"
      copied=$(field bytes_copied "$line")
      if [ -n "$copied" ]; then
        emit "$impl" "$conns" bytes_copied_per_byte_echoed \
          "$(python3 -c "print(round($copied/max($(field bytes_echoed "$line"),1),3))")"
      fi
    done
    echo "compare.sh: stream-layer W5 counts for $impl at $conns connections done"
  done
done
python3 "$root/bench/make_net_table.py" "$out/net_counts.txt" >"$out/net_table.md"
cat "$out/net_table.md"
# --- end of the stream-layer block ----------------------------------------------
fi  # stream

if [[ "$blocks" == *" loops "* ]]; then

python3 "$root/bench/make_table.py" "$out" "$reps" >"$out/table.md"
gnuplot -e "outdir='$out'" "$root/bench/chart.gp"
cat "$out/table.md"
echo
echo "compare.sh: table in bench/results/table.md, chart in bench/results/chart.png"
fi
