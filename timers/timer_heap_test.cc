#include "timers/timer_heap.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace ioloop {
namespace {

absl::Time At(int64_t ms) { return absl::UnixEpoch() + absl::Milliseconds(ms); }

// Runs every entry due at `now` and returns how many ran.
int RunDue(TimerHeap& heap, absl::Time now) {
  heap.TakeDue(now);
  TimerHeap::Callback cb;
  int ran = 0;
  while (heap.PopTaken(cb)) {
    cb();
    ++ran;
  }
  return ran;
}

TEST(TimerHeapTest, FiresInDeadlineOrder) {
  TimerHeap heap;
  std::vector<int> fired;
  for (int ms : {50, 10, 40, 20, 30}) {
    heap.Add(At(ms), [&fired, ms] { fired.push_back(ms); });
  }
  EXPECT_EQ(heap.NextDeadline(), At(10));
  EXPECT_EQ(RunDue(heap, At(100)), 5);
  EXPECT_EQ(fired, (std::vector<int>{10, 20, 30, 40, 50}));
  EXPECT_TRUE(heap.empty());
  EXPECT_EQ(heap.NextDeadline(), absl::InfiniteFuture());
}

TEST(TimerHeapTest, EqualDeadlinesFireInInsertionOrder) {
  TimerHeap heap;
  std::vector<int> fired;
  for (int i = 0; i < 1000; ++i) {
    heap.Add(At(i % 3), [&fired, i] { fired.push_back(i); });
  }
  RunDue(heap, At(10));
  ASSERT_EQ(fired.size(), 1000u);
  std::vector<int> expected;
  for (int d = 0; d < 3; ++d) {
    for (int i = d; i < 1000; i += 3) expected.push_back(i);
  }
  EXPECT_EQ(fired, expected);
}

TEST(TimerHeapTest, TakesOnlyWhatIsDue) {
  TimerHeap heap;
  int ran = 0;
  heap.Add(At(10), [&] { ++ran; });
  heap.Add(At(20), [&] { ++ran; });
  EXPECT_EQ(RunDue(heap, At(9)), 0);
  EXPECT_EQ(RunDue(heap, At(10)), 1);
  EXPECT_EQ(heap.NextDeadline(), At(20));
  EXPECT_EQ(heap.size(), 1u);
  EXPECT_EQ(ran, 1);
}

TEST(TimerHeapTest, CancelRemovesAndDestroysCallback) {
  TimerHeap heap;
  auto token = std::make_shared<int>(0);
  bool ran = false;
  TimerHeap::Handle h = heap.Add(At(10), [token, &ran] { ran = true; });
  EXPECT_EQ(token.use_count(), 2);
  EXPECT_TRUE(heap.Cancel(h));
  EXPECT_EQ(token.use_count(), 1) << "a cancelled callback must be destroyed at once";
  EXPECT_EQ(RunDue(heap, At(100)), 0);
  EXPECT_FALSE(ran);
}

TEST(TimerHeapTest, CancelOfFiredUnknownOrCancelledHandleIsHarmless) {
  TimerHeap heap;
  int ran = 0;
  TimerHeap::Handle fired = heap.Add(At(1), [&] { ++ran; });
  TimerHeap::Handle cancelled = heap.Add(At(2), [&] { ++ran; });
  TimerHeap::Handle kept = heap.Add(At(3), [&] { ++ran; });
  EXPECT_TRUE(heap.Cancel(cancelled));
  EXPECT_EQ(RunDue(heap, At(1)), 1);
  EXPECT_FALSE(heap.Cancel(fired));
  EXPECT_FALSE(heap.Cancel(cancelled));
  EXPECT_FALSE(heap.Cancel(TimerHeap::Handle()));
  EXPECT_EQ(heap.size(), 1u);
  // A stale handle never aliases the entry that reuses its slot.
  TimerHeap::Handle reused = heap.Add(At(4), [&] { ++ran; });
  EXPECT_FALSE(heap.Cancel(fired));
  EXPECT_FALSE(heap.Cancel(cancelled));
  EXPECT_EQ(heap.size(), 2u);
  EXPECT_EQ(RunDue(heap, At(10)), 2);
  EXPECT_EQ(ran, 3);
  EXPECT_FALSE(heap.Cancel(kept));
  EXPECT_FALSE(heap.Cancel(reused));
}

TEST(TimerHeapTest, CancelFromInsideDueBatchSkipsTheCancelled) {
  TimerHeap heap;
  std::vector<int> fired;
  TimerHeap::Handle second;
  heap.Add(At(1), [&] {
    fired.push_back(1);
    EXPECT_TRUE(heap.Cancel(second));
  });
  second = heap.Add(At(2), [&] { fired.push_back(2); });
  heap.Add(At(3), [&] { fired.push_back(3); });
  EXPECT_TRUE(heap.TakeDue(At(10)));
  EXPECT_EQ(heap.size(), 3u);
  TimerHeap::Callback cb;
  while (heap.PopTaken(cb)) cb();
  EXPECT_EQ(fired, (std::vector<int>{1, 3}));
  EXPECT_TRUE(heap.empty());
}

TEST(TimerHeapTest, NothingDueIsNoBatch) {
  TimerHeap heap;
  heap.Add(At(10), [] {});
  EXPECT_FALSE(heap.TakeDue(At(9)));
  TimerHeap::Callback cb;
  EXPECT_FALSE(heap.PopTaken(cb));
  EXPECT_EQ(heap.size(), 1u);
}

TEST(TimerHeapTest, CancelOfEntryAddedDuringBatch) {
  TimerHeap heap;
  std::vector<int> fired;
  TimerHeap::Handle late1, late2, late3;
  heap.Add(At(1), [&] {
    late1 = heap.Add(At(0), [&] { fired.push_back(10); });
    late2 = heap.Add(At(0), [&] { fired.push_back(20); });
    late3 = heap.Add(At(0), [&] { fired.push_back(30); });
    EXPECT_TRUE(heap.Cancel(late1));  // Held aside: cancel must still find it.
  });
  EXPECT_EQ(RunDue(heap, At(5)), 1);
  EXPECT_EQ(heap.size(), 2u);
  EXPECT_TRUE(heap.Cancel(late3));
  EXPECT_EQ(RunDue(heap, At(5)), 1);
  EXPECT_EQ(fired, (std::vector<int>{20}));
  EXPECT_FALSE(heap.Cancel(late2));
}

TEST(TimerHeapTest, EntryAddedDuringBatchWaitsForNextTake) {
  TimerHeap heap;
  std::vector<int> fired;
  heap.Add(At(5), [&] {
    fired.push_back(5);
    heap.Add(At(0), [&] { fired.push_back(0); });  // Already due.
  });
  heap.Add(At(6), [&] { fired.push_back(6); });
  EXPECT_EQ(RunDue(heap, At(10)), 2);
  EXPECT_EQ(fired, (std::vector<int>{5, 6}));
  EXPECT_EQ(RunDue(heap, At(10)), 1);
  EXPECT_EQ(fired, (std::vector<int>{5, 6, 0}));
}

TEST(TimerHeapTest, MemoryReturnsToLiveCountAfterMillionAddCancel) {
  TimerHeap heap;
  heap.Add(At(1), [] {});  // One live entry throughout.
  for (int i = 0; i < 1000000; ++i) {
    TimerHeap::Handle h = heap.Add(At(60000 + i), [] {});
    ASSERT_TRUE(heap.Cancel(h));
  }
  EXPECT_EQ(heap.size(), 1u);
  EXPECT_LE(heap.SlotCapacityForTesting(), 2u);
  EXPECT_EQ(heap.NextDeadline(), At(1));
}

TEST(TimerHeapTest, StorageIsReleasedWhenHeapEmpties) {
  TimerHeap heap;
  std::vector<TimerHeap::Handle> handles;
  for (int i = 0; i < 100000; ++i) handles.push_back(heap.Add(At(i), [] {}));
  EXPECT_GE(heap.SlotCapacityForTesting(), 100000u);
  for (TimerHeap::Handle h : handles) ASSERT_TRUE(heap.Cancel(h));
  EXPECT_TRUE(heap.empty());
  EXPECT_EQ(heap.SlotCapacityForTesting(), 0u);
  // Old handles stay harmless after the release.
  EXPECT_FALSE(heap.Cancel(handles[5]));
  heap.Add(At(1), [] {});
  EXPECT_FALSE(heap.Cancel(handles[0]));
  EXPECT_EQ(heap.size(), 1u);
}

TEST(TimerHeapTest, InfiniteDeadlinesSortLast) {
  TimerHeap heap;
  std::vector<int> fired;
  heap.Add(absl::InfiniteFuture(), [&] { fired.push_back(2); });
  heap.Add(absl::InfinitePast(), [&] { fired.push_back(0); });
  heap.Add(At(1), [&] { fired.push_back(1); });
  RunDue(heap, At(5));
  EXPECT_EQ(fired, (std::vector<int>{0, 1}));
  EXPECT_EQ(heap.NextDeadline(), absl::InfiniteFuture());
}

// Random operations against a sorted-vector model.
TEST(TimerHeapTest, MatchesReferenceModelUnderRandomOperations) {
  std::mt19937 rng(12345);
  TimerHeap heap;
  struct ModelEntry {
    int64_t deadline;
    int id;
    TimerHeap::Handle handle;
  };
  std::vector<ModelEntry> model;
  std::vector<int> fired;
  int next_id = 0;
  int64_t now = 0;
  for (int step = 0; step < 200000; ++step) {
    const int op = rng() % 10;
    if (op < 5) {
      const int64_t deadline = now + static_cast<int64_t>(rng() % 50);
      const int id = next_id++;
      model.push_back(
          {deadline, id, heap.Add(At(deadline), [&fired, id] { fired.push_back(id); })});
    } else if (op < 8 && !model.empty()) {
      const size_t i = rng() % model.size();
      ASSERT_TRUE(heap.Cancel(model[i].handle));
      model.erase(model.begin() + i);
    } else {
      now += rng() % 20;
      std::vector<ModelEntry> due;
      std::vector<ModelEntry> rest;
      for (const ModelEntry& e : model) (e.deadline <= now ? due : rest).push_back(e);
      std::stable_sort(due.begin(), due.end(), [](const ModelEntry& a, const ModelEntry& b) {
        return a.deadline < b.deadline;
      });
      fired.clear();
      RunDue(heap, At(now));
      std::vector<int> expected;
      for (const ModelEntry& e : due) expected.push_back(e.id);
      ASSERT_EQ(fired, expected) << "step " << step;
      model = rest;
    }
    ASSERT_EQ(heap.size(), model.size());
  }
}

TEST(TimerHeapTest, RenumberingKeepsDeadlineAndInsertionOrder) {
  TimerHeap heap;
  std::vector<int> fired;
  for (int i = 0; i < 300; ++i) heap.Add(At(i % 5), [&fired, i] { fired.push_back(i); });
  heap.RenumberForTesting();
  for (int i = 300; i < 400; ++i) heap.Add(At(i % 5), [&fired, i] { fired.push_back(i); });
  RunDue(heap, At(10));
  std::vector<int> expected;
  for (int d = 0; d < 5; ++d) {
    for (int i = d; i < 400; i += 5) expected.push_back(i);
  }
  EXPECT_EQ(fired, expected);
}

TEST(TimerHeapTest, HandlesToReleasedStorageNeverMatchNewEntries) {
  TimerHeap heap;
  std::vector<TimerHeap::Handle> old;
  for (int i = 0; i < 200; ++i) old.push_back(heap.Add(At(1), [] {}));
  EXPECT_EQ(RunDue(heap, At(1)), 200);  // Empties: storage released.
  int ran = 0;
  for (int i = 0; i < 200; ++i) heap.Add(At(2), [&ran] { ++ran; });
  for (const TimerHeap::Handle& h : old) EXPECT_FALSE(heap.Cancel(h));
  EXPECT_EQ(RunDue(heap, At(2)), 200);
  EXPECT_EQ(ran, 200);
}

TEST(TimerHeapTest, ReusedSlotDoesNotMatchTheOldHandle) {
  TimerHeap heap;
  heap.Add(At(100), [] {});  // Keeps the heap from emptying.
  TimerHeap::Handle first = heap.Add(At(5), [] {});
  ASSERT_TRUE(heap.Cancel(first));
  bool ran = false;
  TimerHeap::Handle second = heap.Add(At(5), [&ran] { ran = true; });  // Same slot.
  EXPECT_FALSE(first == second);
  EXPECT_FALSE(heap.Cancel(first));
  EXPECT_EQ(RunDue(heap, At(5)), 1);
  EXPECT_TRUE(ran);
}

TEST(TimerHeapTest, EmplaceStoresAnyCallable) {
  TimerHeap heap;
  int sum = 0;
  struct Big {
    int* sum;
    int64_t pad[6];
    void operator()() const { *sum += static_cast<int>(pad[5]); }
  };
  heap.Emplace(absl::ToUnixNanos(At(1)), [&sum] { sum += 1; });
  heap.Emplace(absl::ToUnixNanos(At(1)), Big{&sum, {0, 0, 0, 0, 0, 10}});
  EXPECT_EQ(RunDue(heap, At(1)), 2);
  EXPECT_EQ(sum, 11);
}

}  // namespace
}  // namespace ioloop
