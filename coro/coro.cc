#include "coro/coro.h"

#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/check.h"
#include "base/mutex.h"
#include "ioloop/stack_context.h"

namespace ioloop::coro {
namespace coro_internal {

// Registry: the roots of every task started on one loop, so that closing the loop
// destroys them. It is created on a loop's first task and owned by a timeout that
// never fires (the Sentinel): the loop destroys every pending timeout in Close() and
// ~IOLoop, and the Sentinel's destructor then destroys the tasks. This uses only
// IOLoop's public API and its re-entrancy contract (a callable's destructor may call
// back into the loop while the loop destroys it).
class Registry {
 public:
  explicit Registry(IOLoop* loop) : loop_(loop) {}

  // For returns `loop`'s registry, creating it (and its Sentinel) on first use. Loop
  // thread only.
  static Registry& For(IOLoop& loop);

  void Link(RootState* r) {
    r->registry = this;
    r->prev = nullptr;
    r->next = head_;
    if (head_ != nullptr) head_->prev = r;
    head_ = r;
  }
  void Unlink(RootState* r) {
    if (r->prev != nullptr) r->prev->next = r->next;
    if (r->next != nullptr) r->next->prev = r->prev;
    if (head_ == r) head_ = r->next;
    r->prev = r->next = nullptr;
    r->registry = nullptr;
  }

  // Teardown: the loop is destroying the Sentinel (Close() or ~IOLoop). Destroys every
  // suspended task; one running now (the caller of Close() is inside it) is orphaned
  // and destroyed by Enter() when it next suspends. Deletes this registry.
  void Teardown();

 private:
  struct Sentinel {
    struct TearDown {
      void operator()(Registry* r) const { r->Teardown(); }
    };
    explicit Sentinel(Registry* r) : registry(r) {}
    void operator()() {}                           // Never due: its deadline is "never".
    std::unique_ptr<Registry, TearDown> registry;  // Torn down with the Sentinel.
  };

  static Mutex mu_;
  static absl::flat_hash_map<IOLoop*, Registry*>* registries_ ABSL_GUARDED_BY(mu_);

