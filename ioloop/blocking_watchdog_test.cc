// The blocking watchdog on a real loop (blocking is a real-time matter).

#include <condition_variable>
#include <mutex>
#include <string>

#include "gtest/gtest.h"
#include "ioloop/io_loop.h"

namespace ioloop {
namespace {

// Collects reports; lets the blocked callback wait for the first one.
struct Reports {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<BlockingReport> seen;

  void Add(const BlockingReport& r) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(r);
    changed.notify_all();
  }
  bool WaitForOne(absl::Duration limit) {
    std::unique_lock<std::mutex> lock(mu);
    return changed.wait_for(lock, absl::ToChronoNanoseconds(limit), [&] { return !seen.empty(); });
  }
  size_t Count() {
    std::lock_guard<std::mutex> lock(mu);
    return seen.size();
  }
};

// Blocks the loop thread until the watchdog has reported (or 10 s pass).
__attribute__((noinline)) void BlockingCallbackUnderTest(Reports& reports, bool& reported) {
  reported = reports.WaitForOne(absl::Seconds(10));
}

TEST(BlockingWatchdogTest, ReportsABlockingCallbackOnceWithItsStack) {
  IOLoop loop;
  Reports reports;
  loop.SetBlockingSignalThreshold(absl::Milliseconds(50),
                                  [&](const BlockingReport& r) { reports.Add(r); });
  bool reported = false;
  loop.AddCallback([&] {
    BlockingCallbackUnderTest(reports, reported);
    loop.Stop();
  });
  loop.Start();
  EXPECT_TRUE(reported);
  ASSERT_EQ(reports.Count(), 1u) << "at most once per busy stretch";
  const BlockingReport& r = reports.seen[0];
  EXPECT_GE(r.blocked_for, absl::Milliseconds(50));
  EXPECT_FALSE(r.frames.empty());
  EXPECT_NE(r.symbolized.find("BlockingCallbackUnderTest"), std::string::npos) << r.symbolized;
}

TEST(BlockingWatchdogTest, AnIdleLoopNeverFires) {
  IOLoop loop;
  Reports reports;
  loop.SetBlockingSignalThreshold(absl::Milliseconds(10),
                                  [&](const BlockingReport& r) { reports.Add(r); });
  // Thirty times the threshold spent polling, in a few short iterations.
  for (int i = 1; i <= 3; ++i) loop.AddTimeout(absl::Milliseconds(100 * i), [] {});
  loop.AddTimeout(absl::Milliseconds(300), [&] { loop.Stop(); });
  loop.Start();
  EXPECT_EQ(reports.Count(), 0u);
}

TEST(BlockingWatchdogTest, LogThresholdLogsThroughTheHook) {
  std::mutex mu;
  std::vector<std::string> logs;
  IOLoop::Options options;
  options.log_handler = [&](absl::string_view m) {
    std::lock_guard<std::mutex> lock(mu);
    logs.emplace_back(m);
  };
  IOLoop loop(std::move(options));
  loop.SetBlockingLogThreshold(absl::Milliseconds(20));
  loop.AddCallback([&] {
    // Block until the log line arrives (or 10 s pass).
    for (int i = 0; i < 10000; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!logs.empty()) break;
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    loop.Stop();
  });
  loop.Start();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_NE(logs[0].find("IOLoop blocked for"), std::string::npos) << logs[0];
}

TEST(BlockingWatchdogTest, ZeroTurnsItOff) {
  IOLoop loop;
  Reports reports;
  loop.SetBlockingSignalThreshold(absl::Milliseconds(5),
                                  [&](const BlockingReport& r) { reports.Add(r); });
  loop.SetBlockingSignalThreshold(absl::ZeroDuration(), nullptr);
  loop.AddCallback([&] {
    EXPECT_FALSE(reports.WaitForOne(absl::Milliseconds(100)));
    loop.Stop();
  });
  loop.Start();
  EXPECT_EQ(reports.Count(), 0u);
}

}  // namespace
}  // namespace ioloop
