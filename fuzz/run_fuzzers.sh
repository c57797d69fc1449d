#!/usr/bin/env bash
# run_fuzzers.sh: builds each fuzz target with clang's libFuzzer (+ ASan and UBSan)
# and runs it from its checked-in corpus.
#
#   bash fuzz/run_fuzzers.sh [SECONDS_PER_TARGET]     (default 60)
#
# New inputs go to .cache/fuzz/<target>/ (ignored), crashes to .cache/fuzz/crashes/;
# copy a crash into fuzz/corpus/<target>/ to keep it as a regression (the
# *_corpus_test targets replay that folder under `bazel test`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${1:-60}"
work="$root/.cache/fuzz"
mkdir -p "$work/crashes" "$work/bin"

if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "run_fuzzers: installing clang and libclang-rt-14-dev"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
  else
    echo "run_fuzzers: needs clang with libFuzzer (Debian: clang libclang-rt-14-dev)" >&2
    exit 1
  fi
fi

flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$root" -DIOLOOP_HAVE_EPOLL -DIOLOOP_HAVE_IO_URING -DIOLOOP_PLATFORM_POLLER=epoll)
absl_libs=(-labsl_status -labsl_statusor -labsl_strings -labsl_str_format_internal -labsl_time
           -labsl_time_zone -labsl_civil_time -labsl_symbolize -labsl_raw_logging_internal -labsl_int128
           -labsl_hash -labsl_raw_hash_set -luring -pthread
           # absl::Cord: the io_uring backend's sends (CompletionIo) and IOStream's queue.
           -labsl_cord -labsl_cord_internal -labsl_cordz_info -labsl_cordz_handle
           -labsl_cordz_functions -labsl_throw_delegate -labsl_synchronization)
base_sources=(base/check.cc base/errno_status.cc base/recycling_allocator.cc)
loop_sources=(ioloop/io_loop.cc ioloop/stack_context.cc ioloop/internal/blocking_watchdog.cc
              timers/clock.cc timers/timer_heap.cc waker/eventfd_waker.cc waker/pipe_waker.cc
              waker/default_waker.cc testing/fake_clock.cc testing/fake_poller.cc)
backend_sources=(backends/new_poller.cc backends/epoll/epoll_poller.cc
                 backends/io_uring/io_uring_poller.cc backends/poll/poll_poller.cc backends/select/select_poller.cc
                 backends/internal/backend_util.cc)

build() {  # name sources...
  local name="$1"; shift
  echo "run_fuzzers: building $name"
  clang++ "${flags[@]}" "$@" fuzz/violation.cc -o "$work/bin/$name" "${absl_libs[@]}"
}
build timer_heap fuzz/timer_heap_fuzzer.cc timers/timer_heap.cc "${base_sources[@]}"
build io_loop fuzz/io_loop_fuzzer.cc "${loop_sources[@]}" "${backend_sources[@]}" "${base_sources[@]}"
build poller fuzz/poller_fuzzer.cc "${backend_sources[@]}" "${base_sources[@]}"
# The stream layer (net/): IOStream on a socketpair, on the fake poller.
# Every non-test source under net/internal/, so a helper the stream layer gains there
# links without a change here.
mapfile -t net_sources < <(ls net/iostream.cc net/internal/*.cc | grep -v '_test\.cc$')
build iostream fuzz/iostream_fuzzer.cc "${net_sources[@]}" \
  "${loop_sources[@]}" "${backend_sources[@]}" "${base_sources[@]}"
# The same programs on a real io_uring loop (IOStream's io_uring path).
build iostream_uring -DIOLOOP_IOSTREAM_FUZZ_ON_IO_URING fuzz/iostream_fuzzer.cc "${net_sources[@]}" \
  "${loop_sources[@]}" "${backend_sources[@]}" "${base_sources[@]}"
# The io_uring poller's CompletionIo on its own.
build completion_io fuzz/completion_io_fuzzer.cc "${backend_sources[@]}" "${base_sources[@]}"

status=0
for name in timer_heap io_loop poller completion_io iostream iostream_uring; do
  mkdir -p "$work/$name"
  echo "run_fuzzers: $name for ${seconds}s"
  if ! "$work/bin/$name" "$work/$name" "fuzz/corpus/$name" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -artifact_prefix="$work/crashes/$name-" -print_final_stats=1 \
      >"$work/$name.log" 2>&1; then
    echo "run_fuzzers: $name FAILED; see $work/$name.log and $work/crashes/" >&2
    tail -40 "$work/$name.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$work/$name.log" | tail -2
  fi
done
exit $status
