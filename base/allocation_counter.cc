#include "base/allocation_counter.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace ioloop::base {
namespace {
std::atomic<uint64_t> g_allocations{0};
thread_local uint64_t t_allocations = 0;  // Trivially destructible: usable at exit.
}  // namespace

uint64_t AllocationsInProcess() { return g_allocations.load(std::memory_order_relaxed); }
uint64_t AllocationsOnThisThread() { return t_allocations; }

}  // namespace ioloop::base

// The replacements. In their own translation unit, so they are never inlined into
// their callers.
void* operator new(size_t size) {
  ioloop::base::g_allocations.fetch_add(1, std::memory_order_relaxed);
  ++ioloop::base::t_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
