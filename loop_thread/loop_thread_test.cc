#include "loop_thread/loop_thread.h"

#include <atomic>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "waker/waker.h"

namespace ioloop {
namespace {

// Probe records the thread its destructor ran on, to check where the loop destroys
// callbacks it never ran.
struct Probe {
  explicit Probe(std::promise<std::thread::id>* destroyed) : destroyed(destroyed) {}
  Probe(Probe&& other) noexcept : destroyed(std::exchange(other.destroyed, nullptr)) {}
  ~Probe() {
    if (destroyed != nullptr) destroyed->set_value(std::this_thread::get_id());
  }
  std::promise<std::thread::id>* destroyed;
};

TEST(LoopThreadTest, RunsCallbacksOnItsOwnThread) {
  LoopThread thread;
  EXPECT_EQ(thread.loop(), nullptr);
  ASSERT_TRUE(thread.Start().ok());
  ASSERT_NE(thread.loop(), nullptr);
  EXPECT_FALSE(thread.IsInLoopThread());
  std::promise<std::pair<std::thread::id, bool>> where;
  EXPECT_TRUE(thread.AddCallback([&] {
    where.set_value(
        {std::this_thread::get_id(), thread.IsInLoopThread() && thread.loop()->IsInLoopThread()});
  }));
  const auto [id, in_loop] = where.get_future().get();
  EXPECT_NE(id, std::this_thread::get_id());
  EXPECT_TRUE(in_loop);
  thread.Stop();
  thread.Join();
  EXPECT_NE(thread.loop(), nullptr);  // Still valid (closed) until destruction.
}

TEST(LoopThreadTest, RunAndWaitRunsBeforeReturning) {
  LoopThread thread;
  ASSERT_TRUE(thread.Start().ok());
  std::thread::id ran_on;
  ASSERT_TRUE(thread.RunAndWait([&] { ran_on = std::this_thread::get_id(); }).ok());
  EXPECT_NE(ran_on, std::thread::id());
  EXPECT_NE(ran_on, std::this_thread::get_id());
  // On the loop thread itself it runs inline (waiting would deadlock).
  int inner = 0;
  ASSERT_TRUE(
      thread.RunAndWait([&] { EXPECT_TRUE(thread.RunAndWait([&] { inner = 1; }).ok()); }).ok());
  EXPECT_EQ(inner, 1);
}

TEST(LoopThreadTest, RefusesWorkBeforeStartAndAfterStop) {
  LoopThread thread;
  std::promise<std::thread::id> destroyed;
  EXPECT_FALSE(thread.AddCallback([p = Probe(&destroyed)] {}));
  EXPECT_EQ(destroyed.get_future().get(), std::this_thread::get_id());  // At once, here.
  EXPECT_EQ(thread.RunAndWait([] {}).code(), absl::StatusCode::kFailedPrecondition);

  ASSERT_TRUE(thread.Start().ok());
  thread.Stop();
  bool ran = false;
  EXPECT_FALSE(thread.AddCallback([&] { ran = true; }));
  absl::Status s = thread.RunAndWait([&] { ran = true; });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("ioloop"), absl::string_view::npos) << s;
  thread.Join();
  EXPECT_FALSE(ran);
}

TEST(LoopThreadTest, StopBeforeStartMakesTheLoopReturnAtOnce) {
  LoopThread thread;
  thread.Stop();
  ASSERT_TRUE(thread.Start().ok());
  thread.Join();  // Returns: the loop never waited for anything.
  EXPECT_FALSE(thread.AddCallback([] {}));
}

TEST(LoopThreadTest, LoopStoppedFromInsideEndsTheThread) {
  LoopThread thread;
  ASSERT_TRUE(thread.Start().ok());
  ASSERT_TRUE(thread.AddCallback([&] { thread.loop()->Stop(); }));
  thread.Join();
  EXPECT_FALSE(thread.AddCallback([] {}));
}

TEST(LoopThreadTest, CallbacksLeftQueuedAreDestroyedOnTheLoopThread) {
  LoopThread thread;
  ASSERT_TRUE(thread.Start().ok());
  std::promise<std::thread::id> loop_id;
  std::promise<std::thread::id> destroyed;
  // A callback that calls Stop() ends the loop after this iteration's timeouts, so one
  // it queues is never run: Close() destroys it on the loop thread.
  ASSERT_TRUE(thread.AddCallback([&] {
    loop_id.set_value(std::this_thread::get_id());
    thread.Stop();
    thread.loop()->AddCallback([p = Probe(&destroyed)] { ADD_FAILURE() << "ran"; });
  }));
  thread.Join();
  EXPECT_EQ(destroyed.get_future().get(), loop_id.get_future().get());
}

TEST(LoopThreadTest, ManyPostersEveryCallbackRunsOnce) {
  LoopThread thread;
  ASSERT_TRUE(thread.Start().ok());
  constexpr int kPosters = 4;
  constexpr int kEach = 2000;
  int count = 0;  // Touched only on the loop thread.
  std::vector<std::thread> posters;
  for (int p = 0; p < kPosters; ++p) {
    posters.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) ASSERT_TRUE(thread.AddCallback([&] { ++count; }));
    });
  }
  for (auto& t : posters) t.join();
  int seen = 0;
  ASSERT_TRUE(thread.RunAndWait([&] { seen = count; }).ok());
  EXPECT_EQ(seen, kPosters * kEach);
  EXPECT_EQ(thread.Load(), 0);
}

