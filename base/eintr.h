// RetryOnEintr(): repeat a system call that a signal interrupted.
//
// Chromium's HANDLE_EINTR as a function template: calls `call` until it returns
// something other than -1 with errno EINTR, and returns that result.
//
//   const ssize_t n = RetryOnEintr([&] { return write(fd, data, size); });
//
// Only for calls that are safe to restart as they are (read, write, accept, ...); not
// for close(), whose descriptor is gone after EINTR on Linux, nor for waits with a
// timeout that must shrink on restart (poll, epoll_wait: the loop treats their EINTR
// as an empty wait instead). Async-signal-safe if `call` is.

#ifndef IOLOOP_BASE_EINTR_H_
#define IOLOOP_BASE_EINTR_H_

#include <cerrno>

namespace ioloop {

template <typename Call>
auto RetryOnEintr(Call call) {
  auto result = call();
  while (result == -1 && errno == EINTR) result = call();
  return result;
}

}  // namespace ioloop

#endif  // IOLOOP_BASE_EINTR_H_
