// IOStream: buffered, bounded, back-pressured reads and writes on a non-blocking socket.
//
// Tornado's iostream.IOStream on an ioloop::IOLoop. A stream owns one connected socket
// fd and turns readiness into completed operations:
//
//   stream->ReadUntil("\r\n", [&](absl::StatusOr<std::string> line) {
//     if (!line.ok()) return;                       // says why: EOF, reset, too long...
//     stream->Write(absl::StrCat("you said ", *line));
//   }, /*max_bytes=*/1024);
//
// Reads. One read is outstanding at a time; starting a second while one is pending is
// a check failure (a programming error, like Tornado's "Already reading"). Forms:
//   ReadUntil(delimiter, cb, max_bytes)   up to and including the delimiter;
//   ReadBytes(n, cb)                      exactly n bytes;
//   ReadBytes(n, cb, /*partial=*/true)    1..n bytes, as soon as any are there;
//   ReadBytes(n, on_chunk, done)          n bytes delivered as they arrive (streaming);
//   ReadUntilClose(cb)                    everything until the stream closes;
//   ReadUntilClose(on_chunk, done)        the same, streaming.
// Completions carry an absl::Status / absl::StatusOr. A read that buffered data
// satisfies completes with it, even after the stream closed (data that arrived is
// never lost to a close). A read the buffer cannot satisfy completes with an error
// when the stream closes, naming the cause, and always before the close callback.
//
// Memory is bounded per stream by Options: at most max_buffer_size bytes are read
// ahead, at most max_write_buffer_size bytes wait to be written. A read asks the
// kernel for at most read_chunk_size bytes per system call and stops reading once the
// pending read is satisfied: it never drains the socket into memory. While no read is
// pending, the stream reads at most one chunk ahead (to see EOF early) and then stops
// watching the socket: back-pressure to the peer through TCP, not an error. Limits are
// reported, never enforced by closing: a ReadUntil whose delimiter is not within
// max_bytes (or max_buffer_size) completes with kResourceExhausted and leaves the
// stream open with the data buffered, for the caller to decide (Close() it, usually).
// A Write that would queue more than max_write_buffer_size fails with
// kResourceExhausted and queues nothing. An idle stream (nothing buffered) holds no
// buffer memory.
//
// Writes. Write(data, cb) sends at once when nothing is queued (on the completion
// path, see "I/O paths": with the loop's next poll), queues the rest (an
// absl::Cord: an absl::Cord argument is queued without copying), and calls cb(OK) once
// every byte written so far, this call's included, reached the kernel. Each write's cb
// is called exactly once if and only if Write() returned OK: with OK when flushed,
// with the close reason if the stream closed first.
//
// Close ordering, whatever closes the stream (peer EOF, an error, Close()):
//   1. data already buffered goes to the pending read if it satisfies it;
//   2. a pending read it does not satisfy completes with the close reason;
//   3. on the peer's EOF, writes already queued are still flushed before the fd is
//      closed (an echo's last reply reaches a half-closed peer); on an error or Close()
//      they are dropped and their callbacks get the reason;
//   4. the fd is closed, pending write callbacks complete, and the close callback runs
//      last, exactly once.
// Close() itself is abrupt: queued writes are dropped. To close gracefully, call
// ShutdownWrite(), or Close() from the callback of the last Write().
//
// Callbacks are never called from inside the call that started the operation (no
// completion runs inside ReadX(), Write() or Close()): they run from the stream's I/O
// handler or from a zero-delay timeout on the loop. A callback may call anything on
// this stream or any other, including Close(), and may destroy this stream (the
// stream notices and touches nothing after). Each callback runs in the stack context
// (ioloop/stack_context.h) that was active when its operation started. An exception
// that leaves a callback (one no stack context handled) closes the stream with
// kInternal, as Tornado does, and then propagates to the loop.
//
// Ownership and lifetime: the stream owns its fd and closes it when it closes or is
// destroyed. Destroying a stream drops its pending callbacks without calling them.
// Destroy every stream before its loop is closed or destroyed. Callbacks must not
// destroy the stream from their own destructors.
//
// I/O paths. On a readiness backend (epoll, kqueue, poll, select) the stream watches its
// fd and makes the read(2) and send(2) calls itself. On a loop whose poller performs
// socket I/O (io_uring: IOLoop::completion_io() is not null) it instead keeps one
// multishot receive armed from construction to EOF, into buffers the loop's poller
// shares among all streams, and one send of the queued bytes while bytes are queued,
// all submitted in the loop's one system call per iteration. The receive takes only
// what the readiness path would read and is paused whenever that path would stop
// watching for reads (the read buffer full, or no read pending and something
// buffered): the same back-pressure, with the rest left in the kernel. Write() then never
// sends inside the call: the bytes are queued and sent with the next poll. Closing or
// destroying the stream cancels what is in flight (a send that had not reached the
// kernel yet is first tried once, non-blocking, as the readiness path's Write() would
// have done). Options::use_completions = false keeps a stream on the readiness path.
//
// Thread-safety: loop thread only, like Tornado's IOStream.

