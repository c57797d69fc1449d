// RecyclingAllocator: per-thread free lists of small blocks, for the callables and
// frames the loop allocates and frees at a high rate (the idea of Asio's recycling
// allocator).
//
// Allocate(size) returns a block of at least `size` bytes aligned for any object;
// Deallocate(p, size) gives it back with the same `size`. Blocks up to kMaxRecycled
// bytes come in a few size classes; a freed block goes to the freeing thread's list
// for its class (at most kMaxCachedPerClass are kept, the rest go back to operator
// delete), so a steady stream of allocate/free on one thread calls operator new only
// until the lists are warm. A block may be freed on another thread than the one that
// allocated it. Larger blocks go straight to operator new and delete.
//
// Thread-safety: each thread has its own lists; no locks. The lists are freed when
// the thread exits.

#ifndef IOLOOP_BASE_RECYCLING_ALLOCATOR_H_
#define IOLOOP_BASE_RECYCLING_ALLOCATOR_H_

#include <cstddef>

namespace ioloop::base {

class RecyclingAllocator {
 public:
  // kMaxRecycled: the largest size served from the free lists.
  static constexpr size_t kMaxRecycled = 512;
  // kMaxCachedPerClass: how many free blocks one thread keeps per size class.
  static constexpr size_t kMaxCachedPerClass = 4096;

  // Allocate() returns a block of `size` bytes (never null; throws std::bad_alloc
  // as operator new does).
  static void* Allocate(size_t size);
  // Deallocate() frees a block from Allocate() with the same `size`.
  static void Deallocate(void* block, size_t size) noexcept;
};

}  // namespace ioloop::base

#endif  // IOLOOP_BASE_RECYCLING_ALLOCATOR_H_
