#include "base/recycling_allocator.h"

#include <new>

namespace ioloop::base {
namespace {

// Size classes: 64, 128, 256, 512 bytes.
constexpr size_t kClasses = 4;
constexpr size_t kSmallest = 64;

struct FreeBlock {
  FreeBlock* next;
};

size_t ClassOf(size_t size) {
  size_t index = 0;
  size_t capacity = kSmallest;
  while (capacity < size) {
    capacity *= 2;
    ++index;
  }
  return index;
}

size_t ClassSize(size_t index) { return kSmallest << index; }

class ThreadCache {
 public:
  ThreadCache() = default;
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;
  ~ThreadCache() {
    for (size_t i = 0; i < kClasses; ++i) {
      while (FreeBlock* block = heads_[i]) {
        heads_[i] = block->next;
        ::operator delete(block);
      }
    }
  }

  void* Take(size_t index) {
    FreeBlock* block = heads_[index];
    if (block == nullptr) return ::operator new(ClassSize(index));
    heads_[index] = block->next;
    --counts_[index];
    return block;
  }

  void Give(void* p, size_t index) {
    if (counts_[index] >= RecyclingAllocator::kMaxCachedPerClass) {
      ::operator delete(p);
      return;
    }
    FreeBlock* block = static_cast<FreeBlock*>(p);
    block->next = heads_[index];
    heads_[index] = block;
    ++counts_[index];
  }

 private:
  FreeBlock* heads_[kClasses] = {};
  size_t counts_[kClasses] = {};
};

ThreadCache& Cache() {
  thread_local ThreadCache cache;
  return cache;
}

}  // namespace

void* RecyclingAllocator::Allocate(size_t size) {
  if (size > kMaxRecycled) return ::operator new(size);
  return Cache().Take(ClassOf(size));
}

void RecyclingAllocator::Deallocate(void* block, size_t size) noexcept {
  if (block == nullptr) return;
  if (size > kMaxRecycled) {
    ::operator delete(block);
    return;
  }
  Cache().Give(block, ClassOf(size));
}

}  // namespace ioloop::base
