#include "ioloop/periodic_callback.h"

#include <stdexcept>
#include <vector>

#include "gtest/gtest.h"
#include "testing/fake_loop.h"

namespace ioloop {
namespace {

class PeriodicCallbackTest : public ::testing::Test {
 protected:
  std::vector<absl::Duration> Offsets(const std::vector<absl::Time>& times) {
    std::vector<absl::Duration> out;
    for (absl::Time t : times) out.push_back(t - start_);
    return out;
  }

  testing::FakeLoop fake_;
  testing::RecordingLoop* const loop_ = &fake_.loop();
  testing::FakeClock& clock_ = fake_.clock();
  const absl::Time start_ = fake_.start();
};

TEST_F(PeriodicCallbackTest, RunsEveryPeriodKeepingPhase) {
  std::vector<absl::Time> runs;
  PeriodicCallback periodic([&] { runs.push_back(loop_->Time()); }, absl::Seconds(1), loop_);
  periodic.Start();
  EXPECT_TRUE(periodic.IsRunning());
  loop_->AddTimeout(absl::Milliseconds(4500), [&] { loop_->Stop(); });
  loop_->Start();
  EXPECT_EQ(Offsets(runs), (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2),
                                                        absl::Seconds(3), absl::Seconds(4)}));
}

TEST_F(PeriodicCallbackTest, SkipsMissedRunsInsteadOfBursting) {
  std::vector<absl::Time> runs;
  PeriodicCallback periodic(
      [&] {
        runs.push_back(loop_->Time());
        if (runs.size() == 2) clock_.Advance(absl::Milliseconds(3500));  // A slow run.
      },
      absl::Seconds(1), loop_);
  periodic.Start();
  loop_->AddTimeout(absl::Milliseconds(7500), [&] { loop_->Stop(); });
  loop_->Start();
  // Run 2 at 2 s ends at 5.5 s: runs at 3, 4 and 5 s are skipped; phase is kept.
  EXPECT_EQ(Offsets(runs), (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2),
                                                        absl::Seconds(6), absl::Seconds(7)}));
}

TEST_F(PeriodicCallbackTest, SurvivesExceptions) {
  int runs = 0;
  PeriodicCallback periodic(
      [&] {
        ++runs;
        throw std::runtime_error("periodic failure");
      },
      absl::Seconds(1), loop_);
  periodic.Start();
  loop_->AddTimeout(absl::Milliseconds(3500), [&] { loop_->Stop(); });
  loop_->Start();
  EXPECT_EQ(runs, 3);
  EXPECT_EQ(loop_->errors().size(), 3u);
  EXPECT_TRUE(periodic.IsRunning());
}

TEST_F(PeriodicCallbackTest, StopFromInsideItsOwnCallback) {
  int runs = 0;
  PeriodicCallback* self = nullptr;
  PeriodicCallback periodic(
      [&] {
        if (++runs == 2) self->Stop();
      },
      absl::Seconds(1), loop_);
  self = &periodic;
  periodic.Start();
  loop_->AddTimeout(absl::Seconds(10), [&] { loop_->Stop(); });
  loop_->Start();
  EXPECT_EQ(runs, 2);
  EXPECT_FALSE(periodic.IsRunning());
}

TEST_F(PeriodicCallbackTest, RestartAfterStop) {
  int runs = 0;
  PeriodicCallback periodic([&] { ++runs; }, absl::Seconds(1), loop_);
  periodic.Start();
  periodic.Start();  // No-op: still one schedule.
  loop_->AddTimeout(absl::Milliseconds(2500), [&] {
    periodic.Stop();
    periodic.Stop();
  });
  loop_->AddTimeout(absl::Seconds(5), [&] { periodic.Start(); });
  loop_->AddTimeout(absl::Milliseconds(7500), [&] { loop_->Stop(); });
  loop_->Start();
  EXPECT_EQ(runs, 4);  // At 1 s, 2 s, then 6 s and 7 s.
}

TEST(PeriodicCallbackDeathTest, NonPositivePeriodIsACheckFailure) {
  testing::FakeLoop fake;
  EXPECT_DEATH(PeriodicCallback([] {}, absl::ZeroDuration(), &fake.loop()),
               "period must be positive");
  EXPECT_DEATH(PeriodicCallback([] {}, absl::Seconds(-1), &fake.loop()), "period must be positive");
}

}  // namespace
}  // namespace ioloop
