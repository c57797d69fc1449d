#include "base/inline_function.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "base/allocation_counter.h"
#include "base/recycling_allocator.h"
#include "gtest/gtest.h"

namespace ioloop::base {
namespace {

using Fn16 = InlineFunction<void(), 16>;
using IntFn = InlineFunction<int(int), 16>;

TEST(InlineFunctionTest, SizeIsInlineBytesPlusOneWord) {
  EXPECT_EQ(sizeof(Fn16), 16 + sizeof(void*));
  EXPECT_EQ(sizeof(InlineFunction<void(), 48>), 48 + sizeof(void*));
}

TEST(InlineFunctionTest, EmptyByDefaultAndFromNull) {
  Fn16 a;
  EXPECT_FALSE(a);
  Fn16 b = nullptr;
  EXPECT_FALSE(b);
  void (*null_pointer)() = nullptr;
  Fn16 c = null_pointer;
  EXPECT_FALSE(c);
}

TEST(InlineFunctionTest, CallsWithArgumentsAndReturnsTheResult) {
  int base = 10;
  IntFn f = [&base](int x) { return base + x; };
  ASSERT_TRUE(f);
  EXPECT_EQ(f(5), 15);
  base = 20;
  EXPECT_EQ(f(1), 21);
}

TEST(InlineFunctionTest, SmallCapturesDoNotAllocate) {
  int hits = 0;
  void* p = &hits;
  const uint64_t before = AllocationsInProcess();
  {
    Fn16 f = [&hits, p] { hits += (p != nullptr); };
    Fn16 g = std::move(f);
    EXPECT_FALSE(f);  // NOLINT: moved-from is empty by contract.
    g();
  }
  EXPECT_EQ(AllocationsInProcess(), before);
  EXPECT_EQ(hits, 1);
  static_assert(Fn16::StoredInline<void (*)()>());
  static_assert(!Fn16::StoredInline<std::array<char, 17>>());
}

// Counts live copies, to check that every callable is destroyed exactly once.
struct Tracked {
  explicit Tracked(int* live) : live(live) { ++*live; }
  Tracked(Tracked&& o) noexcept : live(o.live) { ++*live; }
  Tracked(const Tracked&) = delete;
  ~Tracked() { --*live; }
  int* live;
};

TEST(InlineFunctionTest, NonTrivialInlineCallableIsMovedAndDestroyedOnce) {
  int live = 0;
  {
    Fn16 f = [t = Tracked(&live)] { (void)t; };
    EXPECT_EQ(live, 1);
    Fn16 g = std::move(f);
    EXPECT_EQ(live, 1);
    g();
    g = nullptr;
    EXPECT_EQ(live, 0);
    EXPECT_FALSE(g);
  }
  EXPECT_EQ(live, 0);
}

TEST(InlineFunctionTest, LargeCallableGoesToTheHeapAndIsDestroyedOnce) {
  int live = 0;
  std::array<char, 64> big{};
  big[63] = 7;
  int seen = 0;
  {
    Fn16 f = [t = Tracked(&live), big, &seen] { seen = big[63]; };
    EXPECT_EQ(live, 1);
    Fn16 g = std::move(f);
    g();
    EXPECT_EQ(seen, 7);
    EXPECT_EQ(live, 1);
  }
  EXPECT_EQ(live, 0);
}

TEST(InlineFunctionTest, MoveOnlyCaptures) {
  auto owned = std::make_unique<int>(42);
  int seen = 0;
  InlineFunction<void(), 48> f = [p = std::move(owned), &seen] { seen = *p; };
  f();
  EXPECT_EQ(seen, 42);
}

TEST(InlineFunctionTest, AssignmentDestroysTheOldCallableAfterTakingTheNewOne) {
  // The old callable's destructor sees the function already holding the new one.
  Fn16 slot;
  bool saw_new = false;
  struct Probe {
    Fn16* slot;
    bool* saw_new;
    Probe(Fn16* s, bool* n) : slot(s), saw_new(n) {}
    Probe(Probe&& o) noexcept : slot(o.slot), saw_new(o.saw_new) { o.slot = nullptr; }
    ~Probe() {
      if (slot != nullptr) *saw_new = static_cast<bool>(*slot);
    }
    void operator()() {}
  };
  slot = Probe(&slot, &saw_new);
  slot = [] {};
  EXPECT_TRUE(saw_new);
}

TEST(InlineFunctionTest, HeapBlocksAreRecycledInSteadyState) {
  std::array<char, 100> big{};
  for (int i = 0; i < 10; ++i) Fn16 warm = [big] { (void)big; };
  const uint64_t before = AllocationsInProcess();
  for (int i = 0; i < 1000; ++i) {
    Fn16 f = [big] { (void)big; };
    f();
  }
  EXPECT_EQ(AllocationsInProcess(), before);
}

TEST(RecyclingAllocatorTest, BlocksFreedOnAnotherThreadAreReusedThere) {
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) blocks.push_back(RecyclingAllocator::Allocate(48));
  std::thread([&] {
    for (void* b : blocks) RecyclingAllocator::Deallocate(b, 48);
    const uint64_t before = AllocationsInProcess();
    void* again = RecyclingAllocator::Allocate(40);
    EXPECT_EQ(AllocationsInProcess(), before);
    RecyclingAllocator::Deallocate(again, 40);
  }).join();
}

TEST(RecyclingAllocatorTest, LargeBlocksAreNotCached) {
  void* p = RecyclingAllocator::Allocate(RecyclingAllocator::kMaxRecycled + 1);
  std::memset(p, 1, RecyclingAllocator::kMaxRecycled + 1);
  RecyclingAllocator::Deallocate(p, RecyclingAllocator::kMaxRecycled + 1);
  const uint64_t before = AllocationsInProcess();
  p = RecyclingAllocator::Allocate(RecyclingAllocator::kMaxRecycled + 1);
  EXPECT_EQ(AllocationsInProcess(), before + 1);
  RecyclingAllocator::Deallocate(p, RecyclingAllocator::kMaxRecycled + 1);
}

}  // namespace
}  // namespace ioloop::base
