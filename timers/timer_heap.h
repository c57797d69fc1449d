// TimerHeap: deadlines with callbacks, ordered by (deadline, insertion).
//
// An indexed binary min-heap. Every entry knows its position in the heap, so Cancel()
// removes it at once in O(log n) and destroys its callback: a cancelled timer holds no
// memory until its deadline. Entries with equal deadlines come out in the order they
// were added.
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
// Memory: the heap itself holds 16 bytes per entry (deadline and insertion order,
// with the entry's slot number packed into the order), so sifting moves small nodes;
// each entry's callback lives in a 32-byte slot (callables of up to
// kInlineCallbackSize bytes inline, larger ones in a recycled block). Slots are reused
// through a free list and released when the heap empties.
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
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/time/time.h"
#include "base/inline_function.h"

namespace ioloop {

class TimerHeap {
 public:
  // kInlineCallbackSize: callables up to this size are stored without allocating.
  static constexpr size_t kInlineCallbackSize = 16;
  using Callback = base::InlineFunction<void(), kInlineCallbackSize>;

  // Handle names one entry of one heap. A default-constructed Handle names nothing.
  // Handles stay safe to use after their entry fired or was cancelled: they never
  // alias a later entry, nor an entry of another heap.
  class Handle {
   public:
    Handle() = default;
    bool IsNull() const { return heap_ == 0; }
    friend bool operator==(const Handle&, const Handle&) = default;

   private:
    friend class TimerHeap;
    Handle(uint32_t slot, uint32_t generation, uint32_t heap)
        : slot_(slot), generation_(generation), heap_(heap) {}
    uint32_t slot_ = 0;
    uint32_t generation_ = 0;
    uint32_t heap_ = 0;  // Which heap made it (TimerHeap::id_); 0: none.
  };

  TimerHeap();
  // ~TimerHeap() destroys the pending callbacks as Clear() does.
  ~TimerHeap();
  TimerHeap(const TimerHeap&) = delete;
  TimerHeap& operator=(const TimerHeap&) = delete;

  // Add() schedules `callback` for `deadline` and returns its handle. O(log n).
  // More than kMaxEntries pending entries is a check failure.
  Handle Add(absl::Time deadline, Callback callback);

  // AddNanos() is Add() with the deadline in nanoseconds since the Unix epoch
  // (INT64_MAX: never). The loop's hot path.
  Handle AddNanos(int64_t deadline_ns, Callback&& callback) {
    const uint32_t slot = AllocateSlot();
    Slot& s = slots_[slot];
    s.callback = std::move(callback);
    Insert(Node{deadline_ns, NextOrder(slot)}, slot);
    return Handle(slot, s.generation, id_);
  }

  // Emplace() is AddNanos() constructing the callback in place from any callable
  // (no intermediate Callback to move).
  template <typename F>
  Handle Emplace(int64_t deadline_ns, F&& f) {
    if constexpr (!std::is_nothrow_constructible_v<std::decay_t<F>, F&&> ||
                  !Callback::StoredInline<std::decay_t<F>>()) {
      // Built first: constructing or allocating may throw.
      return AddNanos(deadline_ns, Callback(std::forward<F>(f)));
    } else {
      const uint32_t slot = AllocateSlot();
      Slot& s = slots_[slot];
      s.callback.emplace(std::forward<F>(f));  // Free slots hold an empty callback.
      Insert(Node{deadline_ns, NextOrder(slot)}, slot);
      return Handle(slot, s.generation, id_);
    }
  }

  // Cancel() removes the entry named by `handle` and destroys its callback (after the
  // heap is consistent again, so the destructor may call back in). Returns true if it
  // was pending (including due in the current batch but not yet popped); false for a
  // fired, cancelled or null handle, or one from another heap, which is not an error.
  // O(log n).
  bool Cancel(Handle handle) {
    if (handle.heap_ != id_ || handle.slot_ >= slots_.size() ||
        slots_[handle.slot_].generation != handle.generation_) {
      return false;
    }
    if (ABSL_PREDICT_TRUE(slots_[handle.slot_].callback.ResetIfTrivial())) {
      Unlink(handle.slot_);  // No destructor to run: nothing can call back in.
      FreeSlot(handle.slot_);
      return true;
    }
    return CancelWithDestructor(handle.slot_);
  }

  // Clear() removes every entry and destroys the callbacks, one at a time, each with
  // the heap already consistent; entries their destructors add are cleared too, until
  // none is left. Ends any batch.
  void Clear();

  // NextDeadline() is the earliest queued deadline, or absl::InfiniteFuture() when no
  // entry is queued. Meaningful between batches.
  absl::Time NextDeadline() const;

  // NextDeadlineNanos() is NextDeadline() in nanoseconds (INT64_MAX when empty).
  int64_t NextDeadlineNanos() const {
    return heap_.empty() ? INT64_MAX : heap_.front().deadline_ns;
  }

  // TakeDue() starts a batch of every entry whose deadline is at or before `now`, to
  // be popped in (deadline, insertion) order; returns whether any is due. Call it only
  // when the previous batch has been popped to the end (a debug check).
  bool TakeDue(absl::Time now);
  bool TakeDueNanos(int64_t now_ns);

  // PopTaken() moves the next still-pending callback of the batch into `out` and
  // returns true; returns false once the batch is exhausted (which ends it).
  bool PopTaken(Callback& out);

  // size() counts pending entries; empty() is size() == 0.
  size_t size() const { return live_; }
  bool empty() const { return live_ == 0; }

