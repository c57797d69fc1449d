// TimerHeap: deadlines with callbacks, ordered by (deadline, insertion).
//
// An indexed binary min-heap. Every entry knows its position in the heap, so Cancel()
// removes it at once in O(log n) and destroys its callback: a cancelled timer holds no
// memory until its deadline (the leak Tornado 2.4.1's remove_timeout had). Entries
// with equal deadlines come out in the order they were added.
//
// The loop drives it in two steps per iteration:
//
//   heap.TakeDue(now);                           // one reading of the clock
//   TimerHeap::Callback cb;
//   while (heap.PopTaken(cb)) cb();              // skips entries cancelled meanwhile
//
// Entries added while a taken batch runs are never part of that batch, even with a
// deadline in the past: they wait for the next TakeDue().
//
// Thread-safety: none; one thread owns a TimerHeap.

#ifndef IOLOOP_TIMERS_TIMER_HEAP_H_
#define IOLOOP_TIMERS_TIMER_HEAP_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace ioloop {

class TimerHeap {
 public:
  using Callback = absl::AnyInvocable<void()>;

  // Handle names one entry. A default-constructed Handle names nothing. Handles stay
  // safe to use after their entry fired or was cancelled: they never alias a later
  // entry.
  class Handle {
   public:
    Handle() = default;
    bool IsNull() const { return sequence_ == 0; }
    friend bool operator==(const Handle&, const Handle&) = default;

   private:
    friend class TimerHeap;
    Handle(uint32_t slot, uint64_t sequence) : slot_(slot), sequence_(sequence) {}
    uint32_t slot_ = 0;
    uint64_t sequence_ = 0;
  };

  TimerHeap() = default;
  TimerHeap(const TimerHeap&) = delete;
  TimerHeap& operator=(const TimerHeap&) = delete;

  // Add() schedules `callback` for `deadline` and returns its handle. O(log n).
  Handle Add(absl::Time deadline, Callback callback);

  // Cancel() removes the entry named by `handle` and destroys its callback. Returns
  // true if it was pending (queued, or taken by TakeDue() but not yet popped); false
  // for a fired, cancelled or null handle, which is not an error. O(log n).
  bool Cancel(Handle handle);

  // NextDeadline() is the earliest queued deadline, or absl::InfiniteFuture() when no
  // entry is queued. Entries taken by TakeDue() do not count.
  absl::Time NextDeadline() const;

  // TakeDue() moves every queued entry whose deadline is at or before `now` into the
  // taken batch, in (deadline, insertion) order, and returns how many it moved. Call it
  // only when the previous batch has been popped to the end.
  size_t TakeDue(absl::Time now);

  // PopTaken() moves the next still-pending callback of the taken batch into `out` and
  // returns true; returns false once the batch is exhausted.
  bool PopTaken(Callback& out);

  // Size() counts pending entries: queued plus taken-but-not-popped.
  size_t Size() const { return live_; }
  bool Empty() const { return live_ == 0; }

  // SlotCapacity() is how many entry slots are allocated; it returns to a small
  // constant whenever the heap empties. For memory tests.
  size_t SlotCapacity() const { return slots_.capacity(); }

 private:
  static constexpr uint32_t kTaken = UINT32_MAX;

  struct Node {  // One heap position; compared without touching the slot.
    int64_t deadline_ns;
    uint64_t sequence;
    uint32_t slot;
  };
  struct Slot {
    Callback callback;
    uint64_t sequence = 0;     // 0: free.
    uint32_t heap_index = 0;   // kTaken once moved to the taken batch.
  };

  static bool Before(const Node& a, const Node& b) {
    return a.deadline_ns < b.deadline_ns ||
           (a.deadline_ns == b.deadline_ns && a.sequence < b.sequence);
  }
  void SiftUp(uint32_t index);
  void SiftDown(uint32_t index);
  void Place(uint32_t index, const Node& node);
  void RemoveAt(uint32_t index);
  void FreeSlot(uint32_t slot);

  std::vector<Node> heap_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<Handle> taken_;
  size_t taken_next_ = 0;
  size_t live_ = 0;
  uint64_t next_sequence_ = 1;
};

}  // namespace ioloop

#endif  // IOLOOP_TIMERS_TIMER_HEAP_H_
