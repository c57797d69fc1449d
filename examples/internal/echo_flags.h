// The flags echo_server and coro_echo_server share (--host, --port, --idle_timeout,
// --max_buffered_bytes), defined once here. Private to //examples.

#ifndef IOLOOP_EXAMPLES_INTERNAL_ECHO_FLAGS_H_
#define IOLOOP_EXAMPLES_INTERNAL_ECHO_FLAGS_H_

#include "examples/echo_server.h"

namespace ioloop::examples {

// EchoServerOptionsFromFlags() returns the options those flags ask for. Call it after
// absl::ParseCommandLine(). Thread-compatible.
EchoServerOptions EchoServerOptionsFromFlags();

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_INTERNAL_ECHO_FLAGS_H_
