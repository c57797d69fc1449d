#include "timers/timer_heap.h"

#include <atomic>
#include <limits>
#include <utility>

#include "base/check.h"

namespace ioloop {
namespace {

// Below this many slots an empty heap keeps its storage: releasing it would only make
// the next Add() allocate again.
constexpr size_t kRetainedSlots = 64;

int64_t ToKey(absl::Time deadline) {
  // Saturates: InfiniteFuture() sorts last, InfinitePast() first.
  return absl::ToUnixNanos(deadline);
}

// Heap ids start at 1 and are never reused within a process (a process would need
// 2^32 heaps to wrap).
std::atomic<uint32_t> g_next_heap_id{1};

}  // namespace

TimerHeap::TimerHeap() : id_(g_next_heap_id.fetch_add(1, std::memory_order_relaxed)) {}

TimerHeap::~TimerHeap() { Clear(); }

TimerHeap::Handle TimerHeap::Add(absl::Time deadline, Callback callback) {
  return AddNanos(ToKey(deadline), std::move(callback));
}

TimerHeap::Handle TimerHeap::AddNanos(int64_t deadline_ns, Callback&& callback) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
    positions_.push_back(0);
  }
  const uint64_t sequence = next_sequence_++;
  Slot& s = slots_[slot];
  s.callback = std::move(callback);
  s.sequence = sequence;
  if (in_batch_ && deadline_ns <= batch_now_) {
    positions_[slot] = kDeferred | static_cast<uint32_t>(deferred_.size());
    deferred_.push_back(Node{deadline_ns, sequence, slot});
  } else {
    heap_.push_back(Node{deadline_ns, sequence, slot});
    SiftUp(static_cast<uint32_t>(heap_.size() - 1));
  }
  ++live_;
  return Handle(slot, id_, sequence);
}

bool TimerHeap::Cancel(Handle handle) {
  if (handle.IsNull() || handle.heap_ != id_ || handle.slot_ >= slots_.size()) return false;
  if (slots_[handle.slot_].sequence != handle.sequence_) return false;
  // Destroyed when this function returns, after the heap is consistent again: its
  // destructor may call back in (even Cancel(handle) again, then a no-op).
  Callback cancelled = std::move(slots_[handle.slot_].callback);
  const uint32_t position = positions_[handle.slot_];
  if (position & kDeferred) {
    const uint32_t index = position & ~kDeferred;
    deferred_[index] = deferred_.back();
    positions_[deferred_[index].slot] = kDeferred | index;
    deferred_.pop_back();
  } else {
    RemoveAt(position);
  }
  FreeSlot(handle.slot_);
  return true;
}

absl::Time TimerHeap::NextDeadline() const {
  if (heap_.empty()) return absl::InfiniteFuture();
  const int64_t key = heap_.front().deadline_ns;
  if (key == std::numeric_limits<int64_t>::max()) return absl::InfiniteFuture();
  if (key == std::numeric_limits<int64_t>::min()) return absl::InfinitePast();
  return absl::FromUnixNanos(key);
}

bool TimerHeap::TakeDue(absl::Time now) { return TakeDueNanos(ToKey(now)); }

bool TimerHeap::TakeDueNanos(int64_t now_ns) {
  IOLOOP_DCHECK(!in_batch_, "TimerHeap::TakeDue() during a batch: pop the batch to its end first");
  if (heap_.empty() || heap_.front().deadline_ns > now_ns) return false;
  in_batch_ = true;
  batch_now_ = now_ns;
  return true;
}

bool TimerHeap::PopTaken(Callback& out) {
  // Entries added since TakeDue() with a deadline inside the batch are in deferred_,
  // so every due entry on the heap belongs to the batch.
  if (!in_batch_ || heap_.empty() || heap_.front().deadline_ns > batch_now_) {
    EndBatch();
    return false;
  }
  const uint32_t slot = heap_.front().slot;
  RemoveAt(0);
  out = std::move(slots_[slot].callback);
  FreeSlot(slot);
  return true;
}

void TimerHeap::Clear() {
  in_batch_ = false;
  while (live_ > 0) {
    // Take every callback out, leave the heap empty and consistent, then destroy them
    // one by one: their destructors may add entries (cleared on the next round) or
    // cancel any handle (a no-op now).
    std::vector<Callback> doomed;
    doomed.reserve(live_);
    for (Slot& slot : slots_) {
      if (slot.sequence != 0) doomed.push_back(std::move(slot.callback));
    }
    std::vector<Node>().swap(heap_);
    std::vector<Slot>().swap(slots_);
    std::vector<uint32_t>().swap(positions_);
    std::vector<uint32_t>().swap(free_slots_);
    std::vector<Node>().swap(deferred_);
    live_ = 0;
    for (Callback& callback : doomed) callback = nullptr;
  }
}

void TimerHeap::EndBatch() {
  in_batch_ = false;
  for (const Node& node : deferred_) {
    heap_.push_back(node);
    SiftUp(static_cast<uint32_t>(heap_.size() - 1));
  }
  deferred_.clear();
}

void TimerHeap::Place(uint32_t index, const Node& node) {
  heap_[index] = node;
  positions_[node.slot] = index;
}

void TimerHeap::SiftUp(uint32_t index) {
  const Node node = heap_[index];
  while (index > 0) {
    const uint32_t parent = (index - 1) / 2;
    if (!Before(node, heap_[parent])) break;
    Place(index, heap_[parent]);
    index = parent;
  }
  Place(index, node);
}

void TimerHeap::SiftDown(uint32_t index) {
  const Node node = heap_[index];
  const uint32_t size = static_cast<uint32_t>(heap_.size());
  while (true) {
    uint32_t child = 2 * index + 1;
    if (child >= size) break;
    if (child + 1 < size && Before(heap_[child + 1], heap_[child])) ++child;
    if (!Before(heap_[child], node)) break;
    Place(index, heap_[child]);
    index = child;
  }
  Place(index, node);
}

void TimerHeap::RemoveAt(uint32_t index) {
  const uint32_t last = static_cast<uint32_t>(heap_.size() - 1);
  if (index != last) {
    const Node moved = heap_[last];
    heap_.pop_back();
    Place(index, moved);
    if (index > 0 && Before(moved, heap_[(index - 1) / 2])) {
      SiftUp(index);
    } else {
      SiftDown(index);
    }
  } else {
    heap_.pop_back();
  }
}

void TimerHeap::FreeSlot(uint32_t slot) {
  // The callback was moved out by the caller: nothing user-supplied is destroyed here.
  Slot& s = slots_[slot];
  s.callback = nullptr;
  s.sequence = 0;
  --live_;
  if (live_ == 0 && slots_.size() > kRetainedSlots) {
    // Empty: give the storage back. Sequences are never reused, so handles to the
    // released slots stay harmless.
    std::vector<Node>().swap(heap_);
    std::vector<Slot>().swap(slots_);
    std::vector<uint32_t>().swap(positions_);
    std::vector<uint32_t>().swap(free_slots_);
    std::vector<Node>().swap(deferred_);
    return;
  }
  free_slots_.push_back(slot);
}

}  // namespace ioloop
