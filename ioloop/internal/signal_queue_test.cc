#include "ioloop/internal/signal_queue.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ioloop::ioloop_internal {
namespace {

TEST(SignalQueueTest, FifoAndBounded) {
  SignalQueue<int, 4> queue;
  for (int i = 1; i <= 4; ++i) {
    int v = i;
    EXPECT_TRUE(queue.Push(v));
  }
  int extra = 5;
  EXPECT_FALSE(queue.Push(extra)) << "full";
  EXPECT_EQ(extra, 5) << "a refused value is left untouched";
  int out = 0;
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(queue.Pop(out));
    EXPECT_EQ(out, i);
  }
  EXPECT_FALSE(queue.MaybeNonEmpty());
  EXPECT_FALSE(queue.Pop(out));
}

TEST(SignalQueueTest, PopLeavesTheCellEmpty) {
  SignalQueue<std::shared_ptr<int>, 2> queue;
  auto value = std::make_shared<int>(7);
  std::weak_ptr<int> watch = value;
  ASSERT_TRUE(queue.Push(value));
  std::shared_ptr<int> out;
  ASSERT_TRUE(queue.Pop(out));
  out.reset();
  EXPECT_TRUE(watch.expired()) << "the queue kept no copy";
}

// Producers race each other and the consumer; every value arrives exactly once and
// each producer's values arrive in order. Run under TSan in CI.
TEST(SignalQueueTest, ManyProducersOneConsumerLoseNothing) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 50000;
  SignalQueue<uint64_t, 64> queue;
  std::atomic<int> done{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (uint64_t i = 0; i < kPerProducer; ++i) {
        uint64_t v = (static_cast<uint64_t>(p) << 32) | i;
        while (!queue.Push(v)) std::this_thread::yield();
      }
      done.fetch_add(1);
    });
  }
  std::vector<uint64_t> next(kProducers, 0);
  int received = 0;
  while (received < kProducers * kPerProducer) {
    uint64_t v;
    if (!queue.Pop(v)) {
      std::this_thread::yield();
      continue;
    }
    const int p = static_cast<int>(v >> 32);
    ASSERT_EQ(v & 0xffffffffu, next[p]) << "producer " << p << " out of order";
    ++next[p];
    ++received;
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(done.load(), kProducers);
  EXPECT_FALSE(queue.MaybeNonEmpty());
}

}  // namespace
}  // namespace ioloop::ioloop_internal