  // SlotCapacityForTesting() is how many entry slots are allocated; it returns to a
  // small constant whenever the heap empties (what memory tests and the fuzzer check).
  size_t SlotCapacityForTesting() const { return slots_.capacity(); }

  // kMaxEntries: the most entries pending at once (slot numbers have 28 bits).
  static constexpr uint32_t kMaxEntries = (1u << 28) - 1;

  // RenumberForTesting() compacts the insertion counter as Add() does when it nears
  // its limit, so a test can check that order survives it.
  void RenumberForTesting() { Renumber(); }

 private:
  static constexpr int kSlotBits = 28;
  static constexpr uint64_t kSlotMask = (uint64_t{1} << kSlotBits) - 1;
  // The insertion counter has 64 - kSlotBits bits; Renumber() compacts it first.
  static constexpr uint64_t kSequenceLimit = uint64_t{1} << (64 - kSlotBits);
  // positions of deferred entries carry this bit and index deferred_, not heap_.
  static constexpr uint32_t kDeferred = 0x80000000u;
  static constexpr uint32_t kNoSlot = 0xffffffffu;
  // Below this many slots an empty heap keeps its storage: releasing it would only
  // make the next Add() allocate again.
  static constexpr size_t kRetainedSlots = 64;
  // A slot whose generation reaches this is retired instead of reused, so a handle
  // can never match a later use of its slot after the counter wraps.
  static constexpr uint32_t kLastGeneration = 0xfffffffeu;

  struct Node {  // One heap position: compared and moved without touching the slot.
    int64_t deadline_ns;
    uint64_t order;  // (sequence << kSlotBits) | slot
    uint32_t slot() const { return static_cast<uint32_t>(order & kSlotMask); }
  };
  struct Slot {
    Callback callback;
    // The slot's index in heap_ (or in deferred_, with kDeferred) while in use; the
    // next free slot (or kNoSlot) while free.
    uint32_t position = kNoSlot;
    // Odd while in use, even while free: bumped on every allocation and every free,
    // so a handle (which holds the odd value) matches only its own use of the slot.
    uint32_t generation = 0;
  };
  static_assert(sizeof(Node) == 16 && sizeof(Slot) == 32, "the sizes the overview states");

  static bool Before(const Node& a, const Node& b) {
    return a.deadline_ns < b.deadline_ns || (a.deadline_ns == b.deadline_ns && a.order < b.order);
  }

  uint64_t NextOrder(uint32_t slot) {
    if (ABSL_PREDICT_FALSE(next_sequence_ >= kSequenceLimit)) Renumber();
    return (next_sequence_++ << kSlotBits) | slot;
  }
  uint32_t AllocateSlot() {
    if (ABSL_PREDICT_TRUE(free_head_ != kNoSlot)) {
      const uint32_t slot = free_head_;
      free_head_ = slots_[slot].position;
      ++slots_[slot].generation;
      ++live_;
      return slot;
    }
    return GrowSlots();
  }
  void Insert(const Node& node, uint32_t slot) {
    if (ABSL_PREDICT_FALSE(in_batch_) && node.deadline_ns <= batch_now_) {
      slots_[slot].position = kDeferred | static_cast<uint32_t>(deferred_.size());
      deferred_.push_back(node);
      return;
    }
    const uint32_t index = static_cast<uint32_t>(heap_.size());
    heap_.push_back(node);
    if (index == 0 || !Before(node, heap_[(index - 1) / 2])) {
      slots_[slot].position = index;  // Already in place (a later deadline than its parent).
      return;
    }
    SiftUp(index, node);
  }
  uint32_t GrowSlots();
  bool CancelWithDestructor(uint32_t slot);
  void Unlink(uint32_t slot) {
    const uint32_t position = slots_[slot].position;
    if (ABSL_PREDICT_FALSE(position & kDeferred)) {
      UnlinkDeferred(position & ~kDeferred);
    } else if (position + 1 == heap_.size()) {
      heap_.pop_back();  // The last node: nothing moves.
    } else {
      RemoveAt(position);
    }
  }
  void UnlinkDeferred(uint32_t index);
  void FreeSlot(uint32_t slot) {
    // The callback was moved out by the caller: nothing user-supplied is destroyed here.
    Slot& s = slots_[slot];
    ++s.generation;
    --live_;
    if (ABSL_PREDICT_FALSE(live_ == 0 && slots_.size() > kRetainedSlots) ||
        ABSL_PREDICT_FALSE(s.generation >= kLastGeneration)) {
      FreeSlotSlow(slot);
      return;
    }
    s.position = free_head_;
    free_head_ = slot;
  }
  void FreeSlotSlow(uint32_t slot);
  void ReleaseStorage();
  void Renumber();
  void SiftUp(uint32_t index, Node node);
  void SiftDown(uint32_t index, Node node);
  void RemoveAt(uint32_t index);
  void EndBatch();

  std::vector<Node> heap_;
  std::vector<Slot> slots_;
  // Entries added during a batch with a deadline inside it; they join heap_ when it
  // ends.
  std::vector<Node> deferred_;
  uint32_t free_head_ = kNoSlot;
  // Distinct per heap and renewed when the heap releases its slots, so handles from
  // another heap, or to released slots, never match.
  uint32_t id_;
  bool in_batch_ = false;
  int64_t batch_now_ = 0;
  size_t live_ = 0;
  uint64_t next_sequence_ = 1;
};

}  // namespace ioloop

#endif  // IOLOOP_TIMERS_TIMER_HEAP_H_
