#include "coro/internal/frame_allocator.h"

#include <new>

namespace ioloop::coro {
namespace coro_internal {
namespace {

constexpr size_t kClasses = kMaxCachedSize / kSizeClassBytes;

struct FreeBlock {
  FreeBlock* next;
};

struct Cache {
  FreeBlock* heads[kClasses] = {};
  size_t counts[kClasses] = {};
  FrameStats stats;
  ~Cache();
};

// Trivially destructible, so it is still readable while (and after) `t_cache` is
// destroyed at thread exit.
thread_local bool t_cache_gone = false;
thread_local Cache t_cache;

Cache::~Cache() {
  t_cache_gone = true;
  for (size_t c = 0; c < kClasses; ++c) {
    while (heads[c] != nullptr) {
      FreeBlock* b = heads[c];
      heads[c] = b->next;
      ::operator delete(static_cast<void*>(b));
    }
  }
}

// Class c holds blocks of (c + 1) * kSizeClassBytes bytes.
inline size_t ClassOf(size_t size) { return (size + kSizeClassBytes - 1) / kSizeClassBytes - 1; }

}  // namespace

void* AllocateFrame(size_t size) {
  if (size == 0) size = 1;
  if (size > kMaxCachedSize || t_cache_gone) {
    if (!t_cache_gone) {
      ++t_cache.stats.fresh;
      ++t_cache.stats.live;
    }
    return ::operator new(size);
  }
  Cache& cache = t_cache;
  const size_t c = ClassOf(size);
  ++cache.stats.live;
  if (FreeBlock* b = cache.heads[c]; b != nullptr) {
    cache.heads[c] = b->next;
    --cache.counts[c];
    ++cache.stats.recycled;
    return b;
  }
  ++cache.stats.fresh;
  return ::operator new((c + 1) * kSizeClassBytes);
}

void FreeFrame(void* block, size_t size) noexcept {
  if (block == nullptr) return;
  if (size == 0) size = 1;
  if (t_cache_gone) {
    ::operator delete(block);
    return;
  }
  Cache& cache = t_cache;
  --cache.stats.live;
  if (size > kMaxCachedSize) {
    ::operator delete(block);
    return;
  }
  const size_t c = ClassOf(size);
  if (cache.counts[c] >= kMaxCachedPerClass) {
    ::operator delete(block);
    return;
  }
  auto* b = static_cast<FreeBlock*>(block);
  b->next = cache.heads[c];
  cache.heads[c] = b;
  ++cache.counts[c];
}

}  // namespace coro_internal

FrameStats ThreadFrameStats() {
  if (coro_internal::t_cache_gone) return FrameStats();
  return coro_internal::t_cache.stats;
}

}  // namespace ioloop::coro
