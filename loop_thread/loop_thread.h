// LoopThread and LoopThreadPool: one IOLoop per thread, for using more than one core.
//
// An IOLoop runs on one thread. A program uses n cores the way nginx, Netty, folly and
// seastar do: n threads, each owning and running its own loop, and work (connections,
// requests) spread across them. LoopThread is one such thread; LoopThreadPool is n of
// them with a way to pick one (round-robin or least-loaded). net/multi_loop_server.h
// spreads a TCP server's connections across the loops of a pool.
//
//   LoopThreadPool pool(4);
//   if (absl::Status s = pool.Start(); !s.ok()) ...;   // four threads, each in Start()
//   pool.Next().AddCallback([] { ... });             // runs on that thread's loop
//   pool.thread(2).RunAndWait([&] { per_loop_state[2] = ...; });
//   ...
//   pool.Stop();                                      // every loop leaves Start()
//   pool.Join();                                      // every thread has exited
//
// Each loop is created on its own thread (IOLoop::Create with the defaults, or what
// Options::make_loop_options returns), runs there, and is closed there when it stops,
// so everything the loop destroys on Close() (pending callbacks, handlers, timeouts)
// is destroyed on its own thread. The IOLoop object itself lives until the LoopThread
// is destroyed, so pointers to it stay valid after Join(): objects bound to the loop
// (an IOStream, a TCPServer) may still be destroyed after Join() (their RemoveHandler
// on a closed loop fails quietly), though the tidy order is to destroy them on the
// loop thread first (RunAndWait), then Stop() and Join().
//
// Shutdown order of a server on a pool: stop accepting (MultiLoopTCPServer::Stop),
// tear down the per-loop state on each loop (RunAndWait), then Stop() and Join() the
// pool. LoopThreadPool::Stop() asks every loop to stop, in index order, without
// waiting; Join() then waits for each thread in index order. Neither order matters for
// correctness (the loops share nothing), it only makes shutdown deterministic.
//
// Why threads and not Tornado's fork_processes: see docs/net.md ("More than one
// core"). In short, loops in threads share one address space, so a server can hand a
// connection from one loop to another (handoff mode), share read-only state without
// copies, and be tested under ThreadSanitizer; processes isolate crashes, which a
// supervisor (systemd, Kubernetes) restarting the whole process does as well.

#ifndef IOLOOP_LOOP_THREAD_LOOP_THREAD_H_
#define IOLOOP_LOOP_THREAD_LOOP_THREAD_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "base/mutex.h"
#include "ioloop/io_loop.h"

namespace ioloop {

// LoopThread: a thread that owns and runs one IOLoop.
//
// Thread-safety: AddCallback(), RunAndWait(), Stop(), IsInLoopThread(), Load(),
// AddLoad() and loop() may be called from any thread (RunAndWait() on the loop's own
// thread runs inline). Start(), Join() and the destructor from one owning thread,
// never from the loop thread itself.
class LoopThread {
 public:
  struct Options {
    // Thread name as the kernel shows it (pthread_setname_np: at most 15 bytes, longer
    // names are cut). Empty: "ioloop".
    std::string name;
    // Called on the new thread to make the loop's options (a poller, a clock...).
    // Unset: IOLoop::Options{} (the build's default poller, RealClock()).
    absl::AnyInvocable<IOLoop::Options()> make_loop_options;
  };

  LoopThread();
  explicit LoopThread(Options options);
  // ~LoopThread() is Stop() then Join(), then destroys the loop.
  ~LoopThread();
  LoopThread(const LoopThread&) = delete;
  LoopThread& operator=(const LoopThread&) = delete;

  // Start() starts the thread, which creates its loop and runs Start() on it. Returns
  // once the loop exists and callbacks posted to it will run: OK, or the loop's
  // creation error (IOLoop::Create's status, e.g. out of fds), in which case the
  // thread has already exited. Calling it twice is a check failure.
  absl::Status Start();

  // loop() is the thread's loop: null before a successful Start(), then valid until
  // the LoopThread is destroyed (closed once the thread exits). Loop-thread-only
  // methods on it must be called on this thread (AddCallback / RunAndWait) while it
  // runs, or from the owning thread after Join().
  IOLoop* loop() const { return loop_ptr_.load(std::memory_order_acquire); }

  // AddCallback() queues `callback` on the loop (IOLoop::AddCallback). Returns true if
  // it was queued. Returns false (and destroys `callback` at once, on the calling
  // thread) before Start(), after Stop() and after the thread exited. A queued
  // callback runs on the loop thread, unless the loop stops first: then it is
  // destroyed without running, on the loop thread, when the loop closes. So a callback
  // that carries a resource (an accepted fd) should own it (close it in its
  // destructor). Counts toward Load() until it has run or been destroyed.
  bool AddCallback(Callback callback);

