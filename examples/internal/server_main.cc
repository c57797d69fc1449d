#include "examples/internal/server_main.h"

#include <signal.h>

#include <cstdio>
#include <string>

namespace ioloop::examples {
namespace {

IOLoop* g_loop = nullptr;
void StopLoop() { g_loop->Stop(); }
void OnStopSignal(int) { g_loop->AddCallbackFromSignal(&StopLoop); }

}  // namespace

int ReportError(absl::string_view program, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", std::string(program).c_str(), status.ToString().c_str());
  return 1;
}

void PrintListening(absl::string_view program, absl::string_view host, int port,
                    absl::string_view detail) {
  std::printf("%s listening on %s:%d%s (Ctrl-C stops it)\n", std::string(program).c_str(),
              std::string(host).c_str(), port, std::string(detail).c_str());
  std::fflush(stdout);
}

void ServeUntilStopSignal(IOLoop& loop, absl::string_view program, absl::string_view host,
                          int port) {
  g_loop = &loop;
  struct sigaction action = {};
  action.sa_handler = &OnStopSignal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  PrintListening(program, host, port);
  loop.Start();
}

}  // namespace ioloop::examples