#ifndef IOLOOP_NET_IOSTREAM_H_
#define IOLOOP_NET_IOSTREAM_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ioloop/io_loop.h"
#include "ioloop/stack_context.h"
#include "net/internal/read_buffer.h"

namespace ioloop {

// IOStreamOptions bound a stream's memory (IOStream::Options).
struct IOStreamOptions {
  // The most bytes read ahead of what reads consumed. Default 4 MiB.
  size_t max_buffer_size = 4 << 20;
  // The most bytes queued for writing. Default 4 MiB.
  size_t max_write_buffer_size = 4 << 20;
  // The most bytes one read system call asks for. Default 64 KiB.
  size_t read_chunk_size = 64 << 10;
  // use_completions: on a loop whose poller does socket I/O itself (io_uring; see
  // IOLoop::completion_io()), let the kernel do this stream's reads and writes as
  // completions submitted with the loop's poll, instead of a read(2)/send(2) per
  // readiness event. Same API and semantics either way. false: readiness always.
  // Ignored (readiness) on every other backend and for fds that are not stream
  // sockets.
  bool use_completions = true;
};

class IOStream {
 public:
  using Options = IOStreamOptions;

  // ReadCallback receives the data a read returns, or why it could not.
  using ReadCallback = absl::AnyInvocable<void(absl::StatusOr<std::string> data)>;
  // StreamingCallback receives each chunk as it arrives; `chunk` points into the
  // stream's buffer and is valid only during the call.
  using StreamingCallback = absl::AnyInvocable<void(absl::string_view chunk)>;
  // DoneCallback ends a streaming read, and completes a Write().
  using DoneCallback = absl::AnyInvocable<void(absl::Status status)>;
  using WriteCallback = DoneCallback;
  // CloseCallback runs once the stream closed; Error() says why.
  using CloseCallback = absl::AnyInvocable<void()>;
  using ConnectCallback = absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<IOStream>>)>;

  // Stats: counters for tests, benchmarks and monitoring.
  struct Stats {
    uint64_t bytes_read = 0;     // From the socket.
    uint64_t bytes_written = 0;  // To the socket.
    // Bytes the stream copied in user space: into its read buffer, into std::string
    // results, into the write queue. A streaming read whose chunk is written straight
    // back copies none.
    uint64_t bytes_copied = 0;
    // read(2) system calls; on the completion path, receives armed or resumed.
    uint64_t read_calls = 0;
    // send(2)/sendmsg(2) system calls; on the completion path, sends submitted.
    uint64_t write_calls = 0;
  };

  // IOStream() takes ownership of `fd`, a connected stream socket (TCP or Unix), makes
  // it non-blocking and watches it on `loop`. If the loop cannot watch it (e.g. select
  // and an fd >= FD_SETSIZE), the stream starts closed with that error: reads fail
  // with it, Error() returns it.
  IOStream(IOLoop* loop, int fd, Options options);
  IOStream(IOLoop* loop, int fd) : IOStream(loop, fd, Options()) {}
  ~IOStream();
  IOStream(const IOStream&) = delete;
  IOStream& operator=(const IOStream&) = delete;

  // Connect() opens a TCP connection to `address` (numeric IPv4 "127.0.0.1" or IPv6
  // "::1" / "[::1]"; names are not resolved, since a resolver call would block the
  // loop: resolve first, off the loop) and `port`, and calls `cb` on `loop` with the
  // connected stream, or with an error: kInvalidArgument for a bad address or port,
  // kDeadlineExceeded after `timeout`, the errno otherwise (ECONNREFUSED ->
  // kUnavailable...). `cb` is never called from inside Connect(). It runs in the stack
  // context active at the call.
  static void Connect(IOLoop* loop, absl::string_view address, int port, ConnectCallback cb,
                      absl::Duration timeout = absl::Seconds(20), Options options = Options());

