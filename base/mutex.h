// Mutex and CondVar: std::mutex and a condition variable with Clang thread-safety
// annotations.
//
// ABSL_GUARDED_BY on members is only checked when the lock type is annotated;
// std::mutex is not, and Debian's absl::Mutex is not built for ThreadSanitizer (it
// reports false races). So ioloop locks with this thin wrapper: TSan sees a
// std::mutex, and a clang build with -Wthread-safety (CI runs one) checks every
// ABSL_GUARDED_BY.
//
//   Mutex mu_;
//   std::vector<Callback> queue_ ABSL_GUARDED_BY(mu_);
//   { MutexLock lock(mu_); queue_.push_back(...); }

#ifndef IOLOOP_BASE_MUTEX_H_
#define IOLOOP_BASE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace ioloop {

// Mutex is a non-recursive exclusive lock. Thread-safe, of course; not copyable.
class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }
  // AssertHeld() tells the analysis the caller holds the lock (no run-time check).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  std::mutex mu_;
};

// MutexLock holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

// CondVar waits for a condition guarded by a Mutex (std::condition_variable_any
// underneath, so TSan sees standard primitives). Thread-safe.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // WaitFor() releases `mu`, waits until signalled, `timeout` passes or a spurious
  // wake-up, and takes `mu` again before returning. Callers re-check their condition.
  void WaitFor(Mutex& mu, std::chrono::nanoseconds timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    Unlocker unlocker{mu};
    cv_.wait_for(unlocker, timeout);
  }
  // Signal() wakes one waiter; SignalAll() wakes every waiter.
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  // The BasicLockable view of a Mutex the condition variable needs: it unlocks and
  // relocks a Mutex the caller holds, which the analysis cannot follow.
  struct Unlocker {
    Mutex& mu;
    void lock() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.Lock(); }
    void unlock() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu.Unlock(); }
  };
  std::condition_variable_any cv_;
};

}  // namespace ioloop

#endif  // IOLOOP_BASE_MUTEX_H_
