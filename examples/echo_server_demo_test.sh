#!/usr/bin/env bash
# Runs the echo server binary as a user would, talks to it over loopback, stops it.
#
# The server's output reaches this script through a FIFO, read line by line: the
# script learns the port by blocking on the server's "listening on" line, so nothing
# here polls a file that may not exist yet, and no wait depends on timing.
set -euo pipefail

server="$(dirname "$0")/echo_server"
[ -x "$server" ] || server="$TEST_SRCDIR/$TEST_WORKSPACE/examples/echo_server"
work="${TEST_TMPDIR:-$(mktemp -d)}"
fifo="$work/server.fifo"
rm -f "$fifo"
mkfifo "$fifo"

"$server" --port=0 >"$fifo" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
# Opening the read end waits for the server's shell to open the write end; a server
# that dies before printing closes it, so the read below ends with EOF, not a hang.
exec 4<"$fifo"

first=""
IFS= read -r -t 60 first <&4 || true
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' <<<"$first")
[ -n "$port" ] || { echo "server did not start: '$first'"; timeout 10 cat <&4 || true; exit 1; }

exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'hello ioloop\n' >&3
IFS= read -r -t 10 line <&3
exec 3>&-
[ "$line" = "hello ioloop" ] || { echo "echoed '$line'"; exit 1; }

kill -INT $pid
wait $pid
rest=$(cat <&4)  # The server has exited: this reads to EOF.
grep -q "stopped after 1 connections, 13 bytes echoed" <<<"$rest" || { echo "$first"; echo "$rest"; exit 1; }
echo "1 passed, 0 failed"