TEST(LoopThreadTest, DestructorStopsAndJoins) {
  std::atomic<bool> ran{false};
  {
    LoopThread thread;
    ASSERT_TRUE(thread.Start().ok());
    ASSERT_TRUE(thread.RunAndWait([&] { ran = true; }).ok());
  }
  EXPECT_TRUE(ran);
}

TEST(LoopThreadPoolTest, EachLoopHasItsOwnThread) {
  LoopThreadPool pool(3);
  ASSERT_TRUE(pool.Start().ok());
  std::set<std::thread::id> ids;
  for (size_t i = 0; i < pool.size(); ++i) {
    ASSERT_TRUE(pool.thread(i).RunAndWait([&] { ids.insert(std::this_thread::get_id()); }).ok());
  }
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 0u);
  std::vector<IOLoop*> loops = pool.loops();
  EXPECT_EQ(std::set<IOLoop*>(loops.begin(), loops.end()).size(), 3u);
  EXPECT_EQ(pool.thread(1).name(), "ioloop-1");
  pool.Stop();
  pool.Join();
  for (size_t i = 0; i < pool.size(); ++i) EXPECT_FALSE(pool.thread(i).AddCallback([] {}));
}

TEST(LoopThreadPoolTest, NextIsExactRoundRobin) {
  LoopThreadPool pool(3);
  ASSERT_TRUE(pool.Start().ok());
  std::vector<LoopThread*> picks;
  for (int i = 0; i < 9; ++i) picks.push_back(&pool.Next());
  for (int i = 0; i < 9; ++i) EXPECT_EQ(picks[i], &pool.thread(i % 3)) << i;
}

TEST(LoopThreadPoolTest, LeastLoadedPicksTheSmallestLoadAndRotatesTies) {
  LoopThreadPool pool(3);
  ASSERT_TRUE(pool.Start().ok());
  pool.thread(0).AddLoad(5);
  pool.thread(1).AddLoad(2);
  pool.thread(2).AddLoad(7);
  EXPECT_EQ(&pool.LeastLoaded(), &pool.thread(1));
  EXPECT_EQ(&pool.LeastLoaded(), &pool.thread(1));
  pool.thread(0).AddLoad(-5);
  pool.thread(1).AddLoad(-2);
  pool.thread(2).AddLoad(-7);
  std::set<LoopThread*> tied;
  for (int i = 0; i < 3; ++i) tied.insert(&pool.LeastLoaded());
  EXPECT_EQ(tied.size(), 3u);  // Equal loads: each gets a turn.
}

TEST(LoopThreadPoolTest, PerLoopOptionsAreMadeOnEachThread) {
  std::atomic<int> made{0};
  LoopThreadPool pool(
      2,
      [&](int index) {
        made.fetch_add(1 + index);
        return IOLoop::Options();
      },
      "worker");
  ASSERT_TRUE(pool.Start().ok());
  EXPECT_EQ(made.load(), 3);  // 1 + 2: once each, index 0 and 1.
  EXPECT_EQ(pool.thread(0).name(), "worker-0");
}

// A waker whose fd the poller refuses: IOLoop::Create fails, so Start() must.
class BadWaker : public Waker {
 public:
  int fd() const override { return -1; }
  absl::Status Wake() override { return absl::OkStatus(); }
  void Consume() override {}
  absl::string_view Name() const override { return "bad"; }
};

TEST(LoopThreadPoolTest, CreationFailureIsAStatusAndStopsTheOthers) {
  LoopThreadPool pool(3, [](int index) {
    IOLoop::Options options;
    if (index == 1) options.waker = std::make_unique<BadWaker>();
    return options;
  });
  absl::Status s = pool.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("ioloop-1"), absl::string_view::npos) << s;
  EXPECT_FALSE(pool.thread(0).AddCallback([] {}));  // Stopped again.
  EXPECT_EQ(pool.thread(1).loop(), nullptr);
  EXPECT_EQ(pool.thread(2).loop(), nullptr);  // Never started.
}

}  // namespace
}  // namespace ioloop