  IOLoop* const loop_;
  RootState* head_ = nullptr;
};

Mutex Registry::mu_;
absl::flat_hash_map<IOLoop*, Registry*>* Registry::registries_ = nullptr;

Registry& Registry::For(IOLoop& loop) {
  {
    MutexLock lock(mu_);
    if (registries_ == nullptr) registries_ = new absl::flat_hash_map<IOLoop*, Registry*>();
    auto it = registries_->find(&loop);
    if (it != registries_->end()) return *it->second;
  }
  auto* registry = new Registry(&loop);
  {
    MutexLock lock(mu_);
    (*registries_)[&loop] = registry;
  }
  NullContext none;  // The sentinel belongs to no task's context.
  loop.AddTimeout(absl::InfiniteDuration(), Sentinel(registry));
  return *registry;
}

void Registry::Teardown() {
  {
    MutexLock lock(mu_);
    registries_->erase(loop_);
  }
  while (head_ != nullptr) {
    RootState* r = head_;
    Unlink(r);
    if (r->running > 0) {
      r->orphaned = true;
      continue;
    }
    r->frame.destroy();
  }
  delete this;
}

namespace {

thread_local RootState* t_current_root = nullptr;

// Starter: the callback that runs a root's first step; owns the root until then.
struct Starter {
  struct DestroyFrame {
    void operator()(RootState* r) const { r->frame.destroy(); }
  };
  explicit Starter(RootState* r) : root(r) {}
  void operator()() {
    RootState* r = root.release();
    if (r->cancelled) {
      r->frame.destroy();
      return;
    }
    Registry::For(*r->loop).Link(r);
    r->started = true;
    Resume(r, r->frame);
  }
  std::unique_ptr<RootState, DestroyFrame> root;  // Destroyed unstarted if never run.
};

}  // namespace

RootState*& CurrentRoot() { return t_current_root; }

RootState::~RootState() {
  if (registry != nullptr) registry->Unlink(this);
  if (sync != nullptr) sync->destroyed = true;
}

void RootState::Finish() {
  if (done && !orphaned) {
    if (sync != nullptr) {
      sync->finished = true;
      sync->error = error;
      loop->Stop();
    } else if (error) {
      // Runs inside the context captured at Spawn() (see Enter), so the loop delivers
      // it there, else to HandleCallbackException().
      loop->AddCallback([error = error] { std::rethrow_exception(error); });
    }
  }
  frame.destroy();
}

void StartRoot(IOLoop& loop, RootState* root) {
  root->loop = &loop;
  root->context = StackContext::Capture();
  NullContext none;  // Enter() applies root->context; no need for the loop to wrap.
  loop.AddCallback(Starter(root));
}

void RunRootSync(IOLoop& loop, RootState* root, absl::Duration timeout, SyncStatus& status) {
  root->sync = &status;
  StartRoot(loop, root);
  bool timed_out = false;
  bool armed = false;
  TimeoutHandle timer;
  if (timeout != absl::InfiniteDuration()) {
    armed = true;
    NullContext none;
    timer = loop.AddTimeout(timeout, [&] {
      armed = false;
      timed_out = true;
      if (!status.destroyed) {
        if (root->started) {
          root->frame.destroy();
        } else {
          root->cancelled = true;
          root->sync = nullptr;
        }
      }
      loop.Stop();
    });
  }
  loop.Start();
  if (armed) loop.RemoveTimeout(timer);
  if (status.finished) {
    if (status.error) std::rethrow_exception(status.error);
    return;
  }
  if (timed_out) {
    throw TimeoutError(absl::StrCat("coro::RunSync: the task did not finish within ",
                                    absl::FormatDuration(timeout)));
  }
  if (!status.destroyed) {
    if (root->started) {
      root->frame.destroy();
    } else {
      root->cancelled = true;
      root->sync = nullptr;
    }
  }
  throw LoopStoppedError("coro::RunSync: the loop stopped before the task finished");
}

void TimerAwaiter::await_suspend(std::coroutine_handle<> h) {
  loop_ = &CurrentLoop("coro::Sleep");
  root_ = CurrentRoot();
  handle_to_resume_ = h;
  // Already due: a timeout would run in this iteration's timeout phase, before
  // callbacks queued earlier in this one; a queued callback keeps the order.
  if (absolute_ ? deadline_ <= loop_->Time() : delay_ <= absl::ZeroDuration()) {
    loop_->AddCallback(turn_.Arm(root_, h));
    return;
  }
  handle_ =
      absolute_ ? loop_->AddTimeout(deadline_, Fire{this}) : loop_->AddTimeout(delay_, Fire{this});
  pending_ = true;
}

void YieldAwaiter::await_suspend(std::coroutine_handle<> h) {
  IOLoop& loop = CurrentLoop("coro::Yield");
  loop.AddCallback(completion_.Arm(CurrentRoot(), h));
}

bool FdAwaiter::await_suspend(std::coroutine_handle<> h) {
  loop_ = &CurrentLoop("coro::WaitReadable/WaitWritable");
  root_ = CurrentRoot();
  handle_to_resume_ = h;
  absl::Status added = loop_->AddHandler(
      fd_,
      [this](int fd, EventMask events) {
        FdAwaiter* self = this;  // The handler outlives RemoveHandler() while it runs.
        self->pending_ = false;
        self->loop_->RemoveHandler(fd).IgnoreError();
        self->result_ = events;
        Resume(self->root_, self->handle_to_resume_);
      },
      events_);
  if (!added.ok()) {
    result_ = std::move(added);
    return false;
  }
  pending_ = true;
  return true;
}

}  // namespace coro_internal

void Spawn(IOLoop& loop, Task<> task) {
  IOLOOP_CHECK(task.Valid(), "coro::Spawn: empty Task");
  coro_internal::RootTask root = coro_internal::SpawnBody(std::move(task));
  coro_internal::StartRoot(loop, root.state);
}

}  // namespace ioloop::coro
