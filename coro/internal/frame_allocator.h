// Per-thread recycling allocator for coroutine frames and small completion blocks.
//
// Asio's recycling-allocator idea: a frame freed on a thread goes to that thread's
// cache, bucketed by size class, and the next frame of the same class allocated on
// that thread reuses it. A server whose tasks run the same coroutines over and over
// (`co_await Sleep()`, `co_await ReadUntil()` in a loop) therefore allocates nothing
// in steady state. Each size class keeps at most kMaxCachedPerClass blocks, so a burst
// of 10,000 tasks gives its memory back when they end.
//
// Thread-safety: every function works on the calling thread's cache only. A block may
// be freed on a different thread from the one that allocated it (it then joins the
// freeing thread's cache). Blocks freed while the thread's cache is being destroyed go
// straight back to the global allocator.

#ifndef IOLOOP_CORO_INTERNAL_FRAME_ALLOCATOR_H_
#define IOLOOP_CORO_INTERNAL_FRAME_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>

namespace ioloop::coro {

// FrameStats: counters of the calling thread's frame allocator. `fresh` counts
// allocations the cache could not serve (they went to operator new); `recycled` those
// it served; `live` is allocations minus frees made on this thread (it can go negative
// on a thread that frees what another allocated).
struct FrameStats {
  uint64_t fresh = 0;
  uint64_t recycled = 0;
  int64_t live = 0;
};

// ThreadFrameStats returns the calling thread's counters. Thread-safe (per thread).
FrameStats ThreadFrameStats();

namespace coro_internal {

inline constexpr size_t kSizeClassBytes = 64;
inline constexpr size_t kMaxCachedSize = 4096;  // Larger blocks are not cached.
inline constexpr size_t kMaxCachedPerClass = 256;

// AllocateFrame returns at least `size` bytes suitably aligned for any frame.
void* AllocateFrame(size_t size);
// FreeFrame gives back a block from AllocateFrame(size) with the same size.
void FreeFrame(void* block, size_t size) noexcept;

}  // namespace coro_internal
}  // namespace ioloop::coro

#endif  // IOLOOP_CORO_INTERNAL_FRAME_ALLOCATOR_H_
