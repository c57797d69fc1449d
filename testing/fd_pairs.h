// Pipes and socket pairs for tests, made the same way on every POSIX platform.
//
// pipe2(), SOCK_NONBLOCK and SOCK_CLOEXEC are Linux and BSD extensions that macOS
// lacks; tests that need a connected pair of fds call these instead, so one test
// source compiles and behaves alike everywhere the library builds:
//
//   int fds[2];
//   ASSERT_TRUE(testing::MakePipe(fds).ok());         // fds[0] reads, fds[1] writes
//   ASSERT_TRUE(testing::MakeSocketPair(fds).ok());   // AF_UNIX, SOCK_STREAM
//
// Test-only: the flags are set after the fds exist (pipe() + fcntl()), so a fork+exec
// on another thread in between could inherit them; tests do not fork.

#ifndef IOLOOP_TESTING_FD_PAIRS_H_
#define IOLOOP_TESTING_FD_PAIRS_H_

#include "absl/status/status.h"

namespace ioloop::testing {

// FdMode: whether both ends of a new pair are O_NONBLOCK. Both are always
// close-on-exec.
enum class FdMode { kNonBlocking, kBlocking };

// MakePipe() fills fds[0] (read end) and fds[1] (write end) with a new pipe in `mode`.
// Thread-safe. The caller owns and closes both fds. Errors: the errno of pipe() or
// fcntl() as a status naming the call and fd; then no fd is left open.
absl::Status MakePipe(int fds[2], FdMode mode = FdMode::kNonBlocking);

// MakeSocketPair() fills fds with a connected AF_UNIX SOCK_STREAM pair in `mode`.
// Thread-safe. Ownership and errors as MakePipe().
absl::Status MakeSocketPair(int fds[2], FdMode mode = FdMode::kNonBlocking);

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTING_FD_PAIRS_H_
