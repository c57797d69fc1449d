// Process resources for benchmarks and load tests: the descriptor limit, CPU time
// and peak memory. Thin wrappers over getrlimit(2), clock_gettime(2) and getrusage(2),
// so that each measuring program reads them the same way. Thread-safe.

#ifndef IOLOOP_BASE_PROCESS_STATS_H_
#define IOLOOP_BASE_PROCESS_STATS_H_

#include <sys/resource.h>
#include <time.h>

#include <cstdint>

namespace ioloop::base {

// RaiseFdLimit() lifts RLIMIT_NOFILE's soft limit to the hard limit and returns the
// soft limit now in force (unchanged if the system refused).
inline rlim_t RaiseFdLimit() {
  rlimit r;
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
  getrlimit(RLIMIT_NOFILE, &r);
  return r.rlim_cur;
}

// ThreadCpuNanos() / ProcessCpuNanos(): CPU time used so far by the calling thread /
// by the whole process, in nanoseconds.
inline int64_t ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * int64_t{1000000000} + ts.tv_nsec;
}
inline int64_t ProcessCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * int64_t{1000000000} + ts.tv_nsec;
}

// ThreadKernelCpuNanos(): the part of ThreadCpuNanos() the calling thread spent in the
// kernel (getrusage(RUSAGE_THREAD)'s ru_stime; the kernel splits a thread's CPU time
// between user and kernel by sampling, so the split is close, not exact, over short
// intervals). -1 where the platform keeps no per-thread split (RUSAGE_THREAD is
// Linux's).
inline int64_t ThreadKernelCpuNanos() {
#ifdef RUSAGE_THREAD
  rusage u;
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_stime.tv_sec * int64_t{1000000000} + u.ru_stime.tv_usec * int64_t{1000};
#else
  return -1;
#endif
}

// PeakRssKb(): the process's peak resident set size so far, in KiB (ru_maxrss).
inline long PeakRssKb() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

}  // namespace ioloop::base

#endif  // IOLOOP_BASE_PROCESS_STATS_H_
