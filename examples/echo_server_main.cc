// echo_server: the ioloop demo. Echoes every byte back.
//
//   ./bazelw run //examples:echo_server -- --port=8888 [--host=127.0.0.1]
//   nc 127.0.0.1 8888
//
// Binds loopback unless --host says otherwise. Ctrl-C (SIGINT) or SIGTERM stops it.

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "examples/echo_server.h"
#include "ioloop/io_loop.h"

namespace {

ioloop::IOLoop* g_loop = nullptr;

void StopLoop() { g_loop->Stop(); }
void OnStopSignal(int) { g_loop->AddCallbackFromSignal(&StopLoop); }

bool ParseFlag(const char* arg, const char* name, std::string& value) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  value = arg + n + 1;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  ioloop::examples::EchoServerOptions options;
  options.port = 8888;
  for (int i = 1; i < argc; ++i) {
    std::string value;
    if (ParseFlag(argv[i], "--port", value)) {
      char* end = nullptr;
      const long port = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || port < 0 || port > 65535) {
        std::fprintf(stderr, "echo_server: --port wants 0..65535, got '%s'\n", value.c_str());
        return 2;
      }
      options.port = static_cast<int>(port);
    } else if (ParseFlag(argv[i], "--host", value)) {
      options.host = value;
    } else {
      std::fprintf(stderr, "usage: %s [--port=8888] [--host=127.0.0.1]\n", argv[0]);
      return 2;
    }
  }

  ioloop::IOLoop loop;
  g_loop = &loop;
  auto server = ioloop::examples::EchoServer::Listen(&loop, options);
  if (!server.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  struct sigaction action = {};
  action.sa_handler = &OnStopSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::printf("echo_server listening on %s:%d (Ctrl-C stops it)\n", options.host.c_str(),
              (*server)->port());
  std::fflush(stdout);
  loop.Start();
  std::printf("echo_server: stopped after %llu connections, %llu bytes echoed\n",
              static_cast<unsigned long long>((*server)->accepted()),
              static_cast<unsigned long long>((*server)->bytes_echoed()));
  return 0;
}
