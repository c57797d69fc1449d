// Awaitable forms of every IOStream read and write (net/iostream.h), and of Connect.
//
//   coro::Task<> Echo(std::unique_ptr<IOStream> stream) {
//     while (true) {
//       absl::StatusOr<std::string> line = co_await coro::ReadUntil(*stream, "\n", 4096);
//       if (!line.ok()) co_return;                      // EOF, reset, too long: says why
//       if (!(co_await coro::Write(*stream, *line)).ok()) co_return;
//     }
//   }
//
// Each awaitable starts the IOStream operation when awaited and resumes the task with
// what the stream's callback would have received: absl::StatusOr<std::string> for
// reads, absl::Status for writes and streaming reads, the new stream for Connect. The
// stream calls its callbacks from its I/O handler or from a loop timeout, never from
// inside the call that started the operation, so the task always resumes from a loop
// callback. The task resumes in the stack context active at its Spawn() (coro/coro.h).
//
// Rules of IOStream apply: one read outstanding per stream (awaiting a second read
// while one is pending, e.g. from another task, is a check failure); loop thread only.
// Arguments (delimiter, data) are used when the co_await starts; a temporary passed
// in the co_await expression is fine.
//
// Cancellation (the task is destroyed while it awaits: WithTimeout() expiry, RunSync()
// timeout, loop Close()):
//   - a pending read closes the stream with kCancelled: a stream's read state cannot
//     be rolled back (the bytes it consumed would be lost), so it is not left half-used;
//   - a pending write stays queued and is flushed; only its completion is ignored;
//   - a pending Connect goes on; the stream it yields is closed when it arrives.
// A task awaiting an operation on a stream that someone else destroys is never resumed
// (IOStream drops pending callbacks when destroyed); it stays suspended until it is
// destroyed (WithTimeout() bounds such waits).
//
// Allocation: an awaited read or write takes its completion block from the per-thread
// frame allocator, so a steady-state loop of reads and writes allocates nothing beyond
// what IOStream itself does (the result std::string, when longer than its inline
// capacity).

#ifndef IOLOOP_CORO_STREAM_H_
#define IOLOOP_CORO_STREAM_H_

#include <coroutine>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "coro/internal/completion.h"
#include "coro/internal/root.h"
#include "ioloop/io_loop.h"
#include "net/iostream.h"

namespace ioloop::coro {
namespace coro_internal {

// CloseForDestroyedReader() closes a stream whose pending read belongs to a task being
// destroyed: the read cannot be withdrawn, so the stream ends with kCancelled.
inline void CloseForDestroyedReader(IOStream& stream) {
  stream.Close(absl::CancelledError(
      absl::StrCat("IOStream fd ", stream.fd(), ": the task awaiting a read was destroyed")));
}

// ReadAwaiter: ReadUntil, ReadBytes, ReadUntilClose (whole-result forms).
class ReadAwaiter {
 public:
  enum class Kind { kUntil, kBytes, kPartial, kUntilClose };
  ReadAwaiter(IOStream& stream, Kind kind, absl::string_view delimiter, size_t n)
      : stream_(&stream), kind_(kind), delimiter_(delimiter), n_(n) {}
  ReadAwaiter(const ReadAwaiter&) = delete;
  ReadAwaiter& operator=(const ReadAwaiter&) = delete;
  ~ReadAwaiter() {
    if (completion_.Pending()) CloseForDestroyedReader(*stream_);
  }
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    auto cb = completion_.Arm(CurrentRoot(), h);
    switch (kind_) {
      case Kind::kUntil:
        stream_->ReadUntil(delimiter_, std::move(cb), n_);
        break;
      case Kind::kBytes:
        stream_->ReadBytes(n_, std::move(cb), /*partial=*/false);
        break;
      case Kind::kPartial:
        stream_->ReadBytes(n_, std::move(cb), /*partial=*/true);
        break;
      case Kind::kUntilClose:
        stream_->ReadUntilClose(std::move(cb));
        break;
    }
  }
  absl::StatusOr<std::string> await_resume() { return completion_.Take(); }

 private:
  IOStream* stream_;
  Kind kind_;
  std::string delimiter_;
  size_t n_;
  CompletionHolder<absl::StatusOr<std::string>> completion_;
};

// StreamingReadAwaiter: the streaming ReadBytes and ReadUntilClose.
class StreamingReadAwaiter {
 public:
  StreamingReadAwaiter(IOStream& stream, bool until_close, size_t n,
                       IOStream::StreamingCallback on_chunk)
      : stream_(&stream), until_close_(until_close), n_(n), on_chunk_(std::move(on_chunk)) {}
  StreamingReadAwaiter(const StreamingReadAwaiter&) = delete;
  StreamingReadAwaiter& operator=(const StreamingReadAwaiter&) = delete;
  ~StreamingReadAwaiter() {
    if (completion_.Pending()) CloseForDestroyedReader(*stream_);
  }
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    auto cb = completion_.Arm(CurrentRoot(), h);
    if (until_close_) {
      stream_->ReadUntilClose(std::move(on_chunk_), std::move(cb));
    } else {
      stream_->ReadBytes(n_, std::move(on_chunk_), std::move(cb));
    }
  }
  absl::Status await_resume() { return completion_.Take(); }

