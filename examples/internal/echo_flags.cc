#include "examples/internal/echo_flags.h"

#include <cstddef>
#include <string>

#include "absl/time/time.h"
#include "examples/internal/server_main.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 8888, "port to listen on (0: any free port)");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "drop a client that sends nothing for this long");
ABSL_FLAG(int, max_buffered_bytes, 64 * 1024, "bytes in flight per connection");

namespace ioloop::examples {

EchoServerOptions EchoServerOptionsFromFlags() {
  EchoServerOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  options.max_buffered_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_buffered_bytes));
  return options;
}

}  // namespace ioloop::examples
