// Coroutines against the callbacks they are built on.
//
//   ./bazelw run --config=opt //coro:coro_benchmark
//
// - Turn: `co_await Sleep(0)` (a queued callback) against AddCallback + callback;
//   `co_await Sleep(1ns)` (a timeout) against AddTimeout + callback.
// - Echo: 64-byte ping-pong over loopback TCP, server on this thread (its CPU time is
//   what the benchmark reports), a blocking client on another; the server written with
//   callbacks (ReadBytes(partial) -> Write -> ReadBytes) and as a coroutine.
//   Counters: frames (fresh frame allocations per round trip, steady state).

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "coro/coro.h"
#include "coro/stream.h"
#include "ioloop/io_loop.h"
#include "net/iostream.h"
#include "net/testing/net_test_loop.h"

namespace ioloop::coro {
namespace {

constexpr int kBatch = 1000;

// A chain of kBatch callbacks, each scheduling the next with `kTimeout` (AddTimeout of
// 1 ns) or without (AddCallback): the callback version of each coroutine benchmark.
template <bool kTimeout>
void RunCallbackChain(benchmark::State& state) {
  IOLoop loop;
  for (auto _ : state) {
    int left = kBatch;
    struct Step {
      IOLoop* loop;
      int* left;
      void Schedule() const {
        if constexpr (kTimeout) {
          loop->AddTimeout(absl::Nanoseconds(1), *this);
        } else {
          loop->AddCallback(*this);
        }
      }
      void operator()() const {
        if (--*left == 0) {
          loop->Stop();
        } else {
          Schedule();
        }
      }
    };
    Step{&loop, &left}.Schedule();
    loop.Start();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_CallbackTurn(benchmark::State& state) { RunCallbackChain<false>(state); }
BENCHMARK(BM_CallbackTurn);

void BM_CoroSleepZero(benchmark::State& state) {
  IOLoop loop;
  auto body = []() -> Task<> {
    for (int i = 0; i < kBatch; ++i) co_await Sleep(absl::ZeroDuration());
  };
  for (auto _ : state) RunSync(loop, body());
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_CoroSleepZero);

void BM_CallbackTimeout(benchmark::State& state) { RunCallbackChain<true>(state); }
BENCHMARK(BM_CallbackTimeout);

void BM_CoroSleepTimeout(benchmark::State& state) {
  IOLoop loop;
  auto body = []() -> Task<> {
    for (int i = 0; i < kBatch; ++i) co_await Sleep(absl::Nanoseconds(1));
  };
  for (auto _ : state) RunSync(loop, body());
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_CoroSleepTimeout);

// A blocking client thread doing `kBatch` round trips each time it is asked.
class Client {
 public:
  explicit Client(int fd) : fd_(fd), thread_([this] { Run(); }) {}
  ~Client() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
    close(fd_);
  }
  void Go() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++batches_;
    }
    cv_.notify_all();
  }

 private:
  void Run() {
    char buf[64] = {};
    int done = 0;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return quit_ || batches_ > done; });
        if (quit_) return;
      }
      ++done;
      for (int i = 0; i < kBatch; ++i) {
        if (!net_testing::WriteAll(fd_, absl::string_view(buf, sizeof buf))) return;
        size_t got = 0;
        while (got < sizeof buf) {
          const ssize_t n = recv(fd_, buf + got, sizeof buf - got, 0);
          if (n <= 0) return;
          got += static_cast<size_t>(n);
        }
      }
    }
  }
  const int fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  int batches_ = 0;
  bool quit_ = false;
  std::thread thread_;
};

struct EchoCounter {
  IOLoop* loop;
  uint64_t bytes = 0;
  uint64_t target = 0;
  void Add(size_t n) {
    bytes += n;
    if (bytes >= target) loop->Stop();
  }
};

void CallbackRead(IOStream* s, EchoCounter* counter) {
  s->ReadBytes(
      64 * 1024,
      [s, counter](absl::StatusOr<std::string> data) {
        if (!data.ok()) return;
        const size_t n = data->size();
        s->Write(*data, [s, counter, n](absl::Status written) {
           if (!written.ok()) return;
           counter->Add(n);
           CallbackRead(s, counter);
         }).IgnoreError();
      },
      /*partial=*/true);
}

Task<> CoroEcho(IOStream* s, EchoCounter* counter) {
  while (true) {
    absl::StatusOr<std::string> data = co_await ReadBytes(*s, 64 * 1024, /*partial=*/true);
    if (!data.ok()) co_return;
    if (!(co_await Write(*s, *data)).ok()) co_return;
    counter->Add(data->size());
  }
}

template <bool kCoroutine>
void BM_Echo(benchmark::State& state) {
  IOLoop loop;
  auto [server_fd, client_fd] = net_testing::TcpPair();
  auto stream = std::make_unique<IOStream>(&loop, server_fd);
  stream->SetNoDelay(true).IgnoreError();
  EchoCounter counter{&loop};
  if (kCoroutine) {
    Spawn(loop, CoroEcho(stream.get(), &counter));
  } else {
    CallbackRead(stream.get(), &counter);
  }
  Client client(client_fd);
  // Warm up one batch (caches, buffers), then measure.
  counter.target += 64 * kBatch;
  client.Go();
  loop.Start();
  const uint64_t fresh_before = ThreadFrameStats().fresh;
  for (auto _ : state) {
    counter.target += 64 * kBatch;
    client.Go();
    loop.Start();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["fresh_frames_per_rt"] =
      benchmark::Counter(static_cast<double>(ThreadFrameStats().fresh - fresh_before) /
                         static_cast<double>(state.iterations() * kBatch));
  stream.reset();  // The client sees EOF and exits its batch.
}
BENCHMARK_TEMPLATE(BM_Echo, false)->Name("BM_EchoCallbacks")->UseRealTime();
BENCHMARK_TEMPLATE(BM_Echo, true)->Name("BM_EchoCoroutine")->UseRealTime();

}  // namespace
}  // namespace ioloop::coro

BENCHMARK_MAIN();
