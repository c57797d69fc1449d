// SignalQueue: a bounded queue whose Push() is async-signal-safe, for
// IOLoop::AddCallbackFromSignal().
//
// A bounded multi-producer ring with a sequence number per cell (Dmitry Vyukov's
// bounded MPMC queue), drained by one consumer, the loop's thread. Push() touches only
// atomics and moves a callable into a cell emptied in advance, so it neither locks,
// allocates nor frees for a callable stored inline (AnyInvocable's local storage: a
// function pointer, or a lambda capturing a pointer or two). Capacity is fixed;
// Push() on a full queue fails at once and never blocks.
//
// Thread-safety: Push() from any thread or signal handler; Pop() and MaybeNonEmpty()
// from the single consumer thread only.

#ifndef IOLOOP_IOLOOP_INTERNAL_SIGNAL_QUEUE_H_
#define IOLOOP_IOLOOP_INTERNAL_SIGNAL_QUEUE_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace ioloop::ioloop_internal {

template <typename T, size_t kCapacity>
class SignalQueue {
 public:
  static_assert((kCapacity & (kCapacity - 1)) == 0, "the capacity is a power of two");
  static_assert(std::atomic<size_t>::is_always_lock_free, "async-signal-safe atomics");

  SignalQueue() {
    for (size_t i = 0; i < kCapacity; ++i) cells_[i].sequence.store(i, std::memory_order_relaxed);
  }
  SignalQueue(const SignalQueue&) = delete;
  SignalQueue& operator=(const SignalQueue&) = delete;

  // Push() moves `value` into the queue and returns true, or returns false (leaving
  // `value` untouched) when the queue is full.
  bool Push(T& value) {
    size_t pos = enqueue_.load(std::memory_order_relaxed);
    while (true) {
      Cell& cell = cells_[pos & kMask];
      const size_t seq = cell.sequence.load(std::memory_order_acquire);
      const intptr_t diff = static_cast<intptr_t>(seq) - static_cast<intptr_t>(pos);
      if (diff == 0) {
        if (enqueue_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          cell.value = std::move(value);
          cell.sequence.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // Full.
      } else {
        pos = enqueue_.load(std::memory_order_relaxed);
      }
    }
  }

  // Pop() moves the oldest value into `out` and returns true, or returns false when
  // the queue is empty. The cell is left holding a default-constructed T, so the next
  // Push() into it destroys nothing.
  bool Pop(T& out) {
    Cell& cell = cells_[dequeue_ & kMask];
    if (cell.sequence.load(std::memory_order_acquire) != dequeue_ + 1) return false;
    out = std::move(cell.value);
    cell.value = T();
    cell.sequence.store(dequeue_ + kCapacity, std::memory_order_release);
    ++dequeue_;
    return true;
  }

  // MaybeNonEmpty() is true if a Push() has completed that Pop() has not taken.
  bool MaybeNonEmpty() const {
    return cells_[dequeue_ & kMask].sequence.load(std::memory_order_acquire) == dequeue_ + 1;
  }

 private:
  static constexpr size_t kMask = kCapacity - 1;
  struct Cell {
    std::atomic<size_t> sequence;
    T value;
  };
  std::array<Cell, kCapacity> cells_;
  std::atomic<size_t> enqueue_{0};
  size_t dequeue_ = 0;  // Consumer only.
};

}  // namespace ioloop::ioloop_internal

#endif  // IOLOOP_IOLOOP_INTERNAL_SIGNAL_QUEUE_H_
