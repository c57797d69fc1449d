#include "loop_thread/loop_thread.h"

#include <pthread.h>

#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"

namespace ioloop {
namespace {

// LoadToken counts one posted callback in its thread's Load() for as long as the
// callback object exists: it is destroyed right after running, or unrun on Close().
class LoadToken {
 public:
  explicit LoadToken(LoopThread* thread) : thread_(thread) { thread_->AddLoad(1); }
  LoadToken(LoadToken&& other) noexcept : thread_(std::exchange(other.thread_, nullptr)) {}
  LoadToken& operator=(LoadToken&&) = delete;
  ~LoadToken() {
    if (thread_ != nullptr) thread_->AddLoad(-1);
  }

 private:
  LoopThread* thread_;
};

// DoneSignal tells RunAndWait() whether its function ran, when the callback holding
// it is destroyed (after running, or unrun).
class DoneSignal {
 public:
  explicit DoneSignal(std::promise<bool> promise) : promise_(std::move(promise)) {}
  DoneSignal(DoneSignal&& other) noexcept
      : promise_(std::move(other.promise_)),
        armed_(std::exchange(other.armed_, false)),
        ran_(other.ran_) {}
  DoneSignal& operator=(DoneSignal&&) = delete;
  ~DoneSignal() {
    if (armed_) promise_.set_value(ran_);
  }
  void MarkRan() { ran_ = true; }

 private:
  std::promise<bool> promise_;
  bool armed_ = true;
  bool ran_ = false;
};

}  // namespace

LoopThread::LoopThread() : LoopThread(Options()) {}

LoopThread::LoopThread(Options options)
    : name_(options.name.empty() ? "ioloop" : std::move(options.name)),
      make_loop_options_(std::move(options.make_loop_options)) {}

LoopThread::~LoopThread() {
  Stop();
  Join();
  loop_.reset();  // Closed on its thread already; destroyed here, after Join().
}

absl::Status LoopThread::Start() {
  IOLOOP_CHECK(!started_, "LoopThread::Start() called twice");
  started_ = true;
  std::promise<absl::Status> started;
  std::future<absl::Status> result = started.get_future();
  // The thread owns the promise: set_value() may still be touching it when get()
  // returns here.
  thread_ = std::thread([this, started = std::move(started)]() mutable { Run(&started); });
  absl::Status status = result.get();
  if (!status.ok()) Join();
  return status;
}

void LoopThread::Run(std::promise<absl::Status>* started) {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  thread_id_.store(std::this_thread::get_id(), std::memory_order_release);
  IOLoop::Options options = make_loop_options_ ? make_loop_options_() : IOLoop::Options();
  absl::StatusOr<std::unique_ptr<IOLoop>> created = IOLoop::Create(std::move(options));
  if (!created.ok()) {
    started->set_value(
        absl::Status(created.status().code(),
                     absl::StrCat("LoopThread ", name_, ": ", created.status().message())));
    return;
  }
  loop_ = *std::move(created);
  {
    MutexLock lock(mu_);
    if (stop_requested_) {
      loop_->Stop();  // Start() below returns at once (Tornado's rule).
    } else {
      accepting_ = true;
    }
  }
  loop_ptr_.store(loop_.get(), std::memory_order_release);
  started->set_value(absl::OkStatus());
  loop_->Start();
  {
    MutexLock lock(mu_);
    accepting_ = false;  // From here on no thread reaches the loop: Close() may run.
  }
  // Destroys what is still queued (callbacks, handlers, timeouts) on this thread.
  loop_->Close().IgnoreError();
}

bool LoopThread::AddCallback(Callback callback) {
  MutexLock lock(mu_);
  if (!accepting_) return false;  // `callback` is destroyed on return, on this thread.
  loop_->AddCallback([token = LoadToken(this), callback = std::move(callback)]() mutable {
    callback();
    LoadToken spent = std::move(token);  // Off the load before the callback is destroyed.
  });
  return true;
}

absl::Status LoopThread::RunAndWait(absl::AnyInvocable<void()> fn) {
  if (IsInLoopThread()) {
    fn();
    return absl::OkStatus();
  }
  std::promise<bool> promise;
  std::future<bool> ran = promise.get_future();
  AddCallback([fn = std::move(fn), done = DoneSignal(std::move(promise))]() mutable {
    fn();
    done.MarkRan();
  });
  if (!ran.get()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "LoopThread ", name_, ": RunAndWait: the loop is not running (not started or stopped)"));
  }
  return absl::OkStatus();
}

void LoopThread::Stop() {
  MutexLock lock(mu_);
  stop_requested_ = true;
  if (accepting_) {
    accepting_ = false;
    loop_->Stop();
  }
}

void LoopThread::Join() {
  if (!thread_.joinable()) return;
  IOLOOP_CHECK(!IsInLoopThread(), "LoopThread::Join() called on the loop's own thread");
  thread_.join();
}

bool LoopThread::IsInLoopThread() const {
  return thread_id_.load(std::memory_order_acquire) == std::this_thread::get_id();
}

LoopThreadPool::LoopThreadPool(int n, std::string name_prefix)
    : LoopThreadPool(n, nullptr, std::move(name_prefix)) {}

LoopThreadPool::LoopThreadPool(int n, absl::AnyInvocable<IOLoop::Options(int index)> make_options,
                               std::string name_prefix) {
  IOLOOP_CHECK(n >= 1, "LoopThreadPool: needs at least one thread");
  // Shared by the threads' option makers, each called once on its own thread.
  auto shared = std::make_shared<absl::AnyInvocable<IOLoop::Options(int)>>(std::move(make_options));
  for (int i = 0; i < n; ++i) {
    LoopThread::Options options;
    options.name = absl::StrCat(name_prefix, "-", i);
    if (*shared) {
      options.make_loop_options = [shared, i] { return (*shared)(i); };
    }
    threads_.push_back(std::make_unique<LoopThread>(std::move(options)));
  }
}

LoopThreadPool::~LoopThreadPool() {
  Stop();
  Join();
}

absl::Status LoopThreadPool::Start() {
  for (auto& thread : threads_) {
    if (absl::Status s = thread->Start(); !s.ok()) {
      Stop();
      Join();
      return s;
    }
  }
  return absl::OkStatus();
}

void LoopThreadPool::Stop() {
  for (auto& thread : threads_) thread->Stop();
}

void LoopThreadPool::Join() {
  for (auto& thread : threads_) thread->Join();
}

std::vector<IOLoop*> LoopThreadPool::loops() const {
  std::vector<IOLoop*> loops;
  loops.reserve(threads_.size());
  for (const auto& thread : threads_) loops.push_back(thread->loop());
  return loops;
}

LoopThread& LoopThreadPool::Next() {
  return *threads_[next_.fetch_add(1, std::memory_order_relaxed) % threads_.size()];
}

LoopThread& LoopThreadPool::LeastLoaded() {
  const size_t n = threads_.size();
  const size_t start = next_.fetch_add(1, std::memory_order_relaxed) % n;
  size_t best = start;
  int64_t best_load = threads_[start]->Load();
  for (size_t k = 1; k < n; ++k) {
    const size_t i = (start + k) % n;
    const int64_t load = threads_[i]->Load();
    if (load < best_load) {
      best = i;
      best_load = load;
    }
  }
  return *threads_[best];
}

}  // namespace ioloop
