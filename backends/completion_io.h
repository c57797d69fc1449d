// CompletionIo: socket reads and writes done by the kernel, for pollers that can.
//
// A readiness poller tells the loop an fd is ready and the caller then makes the
// read(2) or write(2) itself: one system call per operation on top of the poll. A
// completion backend (io_uring) instead takes the operation itself: RecvMany() and
// Send() queue a request, the poller submits every queued request in the same system
// call that waits for events, and the loop runs finished work's callbacks after
// dispatching the ready fds of that poll. Poller::completion_io() returns this
// interface where the backend offers it, nullptr elsewhere; IOLoop::completion_io()
// hands it on to net/ (IOStream uses it when it is there).
//
//   CompletionIo::OpId op = io->RecvMany(fd, 64 << 10, [](int result, absl::string_view data) {
//     // result > 0: `data` arrived; return how much of it was taken.
//     // result <= 0: the receive ended (0 at EOF, or -errno).
//     return data.size();
//   });
//   ...
//   io->Cancel(op);  // the callback is destroyed, never called again
//
// Buffers: the poller owns every buffer an operation uses, from RecvMany()/Send() until
// the kernel has posted the operation's final completion, whatever happens to the
// caller meanwhile. Receives land in a pool of buffers shared by every socket (on
// io_uring, a provided-buffer ring), so a socket that waits for data holds no buffer;
// Send() takes its bytes as an absl::Cord (sharing its chunks, not copying them). A
// caller can cancel and free itself at any time without the kernel ever writing to,
// or reading from, its memory.
//
// Cancellation: Cancel(op) destroys the operation's callback (at once, or as soon as
// it returns if it is the one running); it is never called again, even for work that
// already finished and waits to run. The kernel is asked to stop the operation, and its
// buffers are freed only once the kernel has let go of them. A cancelled operation that
// had reached the kernel keeps the socket's file open until its final completion:
// Cancel() submits the cancellation at once so that a close(2) right after it really
// closes the file (the peer sees the FIN), and operations carry unique ids, so a
// completion for an old operation never reaches a newer user of a reused fd number.
//
// Thread-safety: the poller's thread only (the loop's), like the Poller itself.
// Callbacks run on that thread from RunCompleted(); they may call RecvMany(), Send(),
// Resume() and Cancel() (new kernel work is submitted by the next Poll()), and may
// destroy what they capture after cancelling their operation. Their destructors must
// not call into this interface.
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
  // RecvManyCallback gets each run of bytes received (result > 0; `data`, valid only
  // during the call) and returns how many of them it took (at most data.size()); taking
  // fewer pauses the receive (see RecvMany()). A last call with result <= 0 ends the
  // operation: 0 at the peer's EOF, or a negative errno; its return value is ignored.
  using RecvManyCallback = absl::AnyInvocable<size_t(int result, absl::string_view data)>;
  // SendCallback gets how many bytes the kernel took (possibly fewer than given), or a
  // negative errno (-ECANCELED if the backend had to abandon the operation without
  // being asked, e.g. when it rebuilt its ring: nothing was sent, try again).
  using SendCallback = absl::AnyInvocable<void(int result)>;
  // Runner runs one callback; the loop passes one that catches exceptions.
  using Runner = absl::FunctionRef<void(absl::FunctionRef<void()>)>;

  // RecvMany() starts a receive from the socket `fd` (max_bytes > 0) that stays armed:
  // every run of bytes that arrives goes to `done`, in order, until the peer's EOF, an
  // error, or Cancel(). The kernel is armed for about `max_bytes` at a time (it may take
  // up to one pool buffer more: it stops at the buffer that reaches the limit), and the
  // receive re-arms by itself for as long as it is not paused. Never calls `done`
  // inside the call.
  //
  // Back-pressure: when `done` takes fewer bytes than it was given, the operation
  // pauses. The kernel is asked to stop receiving for it; the bytes not taken, and any
  // the kernel had already received, wait in the poller (so at most one arming's worth:
  // the rest stays in the socket) until Resume(op), after which they come first. An EOF
  // or error seen meanwhile is reported after them.
  virtual OpId RecvMany(int fd, size_t max_bytes, RecvManyCallback done) = 0;

  // Pause() pauses the receive `op` as if its callback had taken fewer bytes than it
  // was given (a no-op if it is paused already, or is not a RecvMany()): nothing more
  // reaches the callback, bytes or end, until Resume(op).
  virtual void Pause(OpId op) = 0;

  // Resume() ends a pause of `op` (a no-op if it is not paused): what waits is handed
  // to its callback by the next RunCompleted(), and receiving starts again with the
  // next Poll(). Called from the operation's own callback, it also cancels the pause
  // that taking fewer bytes would cause: the rest is offered again at once.
  virtual void Resume(OpId op) = 0;

  // Send() queues a send of `data` (not empty; as much of it as the kernel takes in one
  // go, without SIGPIPE) to the socket `fd`. Never calls `done` inside the call.
  virtual OpId Send(int fd, absl::Cord data, SendCallback done) = 0;

  // SendCopy() is Send() for a few bytes (1 to kMaxSendCopyBytes): it copies them into
  // the operation's own storage, which the poller reuses, instead of holding a Cord.
  static constexpr size_t kMaxSendCopyBytes = 512;
  virtual OpId SendCopy(int fd, absl::string_view data, SendCallback done) = 0;

  // Cancel() cancels the operation `op` (a no-op for 0, or one that finished and ran).
  // For a Send(), returns true if none of it happened: the operation had not reached
  // the kernel yet, so no byte was sent; a RecvMany() always gives false. False otherwise (it may
  // have partly or wholly happened, or may still complete in the kernel, unreported; bytes received
  // and not yet handed on are dropped).
  virtual bool Cancel(OpId op) = 0;

  // RunCompleted() runs, through `run`, the callbacks for what finished or arrived by
  // the last Poll(), in completion order, skipping operations cancelled meanwhile; work
  // they start waits for the next Poll(). Returns how many callbacks ran. The loop
  // calls it after each poll.
  virtual size_t RunCompleted(Runner run) = 0;

 protected:
  ~CompletionIo() = default;
};

}  // namespace ioloop

#endif  // IOLOOP_BACKENDS_COMPLETION_IO_H_
