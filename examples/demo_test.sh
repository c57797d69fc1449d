#!/usr/bin/env bash
# Runs the echo and chat servers as a user would and talks to them over loopback with
# clients the project did not write: socat, OpenBSD nc and Python's asyncio.
#
# A server's output reaches this script through a FIFO, read line by line: the script
# learns the port by blocking on the server's "listening on" line, so nothing here
# polls a file that may not exist yet, and no wait depends on timing.
set -euo pipefail

here="$(dirname "$0")"
[ -x "$here/echo_server" ] || here="$TEST_SRCDIR/$TEST_WORKSPACE/examples"
work="${TEST_TMPDIR:-$(mktemp -d)}"
python=/usr/bin/python3
[ -x "$python" ] || python=python3
for tool in socat nc "$python"; do
  command -v "$tool" >/dev/null || { echo "demo_test: $tool missing (bazel/debian-packages.txt)"; exit 1; }
done

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# start NAME FD ARGS...: starts a server with its output on file descriptor FD and sets
# $port to its port.
start() {
  local name="$1" fd="$2"; shift 2
  local fifo="$work/$name.fifo"
  rm -f "$fifo"
  mkfifo "$fifo"
  "$here/$name" --port=0 "$@" >"$fifo" 2>&1 &
  pids+=($!)
  eval "exec $fd<\"$fifo\""
  local first=""
  IFS= read -r -t 60 first <&"$fd" || true
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' <<<"$first")
  [ -n "$port" ] || { echo "$name did not start: '$first'" >&2; exit 1; }
}

passed=0
check() {  # check WHAT EXPECTED ACTUAL
  if [ "$2" != "$3" ]; then
    echo "FAILED: $1: expected '$2', got '$3'"
    exit 1
  fi
  echo "ok: $1"
  passed=$((passed + 1))
}

start echo_server 4 --idle_timeout=2s
echo_port=$port

check "socat echo" "hello socat" "$(printf 'hello socat\n' | socat -t 5 - "TCP:127.0.0.1:$echo_port")"
check "nc echo" "hello nc" "$(printf 'hello nc\n' | nc -N -w 10 127.0.0.1 "$echo_port")"
big=$(head -c 300000 /dev/zero | tr '\0' 'b')
check "socat echo of 300,000 bytes" "${#big}" "$(printf '%s' "$big" | socat -t 5 - "TCP:127.0.0.1:$echo_port" | wc -c | tr -d ' ')"
out=$("$python" "$here/demo_clients.py" echo "$echo_port" 2)
echo "$out"
passed=$((passed + 1))

start chat_server 5
chat_port=$port
out=$("$python" "$here/demo_clients.py" chat "$chat_port")
echo "$out"
passed=$((passed + 1))
reply=$(printf '/nick netcat\nhi all\n/quit\n' | nc -w 10 127.0.0.1 "$chat_port")
check "nc chat" "* bye" "$(tail -1 <<<"$reply")"

for p in "${pids[@]}"; do kill -INT "$p"; done
for p in "${pids[@]}"; do wait "$p"; done
pids=()
echo_rest=$(cat <&4)  # The servers have exited: these read to EOF.
chat_rest=$(cat <&5)
grep -q "echo_server: stopped after 24 connections" <<<"$echo_rest" ||
  { echo "FAILED: echo server summary: $echo_rest"; exit 1; }
grep -q "dropped idle" <<<"$echo_rest" && grep -q "chat_server: stopped after" <<<"$chat_rest" ||
  { echo "FAILED: chat server summary: $chat_rest"; exit 1; }
echo "ok: both servers stopped on SIGINT and reported: $echo_rest"
passed=$((passed + 1))

# The echo server on two loop threads, in each mode: same clients, then SIGINT and
# each loop's share (handoff: connections 1 and 3 on loop 0, 2 on loop 1).
fd=6
for mode in handoff reuseport; do
  start echo_server "$fd" --loops=2 --mode="$mode"
  check "$mode: socat echo" "hello socat" "$(printf 'hello socat\n' | socat -t 5 - "TCP:127.0.0.1:$port")"
  check "$mode: nc echo" "hello nc" "$(printf 'hello nc\n' | nc -N -w 10 127.0.0.1 "$port")"
  check "$mode: socat echo of 300,000 bytes" "${#big}" "$(printf '%s' "$big" | socat -t 5 - "TCP:127.0.0.1:$port" | wc -c | tr -d ' ')"
  kill -INT "${pids[0]}"
  wait "${pids[0]}"
  pids=()
  rest=$(cat <&"$fd")
  total=$(sed -n 's/.*loop [01]: \([0-9]*\) connections.*/\1/p' <<<"$rest" | awk '{s += $1} END {print s}')
  check "$mode: connections over both loops" 3 "$total"
  if [ "$mode" = handoff ]; then
    grep -q "loop 0: 2 connections" <<<"$rest" && grep -q "loop 1: 1 connections" <<<"$rest" ||
      { echo "FAILED: handoff is not round-robin: $rest"; exit 1; }
  fi
  fd=$((fd + 1))
done
echo "$passed passed, 0 failed"
