// Allocation counting for tests and benchmarks: linking //base:allocation_counter
// replaces the global operator new and delete with versions that count every call of
// operator new (and new[]) before forwarding to malloc.
//
//   const uint64_t before = base::AllocationsOnThisThread();
//   RunSteadyState();
//   EXPECT_EQ(base::AllocationsOnThisThread() - before, 0u);
//
// Test-only (the target is testonly). Thread-safe: AllocationsInProcess() counts every
// thread's calls; AllocationsOnThisThread() only the calling thread's, which a test
// that runs work on other threads should prefer.

#ifndef IOLOOP_BASE_ALLOCATION_COUNTER_H_
#define IOLOOP_BASE_ALLOCATION_COUNTER_H_

#include <cstdint>

namespace ioloop::base {

// AllocationsInProcess() is how many times operator new ran in this process so far.
uint64_t AllocationsInProcess();

// AllocationsOnThisThread() is how many times operator new ran on this thread so far.
uint64_t AllocationsOnThisThread();

}  // namespace ioloop::base

#endif  // IOLOOP_BASE_ALLOCATION_COUNTER_H_
