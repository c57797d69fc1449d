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
// The batch is every entry due at `now` when TakeDue() was called. Entries added
// while it runs are never part of it, even with a deadline in the past: those are
// held aside and join the heap when the batch ends, so they run after the next
// TakeDue(). Entries are popped from the heap as the batch runs; no copy of the batch
// is made.
//
// Re-entrancy: a callback's destructor may call back into the heap (Add, Cancel,
// even of its own handle). The heap never destroys a callback while it is mid-update:
// it moves the callback out, finishes its bookkeeping, and destroys it last.
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

  // Handle names one entry of one heap. A default-constructed Handle names nothing.
  // Handles stay safe to use after their entry fired or was cancelled: they never
  // alias a later entry, nor an entry of another heap.
  class Handle {
   public:
    Handle() = default;
    bool IsNull() const { return sequence_ == 0; }
    friend bool operator==(const Handle&, const Handle&) = default;

   private:
    friend class TimerHeap;
    Handle(uint32_t slot, uint32_t heap, uint64_t sequence)
        : slot_(slot), heap_(heap), sequence_(sequence) {}
    uint32_t slot_ = 0;
    uint32_t heap_ = 0;  // Which heap made it (TimerHeap::id_).
    uint64_t sequence_ = 0;
  };

  TimerHeap();
  // ~TimerHeap() destroys the pending callbacks as Clear() does.
  ~TimerHeap();
  TimerHeap(const TimerHeap&) = delete;
  TimerHeap& operator=(const TimerHeap&) = delete;

  // Add() schedules `callback` for `deadline` and returns its handle. O(log n).
  Handle Add(absl::Time deadline, Callback callback);

  // AddNanos() is Add() with the deadline in nanoseconds since the Unix epoch
  // (INT64_MAX: never). The loop's hot path; it moves from `callback`.
  Handle AddNanos(int64_t deadline_ns, Callback&& callback);

  // Cancel() removes the entry named by `handle` and destroys its callback (after the
  // heap is consistent again, so the destructor may call back in). Returns true if it
  // was pending (including due in the current batch but not yet popped); false for a
  // fired, cancelled or null handle, or one from another heap, which is not an error.
  // O(log n).
  bool Cancel(Handle handle);

  // Clear() removes every entry and destroys the callbacks, one at a time, each with
  // the heap already consistent; entries their destructors add are cleared too, until
  // none is left. Ends any batch.
  void Clear();

  // NextDeadline() is the earliest queued deadline, or absl::InfiniteFuture() when no
  // entry is queued. Meaningful between batches.
  absl::Time NextDeadline() const;

  // TakeDue() starts a batch of every entry whose deadline is at or before `now`, to
  // be popped in (deadline, insertion) order; returns whether any is due. Call it only
  // when the previous batch has been popped to the end (a debug check).
  bool TakeDue(absl::Time now);
  bool TakeDueNanos(int64_t now_ns);

  // NextDeadlineNanos() is NextDeadline() in nanoseconds (INT64_MAX when empty).
  int64_t NextDeadlineNanos() const {
    return heap_.empty() ? INT64_MAX : heap_.front().deadline_ns;
  }

  // PopTaken() moves the next still-pending callback of the batch into `out` and
  // returns true; returns false once the batch is exhausted (which ends it).
  bool PopTaken(Callback& out);

  // Size() counts pending entries.
  size_t Size() const { return live_; }
  bool Empty() const { return live_ == 0; }

  // SlotCapacity() is how many entry slots are allocated; it returns to a small
  // constant whenever the heap empties. For memory tests.
  size_t SlotCapacity() const { return slots_.capacity(); }

 private:
  // positions_ entries with this bit set index deferred_, not heap_.
  static constexpr uint32_t kDeferred = 0x80000000u;

  struct Node {  // One heap position; compared without touching the slot.
    int64_t deadline_ns;
    uint64_t sequence;
    uint32_t slot;
  };
  struct Slot {
    Callback callback;
    uint64_t sequence = 0;  // 0: free.
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
  void EndBatch();

  std::vector<Node> heap_;
  std::vector<Slot> slots_;
  // positions_[slot]: the slot's index in heap_ (or in deferred_, with kDeferred).
  // Apart from slots_ so that sifting, which rewrites positions on every level,
  // touches 4 bytes per entry.
  std::vector<uint32_t> positions_;
  std::vector<uint32_t> free_slots_;
  // Entries added during a batch with a deadline inside it; they join heap_ when it
  // ends.
  std::vector<Node> deferred_;
  const uint32_t id_;  // Distinct per heap, so handles from another heap never match.
  bool in_batch_ = false;
  int64_t batch_now_ = 0;
  size_t live_ = 0;
  uint64_t next_sequence_ = 1;
};

}  // namespace ioloop

#endif  // IOLOOP_TIMERS_TIMER_HEAP_H_
