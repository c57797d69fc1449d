// CompletionIo: socket reads and writes done by the kernel, for pollers that can.
//
// A readiness poller tells the loop an fd is ready and the caller then makes the
// read(2) or write(2) itself: one system call per operation on top of the poll. A
// completion backend (io_uring) instead takes the operation itself: Recv() and Send()
// queue a request, the poller submits every queued request in the same system call
// that waits for events, and the loop runs each finished request's callback after
// dispatching the ready fds of that poll. Poller::completion_io() returns this
// interface where the backend offers it, nullptr elsewhere; IOLoop::completion_io()
// hands it on to net/ (IOStream uses it when it is there).
//
//   CompletionIo::OpId op = io->Recv(fd, 4096, [](int result, absl::string_view data) {
//     // result: bytes received (data), 0 at EOF, or -errno.
//   });
//   ...
//   io->Cancel(op);  // the callback is destroyed, never called
//
// Buffers: the poller owns every buffer an operation uses, from Recv()/Send() until
// the kernel has posted the operation's final completion, whatever happens to the
// caller meanwhile: a receive lands in a buffer of the poller's, and Send() takes its
// bytes as an absl::Cord (sharing its chunks, not copying them). A caller can cancel
// and free itself at any time without the kernel ever writing to, or reading from,
// its memory.
//
// Cancellation: Cancel(op) destroys the operation's callback at once (it is never
// called, even if the operation already finished and its callback is waiting to run)
// and asks the kernel to stop the operation; its buffers are freed only once the
// kernel has let go of them. A cancelled operation that had reached the kernel keeps
// the socket's file open until its final completion: Cancel() submits the
// cancellation at once so that a close(2) right after it really closes the file (the
// peer sees the FIN), and operations carry unique ids, so a completion for an old
// operation never reaches a newer user of a reused fd number.
//
// Thread-safety: the poller's thread only (the loop's), like the Poller itself.
// Callbacks run on that thread from RunCompleted(); they may call Recv(), Send() and
// Cancel() (new operations are submitted by the next Poll()), and may destroy what
// they capture. Their destructors must not call into this interface.
//
// Lifetime: valid as long as the poller. Destroying the poller cancels every
// operation, waits for the kernel to let go of their buffers, and destroys the
// callbacks of operations still pending without calling them.

#ifndef IOLOOP_BACKENDS_COMPLETION_IO_H_
#define IOLOOP_BACKENDS_COMPLETION_IO_H_

#include <cstddef>
#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace ioloop {

class CompletionIo {
 public:
  // OpId names an operation for Cancel(). 0 is never an operation's id.
  using OpId = uint64_t;
  // RecvCallback gets the bytes received (`data`, valid only during the call), 0 at
  // the peer's EOF, or a negative errno (-ECANCELED if the backend had to abandon the
  // operation without being asked, e.g. when it rebuilt its ring: try again).
  using RecvCallback = absl::AnyInvocable<void(int result, absl::string_view data)>;
  // SendCallback gets how many bytes the kernel took (possibly fewer than given), or a
  // negative errno (-ECANCELED as above: nothing was sent).
  using SendCallback = absl::AnyInvocable<void(int result)>;
  // Runner runs one callback; the loop passes one that catches exceptions.
  using Runner = absl::FunctionRef<void(absl::FunctionRef<void()>)>;

  // Recv() queues a receive of at most `max_bytes` (> 0) from the socket `fd`. Never
  // calls `done` inside the call.
  virtual OpId Recv(int fd, size_t max_bytes, RecvCallback done) = 0;

  // Send() queues a send of `data` (not empty; as much of it as the kernel takes in one
  // go, without SIGPIPE) to the socket `fd`. Never calls `done` inside the call.
  virtual OpId Send(int fd, absl::Cord data, SendCallback done) = 0;

  // Cancel() cancels the operation `op` (a no-op for 0, or one that finished and ran).
  // Returns true if none of it happened: the operation had not reached the kernel yet,
  // so no byte was sent or received. False otherwise (it may have partly or wholly
  // happened, or may still complete in the kernel, unreported).
  virtual bool Cancel(OpId op) = 0;

  // RunCompleted() runs, through `run`, the callbacks of the operations that finished
  // by the last Poll(), in completion order, skipping any cancelled meanwhile; work
  // they start waits for the next Poll(). Returns how many ran. The loop calls it after
  // each poll.
  virtual size_t RunCompleted(Runner run) = 0;

 protected:
  ~CompletionIo() = default;
};

}  // namespace ioloop

#endif  // IOLOOP_BACKENDS_COMPLETION_IO_H_