  // RunAndWait() runs `fn` on the loop thread and blocks until it has returned, then
  // returns OK. Called on the loop thread itself, it runs `fn` inline. Returns
  // FailedPrecondition, naming the thread, if `fn` could not run (not started,
  // stopped, or the loop stopped before reaching it; `fn` was then destroyed).
  // Use it to create and destroy per-loop state on the loop's own thread. It blocks:
  // two loop threads calling RunAndWait() on each other deadlock, so from a loop
  // thread prefer AddCallback().
  absl::Status RunAndWait(absl::AnyInvocable<void()> fn);

  // Stop() asks the loop to stop (IOLoop::Stop) and refuses further AddCallback().
  // Does not wait. Idempotent; a no-op before Start().
  void Stop();

  // Join() waits until the thread has exited (after Stop(), or after the loop was
  // stopped from inside). Idempotent; a no-op before Start(). Calling it from the loop
  // thread is a check failure (it would wait for itself).
  void Join();

  // IsInLoopThread() is true on this LoopThread's thread.
  bool IsInLoopThread() const;

  // Load(): callbacks posted through AddCallback() not yet run or destroyed, plus
  // whatever the application added with AddLoad() (open connections, say).
  // LoopThreadPool::LeastLoaded() picks by it. Both are relaxed atomics: a hint, not a
  // synchronisation.
  int64_t Load() const { return load_.load(std::memory_order_relaxed); }
  void AddLoad(int64_t delta) { load_.fetch_add(delta, std::memory_order_relaxed); }

  // name(): the thread's name as given in Options (before the kernel's 15-byte cut).
  const std::string& name() const { return name_; }

 private:
  void Run(std::promise<absl::Status>* started);

  const std::string name_;
  absl::AnyInvocable<IOLoop::Options()> make_loop_options_;
  std::thread thread_;    // Owning thread only.
  bool started_ = false;  // Owning thread only.
  std::atomic<std::thread::id> thread_id_{};
  std::atomic<int64_t> load_{0};

  // `accepting_` is true while the loop runs and may be posted to. The loop thread
  // clears it (under mu_) before closing the loop, so no AddCallback() or Stop() can
  // reach a closed loop (IOLoop::Close()'s rule).
  Mutex mu_;
  bool accepting_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<IOLoop> loop_;  // Set on the loop thread before Start() returns.
  std::atomic<IOLoop*> loop_ptr_{nullptr};
};

// LoopThreadPool: n LoopThreads, started, stopped and joined together.
//
// Thread-safety: Next(), LeastLoaded(), thread(), loop(), loops() and size() from any
// thread once Start() returned OK; Start(), Stop(), Join() and the destructor from the
// owning thread.
class LoopThreadPool {
 public:
  // LoopThreadPool(n) makes n threads (n >= 1, else a check failure), named
  // "<name_prefix>-<i>" ("ioloop-0", ...). Nothing runs before Start().
  explicit LoopThreadPool(int n, std::string name_prefix = "ioloop");
  // LoopThreadPool(n, make_options) gives each thread's loop the options
  // make_options(i) returns (called on thread i).
  LoopThreadPool(int n, absl::AnyInvocable<IOLoop::Options(int index)> make_options,
                 std::string name_prefix = "ioloop");
  ~LoopThreadPool();  // Stop() then Join().
  LoopThreadPool(const LoopThreadPool&) = delete;
  LoopThreadPool& operator=(const LoopThreadPool&) = delete;

  // Start() starts every thread, in index order, each running once this returns OK.
  // On the first failure it stops and joins those already started and returns that
  // thread's error.
  absl::Status Start();

  // Stop() asks every loop to stop, in index order 0..n-1, without waiting.
  // Join() waits for every thread, in index order 0..n-1. Both idempotent.
  void Stop();
  void Join();

  // size(): n. thread(i), loop(i): thread i and its loop (i < n). loops(): every
  // thread's loop, by index (null for a thread whose Start() failed or never ran).
  size_t size() const { return threads_.size(); }
  LoopThread& thread(size_t i) { return *threads_[i]; }
  IOLoop* loop(size_t i) const { return threads_[i]->loop(); }
  std::vector<IOLoop*> loops() const;

  // Next() picks threads round-robin: 0, 1, ..., n-1, 0, ... (an atomic counter, so
  // exact across calling threads). LeastLoaded() picks the thread with the smallest
  // Load(), the one after the last pick winning ties (so equal loads still rotate).
  LoopThread& Next();
  LoopThread& LeastLoaded();

 private:
  std::vector<std::unique_ptr<LoopThread>> threads_;
  std::atomic<uint64_t> next_{0};
};

}  // namespace ioloop

#endif  // IOLOOP_LOOP_THREAD_LOOP_THREAD_H_
