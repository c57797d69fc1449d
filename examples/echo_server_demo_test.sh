#!/usr/bin/env bash
# Runs the echo server binary as a user would, talks to it over loopback, stops it.
set -euo pipefail

server="$(dirname "$0")/echo_server"
[ -x "$server" ] || server="$TEST_SRCDIR/$TEST_WORKSPACE/examples/echo_server"
out="${TEST_TMPDIR:-$(mktemp -d)}/server.out"

"$server" --port=0 >"$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT

port=""
for _ in $(seq 1 500); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$out")
  [ -n "$port" ] && break
  sleep 0.01
done
[ -n "$port" ] || { echo "server did not start:"; cat "$out"; exit 1; }

exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'hello ioloop\n' >&3
IFS= read -r -t 10 line <&3
exec 3>&-
[ "$line" = "hello ioloop" ] || { echo "echoed '$line'"; exit 1; }

kill -INT $pid
wait $pid
grep -q "stopped after 1 connections, 13 bytes echoed" "$out" || { cat "$out"; exit 1; }
echo "1 passed, 0 failed"