  // ReadUntil() completes with the bytes up to and including `delimiter`. If the
  // delimiter does not end within `max_bytes` (0: max_buffer_size), it completes with
  // kResourceExhausted as soon as that is certain, leaving the data buffered and the
  // stream open. An empty delimiter is kInvalidArgument.
  void ReadUntil(absl::string_view delimiter, ReadCallback cb, size_t max_bytes = 0);

  // ReadBytes() completes with exactly `n` bytes, or with `partial`, with between 1
  // and `n` bytes as soon as any are buffered (n = 0 completes with ""). `n` larger
  // than max_buffer_size without `partial` is kResourceExhausted.
  void ReadBytes(size_t n, ReadCallback cb, bool partial = false);

  // ReadBytes() streaming: `on_chunk` receives the next `n` bytes in pieces as they
  // arrive, then `done` gets OK; or `done` gets why the stream ended first.
  void ReadBytes(size_t n, StreamingCallback on_chunk, DoneCallback done);

  // ReadUntilClose() completes with everything up to the end of the stream: OK when the
  // peer closed (EOF) or Close() was called, with all buffered data; if it closed with
  // an error, with that error (the data stays buffered). More than max_buffer_size
  // before the close is kResourceExhausted.
  void ReadUntilClose(ReadCallback cb);

  // ReadUntilClose() streaming: every chunk to `on_chunk` as it arrives, then `done`
  // with OK on EOF or Close(), or with the error that closed the stream. No bound
  // applies beyond one chunk, since nothing accumulates.
  void ReadUntilClose(StreamingCallback on_chunk, DoneCallback done);

  // Write() sends or queues `data` and calls `cb` (if any) once it and everything
  // written before it reached the kernel. Errors, returned at once and then `cb` is
  // not called: kFailedPrecondition on a closed stream or after ShutdownWrite();
  // kResourceExhausted if the queue would exceed max_write_buffer_size (nothing is
  // queued). A socket error found while writing closes the stream; the write then
  // returned OK and `cb` gets the error.
  absl::Status Write(absl::string_view data);
  absl::Status Write(absl::string_view data, WriteCallback cb);
  absl::Status Write(absl::Cord data, WriteCallback cb = nullptr);

  // ShutdownWrite() half-closes: once the queue has drained, the peer sees EOF. Reads
  // go on; later writes fail with kFailedPrecondition. A no-op on a closed stream.
  void ShutdownWrite();

  // Close() closes the stream now: queued writes are dropped, the fd is closed, and the
  // completions of the close ordering above run later, on the loop (never inside
  // Close()). `reason` becomes Error() (default kCancelled, "closed by Close()"); a
  // non-OK reason counts as an error for ReadUntilClose. Idempotent.
  void Close(absl::Status reason = absl::OkStatus());

  // SetCloseCallback() sets what runs once the stream has closed, after every pending
  // read. Set on a stream that has already closed (and run its close step), it runs
  // soon, on the loop. Runs in the stack context active at this call.
  void SetCloseCallback(CloseCallback cb);

  bool Closed() const { return closed_; }
  // Reading(): a read is pending. Writing(): bytes are queued.
  bool Reading() const { return has_read_; }
  bool Writing() const { return QueuedBytes() > 0; }

  // SetNoDelay() sets TCP_NODELAY: the errno as a status for a socket that is not TCP
  // (kFailedPrecondition if the stream is closed).
  absl::Status SetNoDelay(bool no_delay);

  // UsesCompletions(): the stream's reads and writes are kernel completions (see "I/O
  // paths" above), not readiness-driven system calls.
  bool UsesCompletions() const { return io_ != nullptr; }

  // Error(): OK while the stream is open; once closed, why: kUnavailable "closed by
  // the peer (EOF)", kCancelled "closed by Close()", the socket's errno (ECONNRESET ->
  // kUnavailable, ...), kInternal after a callback threw, or the reason given to
  // Close().
  const absl::Status& Error() const { return error_; }

  int fd() const { return fd_; }
  size_t ReadBufferSize() const { return read_buffer_.size(); }
  size_t WriteBufferSize() const { return QueuedBytes(); }
  // BufferCapacity(): heap bytes the read buffer holds now (0 when idle).
  size_t BufferCapacity() const { return read_buffer_.capacity(); }
  Stats stats() const;
  IOLoop* loop() const { return loop_; }