 private:
  IOStream* stream_;
  bool until_close_;
  size_t n_;
  IOStream::StreamingCallback on_chunk_;
  CompletionHolder<absl::Status> completion_;
};

// WriteAwaiter: Write (string_view or Cord).
class WriteAwaiter {
 public:
  WriteAwaiter(IOStream& stream, absl::string_view data) : stream_(&stream), view_(data) {}
  WriteAwaiter(IOStream& stream, absl::Cord data)
      : stream_(&stream), cord_(std::move(data)), is_cord_(true) {}
  WriteAwaiter(const WriteAwaiter&) = delete;
  WriteAwaiter& operator=(const WriteAwaiter&) = delete;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    auto cb = completion_.Arm(CurrentRoot(), h);
    absl::Status queued = is_cord_ ? stream_->Write(std::move(cord_), std::move(cb))
                                   : stream_->Write(view_, std::move(cb));
    if (queued.ok()) return true;
    refused_ = std::move(queued);  // The callback is never called: resume at once.
    return false;
  }
  absl::Status await_resume() {
    if (!refused_.ok()) return std::move(refused_);
    return completion_.Take();
  }

 private:
  IOStream* stream_;
  absl::string_view view_;
  absl::Cord cord_;
  bool is_cord_ = false;
  absl::Status refused_;
  CompletionHolder<absl::Status> completion_;
};

// ConnectAwaiter: IOStream::Connect.
class ConnectAwaiter {
 public:
  ConnectAwaiter(IOLoop& loop, absl::string_view address, int port, absl::Duration timeout,
                 IOStream::Options options)
      : loop_(&loop), address_(address), port_(port), timeout_(timeout), options_(options) {}
  ConnectAwaiter(const ConnectAwaiter&) = delete;
  ConnectAwaiter& operator=(const ConnectAwaiter&) = delete;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    IOStream::Connect(loop_, address_, port_, completion_.Arm(CurrentRoot(), h), timeout_,
                      options_);
  }
  absl::StatusOr<std::unique_ptr<IOStream>> await_resume() { return completion_.Take(); }

 private:
  IOLoop* loop_;
  std::string address_;
  int port_;
  absl::Duration timeout_;
  IOStream::Options options_;
  CompletionHolder<absl::StatusOr<std::unique_ptr<IOStream>>> completion_;
};

}  // namespace coro_internal

// ReadUntil: co_await gives the data up to and including `delimiter`, or why not
// (IOStream::ReadUntil; `max_bytes` 0 means the stream's max_buffer_size).
inline coro_internal::ReadAwaiter ReadUntil(IOStream& stream, absl::string_view delimiter,
                                            size_t max_bytes = 0) {
  return {stream, coro_internal::ReadAwaiter::Kind::kUntil, delimiter, max_bytes};
}

// ReadBytes: exactly `n` bytes, or with `partial` 1..n as soon as any are there
// (IOStream::ReadBytes).
inline coro_internal::ReadAwaiter ReadBytes(IOStream& stream, size_t n, bool partial = false) {
  return {stream,
          partial ? coro_internal::ReadAwaiter::Kind::kPartial
                  : coro_internal::ReadAwaiter::Kind::kBytes,
          absl::string_view(), n};
}

// ReadBytes, streaming: `on_chunk` gets the `n` bytes as they arrive (called from the
// stream's callbacks, not in the task); co_await gives the final status.
inline coro_internal::StreamingReadAwaiter ReadBytes(IOStream& stream, size_t n,
                                                     IOStream::StreamingCallback on_chunk) {
  return {stream, /*until_close=*/false, n, std::move(on_chunk)};
}

// ReadUntilClose: everything until the stream closes (IOStream::ReadUntilClose).
inline coro_internal::ReadAwaiter ReadUntilClose(IOStream& stream) {
  return {stream, coro_internal::ReadAwaiter::Kind::kUntilClose, absl::string_view(), 0};
}

// ReadUntilClose, streaming: chunks to `on_chunk`; co_await gives the final status.
inline coro_internal::StreamingReadAwaiter ReadUntilClose(IOStream& stream,
                                                          IOStream::StreamingCallback on_chunk) {
  return {stream, /*until_close=*/true, 0, std::move(on_chunk)};
}

// Write: queues `data` (IOStream::Write) and resumes once everything written so far is
// flushed to the kernel; co_await gives OK, the close reason, or Write()'s own refusal
// (e.g. kResourceExhausted over max_write_buffer_size), the latter without suspending.
inline coro_internal::WriteAwaiter Write(IOStream& stream, absl::string_view data) {
  return {stream, data};
}
inline coro_internal::WriteAwaiter Write(IOStream& stream, absl::Cord data) {
  return {stream, std::move(data)};
}

// Connect: IOStream::Connect as an awaitable; co_await gives the connected stream or
// why not (resolution, refusal, `timeout`).
inline coro_internal::ConnectAwaiter Connect(IOLoop& loop, absl::string_view address, int port,
                                             absl::Duration timeout = absl::Seconds(20),
                                             IOStream::Options options = IOStream::Options()) {
  return {loop, address, port, timeout, options};
}

}  // namespace ioloop::coro

#endif  // IOLOOP_CORO_STREAM_H_
