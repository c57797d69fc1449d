// Internal: the state every Spawn()ed or RunSync() task carries at its root, and
// Enter(), through which every resumption of a task goes.
//
// Not part of the public API; coro/coro.h and coro/stream.h use it.

#ifndef IOLOOP_CORO_INTERNAL_ROOT_H_
#define IOLOOP_CORO_INTERNAL_ROOT_H_

#include <coroutine>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "ioloop/io_loop.h"
#include "ioloop/stack_context.h"

namespace ioloop::coro::coro_internal {

class Registry;

// What RunSync() learns about its root (lives on RunSync's stack).
struct SyncStatus {
  bool finished = false;   // The task ran to its end (value stored or error below).
  bool destroyed = false;  // Its frame is gone (finished, timed out or loop closed).
  std::exception_ptr error;
};

// RootState: lives in the root frame's promise (see coro.cc's RootTask). Loop thread
// only.
struct RootState {
  IOLoop* loop = nullptr;
  StackContext context;          // Captured at Spawn()/RunSync(); active on every resume.
  Registry* registry = nullptr;  // The loop's registry while linked into it.
  RootState* prev = nullptr;
  RootState* next = nullptr;
  std::coroutine_handle<> frame;  // The root coroutine itself.
  SyncStatus* sync = nullptr;     // RunSync's, or null for Spawn().
  std::exception_ptr error;       // What escaped the task.
  int running = 0;                // Enter() calls on the stack for this root.
  bool done = false;              // Reached its final suspend point.
  bool orphaned = false;          // Its loop was closed while it was running.
  bool started = false;           // Its Starter ran.
  bool cancelled = false;         // RunSync gave up on it before its Starter ran.

  ~RootState();
  // Finish: called once it is done or orphaned and no longer running: reports the
  // outcome and destroys the root frame (and so this state).
  void Finish();
};

// The root of the task running on this thread, if any (set by Enter()).
RootState*& CurrentRoot();

// CurrentLoop: the loop of the task calling it; a check failure outside a task.
inline IOLoop& CurrentLoop(const char* what) {
  RootState* root = CurrentRoot();
  IOLOOP_CHECK(root != nullptr, absl::StrCat(what,
                                             " awaited outside a task started by coro::Spawn() or "
                                             "coro::RunSync()"));
  return *root->loop;
}

// Enter runs `f` (which resumes the task or destroys part of it) as a step of the task
// rooted at `root`: inside the stack context captured at Spawn(), with CurrentRoot()
// set, and finishing the root afterwards if the step ended it. `root` may be null (a
// coroutine driven by hand): `f` then just runs.
template <typename F>
void Enter(RootState* root, F&& f) {
  if (root == nullptr) {
    f();
    return;
  }
  auto step = [root, &f] {
    RootState* saved = std::exchange(CurrentRoot(), root);
    ++root->running;
    f();
    --root->running;
    CurrentRoot() = saved;
    if (root->running == 0 && (root->done || root->orphaned)) root->Finish();
  };
  // A copy: the step may end the root, and the context with it.
  StackContext context = root->context;
  context.Run(step);
}

inline void Resume(RootState* root, std::coroutine_handle<> h) {
  Enter(root, [h] { h.resume(); });
}

}  // namespace ioloop::coro::coro_internal

#endif  // IOLOOP_CORO_INTERNAL_ROOT_H_
