// What the example servers' main() functions share: Abseil's flag headers (included
// here once, with the one warning they raise under -fsanitize=thread silenced), a
// SIGINT/SIGTERM handler that stops the loop, and the "listening on" and error lines
// that examples/demo_test.sh and the README's quick start read. Private to //examples.
//
//   int main(int argc, char** argv) {
//     absl::ParseCommandLine(argc, argv);
//     ioloop::IOLoop loop;
//     auto server = MyServer::Listen(&loop, options);
//     if (!server.ok()) return ReportError("my_server", server.status());
//     ServeUntilStopSignal(loop, "my_server", options.host, (*server)->port());
//   }

#ifndef IOLOOP_EXAMPLES_INTERNAL_SERVER_MAIN_H_
#define IOLOOP_EXAMPLES_INTERNAL_SERVER_MAIN_H_

// Abseil's flag headers use std::atomic_thread_fence, which g++ flags under
// -fsanitize=thread (-Wtsan); the flags are parsed once, before any thread exists.
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic pop
#endif
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ioloop/io_loop.h"

namespace ioloop::examples {

// ReportError() prints "<program>: <status>" to stderr and returns 1, the exit code
// for main() to return. Thread-compatible.
int ReportError(absl::string_view program, const absl::Status& status);

// PrintListening() prints "<program> listening on <host>:<port><detail> (Ctrl-C stops
// it)" to stdout and flushes it: the line a script waits for before connecting.
// Thread-compatible.
void PrintListening(absl::string_view program, absl::string_view host, int port,
                    absl::string_view detail = "");

// ServeUntilStopSignal() makes SIGINT and SIGTERM stop `loop` (the handler only queues
// loop.Stop() with AddCallbackFromSignal()), prints the listening line, and runs
// loop.Start() on the calling thread until it returns. Call it once per process, from
// the thread that owns `loop`; the handlers stay installed afterwards and refer to
// `loop`, so no stop signal may arrive after `loop` is destroyed (main() returns
// right after).
void ServeUntilStopSignal(IOLoop& loop, absl::string_view program, absl::string_view host,
                          int port);

}  // namespace ioloop::examples

#endif  // IOLOOP_EXAMPLES_INTERNAL_SERVER_MAIN_H_
