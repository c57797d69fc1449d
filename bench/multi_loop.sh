#!/usr/bin/env bash
# multi_loop.sh: W5 (64-byte echo ping-pong) against the echo server on 1..N loop
# threads, client in its own process. For each (connections, loops, mode): round trips
# per second, server CPU per round trip, and how many connections each loop got.
#
#   bash bench/multi_loop.sh                       (from the repository root)
#   LOOPS="0 1 2 4 8" CONNS="50 1000" SECS=10 bash bench/multi_loop.sh
#
# LOOPS: 0 is the single-loop server on the main thread (no LoopThreadPool), N >= 1 a
# pool of N loop threads (default "0 1 2"; on a bigger machine, go up to the core
# count, and leave cores for the client: it is one thread, so past a few loops run
# several clients, CLIENTS=k, each with CONNS/k connections). MODES: handoff and/or
# reuseport. The server is //examples:echo_server, the client bench/measure's
# w5client (bench/workloads.h EchoClient). Server CPU is user+system time from
# /proc/<pid>/stat over the measured interval (10 ms ticks), divided by round trips.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
loops_list=(${LOOPS:-0 1 2})
conns_list=(${CONNS:-50 1000})
modes=(${MODES:-handoff reuseport})
secs="${SECS:-5}"
clients="${CLIENTS:-1}"

./bazelw build --config=opt //examples:echo_server //bench:measure >/dev/null 2>&1 || {
  ./bazelw build --config=opt //examples:echo_server //bench:measure
  exit 1
}
bin="$(./bazelw info --config=opt bazel-bin 2>/dev/null)"
server_bin="$bin/examples/echo_server"
client_bin="$bin/bench/measure"
work="$(mktemp -d)"
server_pid=""
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT
tick="$(getconf CLK_TCK)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "| connections | loops | mode | round trips/s | server CPU us/round trip | connections per loop |"
echo "| ---: | ---: | --- | ---: | ---: | --- |"
for conns in "${conns_list[@]}"; do
  for loops in "${loops_list[@]}"; do
    for mode in "${modes[@]}"; do
      [ "$loops" = 0 ] && [ "$mode" != "${modes[0]}" ] && continue  # One loop: no mode.
      fifo="$work/server.fifo"
      rm -f "$fifo"
      mkfifo "$fifo"
      "$server_bin" --port=0 --loops="$loops" --mode="$mode" --idle_timeout=3600s >"$fifo" 2>&1 &
      server_pid=$!
      exec 3<"$fifo"
      IFS= read -r -t 60 first <&3 || true
      port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' <<<"$first")
      [ -n "$port" ] || { echo "server did not start: '$first'" >&2; exit 1; }
      cpu0=$(cpu_ticks "$server_pid")
      client_pids=()
      for c in $(seq 1 "$clients"); do
        "$client_bin" --workload=w5client --port="$port" --n=$((conns / clients)) \
          --ms=$((secs * 1000)) >"$work/client.$c" &
        client_pids+=($!)
      done
      for p in "${client_pids[@]}"; do wait "$p"; done
      cpu1=$(cpu_ticks "$server_pid")
      kill -TERM "$server_pid"
      per_loop=$(cat <&3 | sed -n 's/.*loop \([0-9]*\): \([0-9]*\) connections.*/\2/p' | paste -sd/)
      wait "$server_pid" || true
      server_pid=""
      exec 3<&-
      rt=$(cat "$work"/client.* | sed -n 's/.*round_trips=\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s}')
      awk -v rt="$rt" -v s="$secs" -v c0="$cpu0" -v c1="$cpu1" -v tick="$tick" \
        -v conns="$conns" -v loops="$loops" -v mode="$([ "$loops" = 0 ] && echo "-" || echo "$mode")" \
        -v per="${per_loop:-$conns}" 'BEGIN {
          printf "| %d | %d | %s | %.0f | %.2f | %s |\n", conns, loops, mode, rt / s,
                 (c1 - c0) / tick * 1e6 / rt, per }'
    done
  done
done