 private:
  struct Frame;
  enum class ReadKind : uint8_t { kUntil, kBytes, kUntilClose };
  struct ReadRequest {
    ReadKind kind = ReadKind::kBytes;
    bool partial = false;
    bool streaming = false;
    std::string delimiter;
    size_t limit = 0;  // kUntil: max bytes; kBytes: bytes still wanted.
    ReadCallback on_data;
    // On the heap so that it stays put while it runs, even if the stream is destroyed
    // from inside it (the running frame then keeps it alive).
    std::unique_ptr<StreamingCallback> on_chunk;
    DoneCallback on_done;
    StackContext context;
  };
  struct PendingWrite {
    uint64_t end;  // Completes once this many bytes were flushed in all.
    WriteCallback callback;
    StackContext context;
  };

  void StartRead(ReadRequest&& request);
  void OnEvents(EventMask events);
  // ChunkFastPathReady(): a streaming read is pending with nothing buffered, in no
  // stack context, on an open stream: the next read(2)'s bytes can go straight to
  // on_chunk. (A chunk callback that threw is gone, but then the stream is closed.)
  bool ChunkFastPathReady() const {
    return has_read_ && read_.streaming && read_buffer_.empty() && !closed_ && !eof_ &&
           read_.context.empty();
  }
  void AfterRead(Frame& frame, ssize_t n, size_t want);
  void HandleEvents(Frame& frame, EventMask events);
  bool HandleRead(Frame& frame);
  void HandleWrite();
  void HandleErrorOnly();
  // DrainCompletions() runs every completion that is due; false if the stream was
  // destroyed meanwhile.
  bool DrainCompletions(Frame& frame);
  // Finish() settles the buffer and the watched events after callbacks ran; false if
  // the stream was destroyed.
  bool Finish(Frame& frame);
  // StepRead() runs the pending read if it is due: true if it ran a callback.
  bool StepRead(Frame& frame);
  bool StepReadSlow(Frame& frame);
  enum class Step { kIdle, kRan, kDestroyed };
  Step StepOthers(Frame& frame);
  bool CompleteData(Frame& frame, absl::StatusOr<std::string> result);
  bool CompleteDone(Frame& frame, absl::Status status);
  absl::Status UnsatisfiedError(absl::string_view what) const;
  void CloseNow(absl::Status reason, bool clean);
  void ScheduleCompletions();
  void RunDeferred();
  bool UpdateInterest();
  bool ChangeInterest(EventMask want);
  void OnCallbackThrew();
  template <typename Body>
  void InFrame(Body&& body);
  void Dispatch(EventMask events);
  size_t SendDirect(absl::string_view data);
  size_t SentBytes(ssize_t n);
  void WriteAfterSend(absl::string_view data, ssize_t n);
  absl::Status WriteWithoutCallback(absl::string_view data);
  void FlushQueue();
  // The completion path (io_ != nullptr).
  void UpdateOps();
  size_t RecvRoom() const;
  size_t SendCopied(absl::string_view data);
  size_t QueuedBytes() const { return write_queue_.size() + copied_.size(); }
  size_t OnRecv(int result, absl::string_view data);
  void OnSend(int result);
  void CancelOps();
  void SendUnsentOnce();

  IOLoop* const loop_;
  const int fd_;
  const Options options_;
  stream_internal::ReadBuffer read_buffer_;
  absl::Cord write_queue_;
  std::vector<PendingWrite> writes_;
  size_t writes_head_ = 0;
  uint64_t queued_end_ = 0;  // Bytes ever accepted by Write().
  uint64_t flushed_ = 0;     // Bytes ever handed to the kernel.
  ReadRequest read_;
  size_t scanned_ = 0;  // ReadUntil: bytes already searched for the delimiter.
  CloseCallback close_callback_;
  StackContext close_context_;
  absl::Status error_;
  Stats stats_;
  Frame* frames_ = nullptr;         // Innermost dispatch in progress, if any.
  CompletionIo* io_ = nullptr;      // Set: the completion path.
  CompletionIo::OpId recv_op_ = 0;  // The receive armed, if any.
  bool recv_paused_ = false;        // recv_op_ is paused: the read buffer was full.
  CompletionIo::OpId send_op_ = 0;  // The send in flight (of copied_, or write_queue_'s head).
  std::string copied_;  // The bytes of a SendCopied() send in flight (before write_queue_).
  TimeoutHandle deferred_;
  EventMask interest_ = kNone;
  bool has_read_ = false;
  bool registered_ = false;
  bool closed_ = false;
  bool clean_close_ = false;
  bool eof_ = false;
  bool shutdown_requested_ = false;
  bool write_shut_ = false;
  bool close_done_ = false;
  bool deferred_pending_ = false;
};

}  // namespace ioloop

#endif  // IOLOOP_NET_IOSTREAM_H_
