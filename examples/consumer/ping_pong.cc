// A timer and a socketpair ping-pong on @ioloop//ioloop.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "ioloop/io_loop.h"

int main() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return 1;
  ioloop::IOLoop loop;
  int volleys = 0;
  auto hit = [&](int fd, ioloop::EventMask) {
    char ball;
    if (read(fd, &ball, 1) != 1) return;
    if (++volleys == 10000) return loop.Stop();
    if (write(fd, &ball, 1) != 1) loop.Stop();
  };
  if (!loop.AddHandler(fds[0], hit, ioloop::kRead).ok() ||
      !loop.AddHandler(fds[1], hit, ioloop::kRead).ok()) {
    return 1;
  }
  bool timer_fired = false;
  loop.AddTimeout(absl::Milliseconds(1), [&] {
    timer_fired = true;
    if (write(fds[0], "o", 1) != 1) loop.Stop();
  });
  loop.Start();
  std::printf("%d volleys after the timer (%s)\n", volleys, timer_fired ? "fired" : "never fired");
  loop.Close(/*all_fds=*/true).IgnoreError();
  return volleys == 10000 && timer_fired ? 0 : 1;
}
