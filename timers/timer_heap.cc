#include "timers/timer_heap.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <utility>

#include "base/check.h"

namespace ioloop {
namespace {

int64_t ToKey(absl::Time deadline) {
  // Saturates: InfiniteFuture() sorts last, InfinitePast() first.
  return absl::ToUnixNanos(deadline);
}

// Heap ids start at 1 (0 is the null handle's) and are never reused within a process
// (a process would need 2^32 heaps, or heaps emptied 2^32 times, to wrap).
std::atomic<uint32_t> g_next_heap_id{1};

uint32_t NewHeapId() {
  uint32_t id = g_next_heap_id.fetch_add(1, std::memory_order_relaxed);
  if (id == 0) id = g_next_heap_id.fetch_add(1, std::memory_order_relaxed);
  return id;
}

}  // namespace

static_assert(sizeof(TimerHeap::Callback) == 24);

TimerHeap::TimerHeap() : id_(NewHeapId()) {}

TimerHeap::~TimerHeap() { Clear(); }

TimerHeap::Handle TimerHeap::Add(absl::Time deadline, Callback callback) {
  return AddNanos(ToKey(deadline), std::move(callback));
}

uint32_t TimerHeap::GrowSlots() {
  IOLOOP_CHECK(slots_.size() < kMaxEntries, "TimerHeap: more than kMaxEntries pending timers");
  const uint32_t slot = static_cast<uint32_t>(slots_.size());
  slots_.emplace_back();
  slots_.back().generation = 1;
  ++live_;
  return slot;
}

bool TimerHeap::CancelWithDestructor(uint32_t slot) {
  // Destroyed when this function returns, after the heap is consistent again: its
  // destructor may call back in (even Cancel() of its own handle, then a no-op).
  Callback cancelled = std::move(slots_[slot].callback);
  Unlink(slot);
  FreeSlot(slot);
  return true;
}

void TimerHeap::UnlinkDeferred(uint32_t index) {
  deferred_[index] = deferred_.back();
  slots_[deferred_[index].slot()].position = kDeferred | index;
  deferred_.pop_back();
}

void TimerHeap::FreeSlotSlow(uint32_t slot) {
  if (live_ == 0 && slots_.size() > kRetainedSlots) {
    ReleaseStorage();
    return;
  }
  // Otherwise its generation is at the end of its range: retire the slot.
  (void)slot;
}

void TimerHeap::ReleaseStorage() {
  // Empty: give the storage back, and take a new id so that handles to the released
  // slots never match the slots made next.
  std::vector<Node>().swap(heap_);
  std::vector<Slot>().swap(slots_);
  std::vector<Node>().swap(deferred_);
  free_head_ = kNoSlot;
  id_ = NewHeapId();
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
  const uint32_t slot = heap_.front().slot();
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
      if (slot.generation & 1) doomed.push_back(std::move(slot.callback));
    }
    live_ = 0;
    ReleaseStorage();
    for (Callback& callback : doomed) callback = nullptr;
  }
}

void TimerHeap::EndBatch() {
  in_batch_ = false;
  for (const Node& node : deferred_) {
    heap_.push_back(node);
    SiftUp(static_cast<uint32_t>(heap_.size() - 1), node);
  }
  deferred_.clear();
}

void TimerHeap::Renumber() {
  // Hand out sequences 1..n again in the current (deadline, order) order: relative
  // order, and so the heap property, is unchanged.
  std::vector<Node*> nodes;
  nodes.reserve(heap_.size() + deferred_.size());
  for (Node& node : heap_) nodes.push_back(&node);
  for (Node& node : deferred_) nodes.push_back(&node);
  std::sort(nodes.begin(), nodes.end(),
            [](const Node* a, const Node* b) { return a->order < b->order; });
  next_sequence_ = 1;
  for (Node* node : nodes) node->order = (next_sequence_++ << kSlotBits) | node->slot();
}

void TimerHeap::SiftUp(uint32_t index, Node node) {
  Node* const heap = heap_.data();
  while (index > 0) {
    const uint32_t parent = (index - 1) / 2;
    if (!Before(node, heap[parent])) break;
    heap[index] = heap[parent];
    slots_[heap[index].slot()].position = index;
    index = parent;
  }
  heap[index] = node;
  slots_[node.slot()].position = index;
}

void TimerHeap::SiftDown(uint32_t index, Node node) {
  Node* const heap = heap_.data();
  const uint32_t size = static_cast<uint32_t>(heap_.size());
  while (true) {
    uint32_t child = 2 * index + 1;
    if (child >= size) break;
    if (child + 1 < size && Before(heap[child + 1], heap[child])) ++child;
    if (!Before(heap[child], node)) break;
    heap[index] = heap[child];
    slots_[heap[index].slot()].position = index;
    index = child;
  }
  heap[index] = node;
  slots_[node.slot()].position = index;
}

void TimerHeap::RemoveAt(uint32_t index) {
  const uint32_t last = static_cast<uint32_t>(heap_.size() - 1);
  if (index == last) {
    heap_.pop_back();
    return;
  }
  const Node moved = heap_[last];
  heap_.pop_back();
  if (index > 0 && Before(moved, heap_[(index - 1) / 2])) {
    SiftUp(index, moved);
  } else {
    SiftDown(index, moved);
  }
}

}  // namespace ioloop
