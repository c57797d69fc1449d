#include "net/iostream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/check.h"
#include "base/eintr.h"
#include "base/errno_status.h"

namespace ioloop {
namespace {

#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_NOSIGNAL;  // EPIPE as an error, not a SIGPIPE.
#else
constexpr int kSendFlags = 0;  // SO_NOSIGPIPE is set on the socket instead.
#endif

// Reads per readiness event while the pending read still wants data: bounded so one
// busy stream cannot starve the others on the loop.
constexpr int kMaxReadsPerEvent = 16;
// The most iovecs one sendmsg() takes from the write queue.
constexpr int kMaxIovecs = 64;

// Run() calls `f` in `context` (directly when it is empty, the common case).
template <typename F>
void RunIn(const StackContext& context, F&& f) {
  if (context.empty()) {
    f();
  } else {
    context.Run(f);
  }
}

std::string Printable(absl::string_view bytes) {
  std::string out;
  for (char c : bytes) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      out += absl::StrFormat("\\x%02x", static_cast<unsigned char>(c));
    }
  }
  return out;
}

}  // namespace

// Frame marks a dispatch in progress on the stream's stack: callbacks that run inside
// it need no deferral, and a stream destroyed inside one tells every frame so.
struct IOStream::Frame {
  explicit Frame(IOStream* s) : stream(s), outer(s->frames_) { s->frames_ = this; }
  ~Frame() {
    if (!destroyed) stream->frames_ = outer;
  }
  Frame(const Frame&) = delete;
  Frame& operator=(const Frame&) = delete;

  IOStream* const stream;
  Frame* const outer;
  bool destroyed = false;
  // A streaming callback running when the stream was destroyed, kept until it returns.
  std::unique_ptr<StreamingCallback> keep_alive;
};

IOStream::IOStream(IOLoop* loop, int fd, Options options)
    : loop_(loop), fd_(fd), options_(options) {
  IOLOOP_CHECK(loop != nullptr, "IOStream: null loop");
  IOLOOP_CHECK(options_.read_chunk_size > 0 && options_.max_buffer_size > 0,
               "IOStream: read_chunk_size and max_buffer_size must be positive");
  const int flags = fcntl(fd_, F_GETFL);
  if (flags < 0) {
    CloseNow(ErrnoStatus(errno, "IOStream: fcntl(F_GETFL)", fd_), /*clean=*/false);
    return;
  }
  if ((flags & O_NONBLOCK) == 0 && fcntl(fd_, F_SETFL, flags | O_NONBLOCK) < 0) {
    CloseNow(ErrnoStatus(errno, "IOStream: fcntl(O_NONBLOCK)", fd_), /*clean=*/false);
    return;
  }
#if !defined(MSG_NOSIGNAL) && defined(SO_NOSIGPIPE)
  const int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  if (options_.use_completions) {
    int type = 0;
    socklen_t len = sizeof type;
    CompletionIo* io = loop_->completion_io();
    if (io != nullptr && getsockopt(fd_, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
        type == SOCK_STREAM) {
      io_ = io;
    }
  }
  UpdateInterest();  // Watch for reads while idle, to see the peer close.
}

IOStream::~IOStream() {
  for (Frame* f = frames_; f != nullptr; f = f->outer) f->destroyed = true;
  if (frames_ != nullptr && has_read_ && read_.on_chunk != nullptr) {
    frames_->keep_alive = std::move(read_.on_chunk);  // It may be the one running.
  }
  if (deferred_pending_) loop_->RemoveTimeout(deferred_);
  if (!closed_) {
    if (registered_) loop_->RemoveHandler(fd_).IgnoreError();
    if (io_ != nullptr) CancelOps();
    close(fd_);
  }
}

IOStream::Stats IOStream::stats() const {
  Stats s = stats_;
  s.bytes_copied += read_buffer_.bytes_copied();
  return s;
}

// --- Reads --------------------------------------------------------------------------

void IOStream::ReadUntil(absl::string_view delimiter, ReadCallback cb, size_t max_bytes) {
  ReadRequest r;
  r.kind = ReadKind::kUntil;
  r.delimiter = std::string(delimiter);
  r.limit =
      max_bytes == 0 ? options_.max_buffer_size : std::min(max_bytes, options_.max_buffer_size);
  r.on_data = std::move(cb);
  StartRead(std::move(r));
}

void IOStream::ReadBytes(size_t n, ReadCallback cb, bool partial) {
  ReadRequest r;
  r.kind = ReadKind::kBytes;
  r.limit = n;
  r.partial = partial;
  r.on_data = std::move(cb);
  StartRead(std::move(r));
}

void IOStream::ReadBytes(size_t n, StreamingCallback on_chunk, DoneCallback done) {
  ReadRequest r;
  r.kind = ReadKind::kBytes;
  r.limit = n;
  r.streaming = true;
  r.on_chunk = std::make_unique<StreamingCallback>(std::move(on_chunk));
  r.on_done = std::move(done);
  StartRead(std::move(r));
}

void IOStream::ReadUntilClose(ReadCallback cb) {
  ReadRequest r;
  r.kind = ReadKind::kUntilClose;
  r.on_data = std::move(cb);
  StartRead(std::move(r));
}

void IOStream::ReadUntilClose(StreamingCallback on_chunk, DoneCallback done) {
  ReadRequest r;
  r.kind = ReadKind::kUntilClose;
  r.streaming = true;
  r.on_chunk = std::make_unique<StreamingCallback>(std::move(on_chunk));
  r.on_done = std::move(done);
  StartRead(std::move(r));
}

void IOStream::StartRead(ReadRequest&& request) {
  IOLOOP_CHECK(!has_read_, absl::StrCat("IOStream fd ", fd_,
                                        ": a read was started while another is pending "
                                        "(one read at a time)"));
  IOLOOP_CHECK(request.streaming ? (*request.on_chunk && request.on_done) : bool(request.on_data),
               absl::StrCat("IOStream fd ", fd_, ": a read needs non-null callbacks"));
  request.context = StackContext::Capture();
  read_ = std::move(request);
  has_read_ = true;
  scanned_ = 0;
  if (frames_ != nullptr) return;  // The dispatch in progress handles it.
  if (!read_buffer_.empty() || closed_ || eof_ ||
      (read_.kind == ReadKind::kBytes && read_.limit == 0) ||
      (read_.kind == ReadKind::kUntil && read_.delimiter.empty()) ||
      (read_.kind == ReadKind::kBytes && !read_.partial && !read_.streaming &&
       read_.limit > options_.max_buffer_size)) {
    ScheduleCompletions();  // Possibly due now: never complete inside the call.
  } else {
    UpdateInterest();
  }
}

absl::Status IOStream::UnsatisfiedError(absl::string_view what) const {
  const absl::Status& why =
      error_.ok()
          ? absl::UnavailableError(absl::StrCat("IOStream fd ", fd_, ": closed by the peer (EOF)"))
          : error_;
  return absl::Status(why.code(), absl::StrCat(what, " unsatisfied with ", read_buffer_.size(),
                                               " bytes buffered: ", why.message()));
}

bool IOStream::CompleteData(Frame& frame, absl::StatusOr<std::string> result) {
  ReadCallback cb = std::move(read_.on_data);
  StackContext context = std::move(read_.context);
  has_read_ = false;
  RunIn(context, [&] { cb(std::move(result)); });
  return !frame.destroyed;
}

bool IOStream::CompleteDone(Frame& frame, absl::Status status) {
  DoneCallback cb = std::move(read_.on_done);
  StackContext context = std::move(read_.context);
  std::unique_ptr<StreamingCallback> on_chunk = std::move(read_.on_chunk);
  has_read_ = false;
  RunIn(context, [&] { cb(std::move(status)); });
  return !frame.destroyed;
}

bool IOStream::StepRead(Frame& frame) {
  ReadRequest& r = read_;
  const size_t buffered = read_buffer_.size();
  if (r.streaming && r.on_chunk != nullptr) {
    if (buffered > 0 && (r.kind == ReadKind::kUntilClose || r.limit > buffered)) {
      // A chunk that does not finish the read: the streaming hot path.
      const absl::string_view chunk = read_buffer_.View();
      read_buffer_.Consume(buffered);  // The view stays valid until Settle().
      if (r.kind == ReadKind::kBytes) r.limit -= buffered;
      StreamingCallback& on_chunk = *r.on_chunk;
      if (r.context.empty()) {
        on_chunk(chunk);
      } else {
        StackContext context = r.context;
        RunIn(context, [&] { on_chunk(chunk); });
      }
      return true;
    }
    if (buffered == 0 && !closed_ && !eof_ && (r.kind == ReadKind::kUntilClose || r.limit > 0)) {
      return false;  // Waiting for data.
    }
  }
  return StepReadSlow(frame);
}

bool IOStream::StepReadSlow(Frame& frame) {
  const size_t buffered = read_buffer_.size();
  const bool ended = closed_ || eof_;
  ReadRequest& r = read_;

  if (r.streaming) {
    const bool bytes = r.kind == ReadKind::kBytes;
    if (!r.on_chunk) {
      // A previous chunk callback threw (and closed the stream).
      CompleteDone(frame, error_);
      return true;
    }
    if (buffered > 0 && (!bytes || r.limit > 0)) {
      const size_t take = bytes ? std::min(r.limit, buffered) : buffered;
      const absl::string_view chunk = read_buffer_.View().substr(0, take);
      read_buffer_.Consume(take);  // The view stays valid until Settle().
      if (bytes) r.limit -= take;
      StreamingCallback& on_chunk = *r.on_chunk;
      if (r.context.empty()) {
        on_chunk(chunk);
      } else {
        StackContext context = r.context;
        RunIn(context, [&] { on_chunk(chunk); });
      }
      if (frame.destroyed) return true;
      if (bytes && read_.limit == 0) CompleteDone(frame, absl::OkStatus());
      return true;
    }
    if (bytes && r.limit == 0) {
      CompleteDone(frame, absl::OkStatus());
    } else if (!ended) {
      return false;
    } else if (!bytes && (clean_close_ || !closed_)) {
      CompleteDone(frame, absl::OkStatus());
    } else {
      CompleteDone(frame,
                   UnsatisfiedError(bytes ? absl::StrCat("IOStream::ReadBytes(", r.limit, " more)")
                                          : std::string("IOStream::ReadUntilClose")));
    }
    return true;
  }

  switch (r.kind) {
    case ReadKind::kBytes: {
      if (buffered >= r.limit || (r.partial && buffered > 0)) {
        const size_t take = std::min(r.limit, buffered);
        std::string out(read_buffer_.View().substr(0, take));
        read_buffer_.Consume(take);
        stats_.bytes_copied += take;
        CompleteData(frame, std::move(out));
        return true;
      }
      if (!r.partial && r.limit > options_.max_buffer_size) {
        CompleteData(frame, absl::ResourceExhaustedError(absl::StrCat(
                                "IOStream fd ", fd_, ": ReadBytes(", r.limit,
                                ") exceeds max_buffer_size ", options_.max_buffer_size)));
        return true;
      }
      if (!ended) return false;
      CompleteData(frame, UnsatisfiedError(absl::StrCat("IOStream::ReadBytes(", r.limit, ")")));
      return true;
    }
    case ReadKind::kUntil: {
      if (r.delimiter.empty()) {
        CompleteData(frame, absl::InvalidArgumentError(absl::StrCat(
                                "IOStream fd ", fd_, ": ReadUntil with an empty delimiter")));
        return true;
      }
      const absl::string_view view = read_buffer_.View();
      const size_t from = scanned_ >= r.delimiter.size() ? scanned_ - r.delimiter.size() + 1 : 0;
      const size_t at = view.find(r.delimiter, from);
      if (at != absl::string_view::npos) {
        const size_t end = at + r.delimiter.size();
        if (end > r.limit) {
          CompleteData(frame, absl::ResourceExhaustedError(absl::StrCat(
                                  "IOStream fd ", fd_, ": ReadUntil(\"", Printable(r.delimiter),
                                  "\"): the delimiter ends at byte ", end, ", past max_bytes ",
                                  r.limit, "; the data stays buffered")));
          return true;
        }
        std::string out(view.substr(0, end));
        read_buffer_.Consume(end);
        stats_.bytes_copied += end;
        CompleteData(frame, std::move(out));
        return true;
      }
      scanned_ = buffered;
      if (buffered >= r.limit) {
        CompleteData(frame, absl::ResourceExhaustedError(absl::StrCat(
                                "IOStream fd ", fd_, ": ReadUntil(\"", Printable(r.delimiter),
                                "\"): no delimiter in the first ", buffered, " bytes (max_bytes ",
                                r.limit, "); the data stays buffered")));
        return true;
      }
      if (!ended) return false;
      CompleteData(frame, UnsatisfiedError(absl::StrCat("IOStream::ReadUntil(\"",
                                                        Printable(r.delimiter), "\")")));
      return true;
    }
    case ReadKind::kUntilClose: {
      if (ended && (clean_close_ || !closed_)) {
        std::string out(read_buffer_.View());
        read_buffer_.Consume(buffered);
        stats_.bytes_copied += buffered;
        CompleteData(frame, std::move(out));
        return true;
      }
      if (ended) {
        CompleteData(frame, UnsatisfiedError("IOStream::ReadUntilClose"));
        return true;
      }
      if (buffered >= options_.max_buffer_size) {
        CompleteData(frame, absl::ResourceExhaustedError(absl::StrCat(
                                "IOStream fd ", fd_, ": ReadUntilClose: ", buffered,
                                " bytes reached max_buffer_size; the data stays buffered")));
        return true;
      }
      return false;
    }
  }
  return false;
}

// --- Writes -------------------------------------------------------------------------

absl::Status IOStream::Write(absl::string_view data) {
  if (ABSL_PREDICT_TRUE(!closed_ && !shutdown_requested_ && write_queue_.empty() && !data.empty() &&
                        data.size() <= options_.max_write_buffer_size && io_ == nullptr)) {
    // The common case: nothing queued, and the kernel takes it all.
    const ssize_t n = send(fd_, data.data(), data.size(), kSendFlags);
    if (ABSL_PREDICT_TRUE(n == static_cast<ssize_t>(data.size()))) {
      ++stats_.write_calls;
      queued_end_ += data.size();
      flushed_ += data.size();
      stats_.bytes_written += data.size();
      return absl::OkStatus();
    }
    WriteAfterSend(data, n);
    return absl::OkStatus();
  }
  // The completion path's common case: a small write handed to the poller as a copy.
  if (io_ != nullptr && !shutdown_requested_ && !data.empty() &&
      data.size() <= options_.max_write_buffer_size && SendCopied(data) == data.size()) {
    queued_end_ += data.size();
    return absl::OkStatus();
  }
  return WriteWithoutCallback(data);
}

// WriteWithoutCallback() is Write(data) off its fast path (kept out of line: the empty
// callback it builds would cost the fast path a stack frame).
ABSL_ATTRIBUTE_NOINLINE absl::Status IOStream::WriteWithoutCallback(absl::string_view data) {
  return Write(data, WriteCallback());
}

// WriteAfterSend() finishes Write(data) after its send(2) returned `n`, not all of it:
// retries on EINTR, queues what the kernel did not take, closes on an error.
ABSL_ATTRIBUTE_NOINLINE void IOStream::WriteAfterSend(absl::string_view data, ssize_t n) {
  if (n < 0 && errno == EINTR) {
    n = RetryOnEintr([&] { return send(fd_, data.data(), data.size(), kSendFlags); });
  }
  ++stats_.write_calls;
  queued_end_ += data.size();
  const size_t sent = SentBytes(n);
  if (!closed_ && sent < data.size()) {
    write_queue_.Append(data.substr(sent));
    stats_.bytes_copied += data.size() - sent;
    if (frames_ == nullptr) UpdateInterest();
  }
}

absl::Status IOStream::Write(absl::string_view data, WriteCallback cb) {
  if (closed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("IOStream fd ", fd_, ": Write on a closed stream (", error_.message(), ")"));
  }
  if (shutdown_requested_) {
    return absl::FailedPreconditionError(
        absl::StrCat("IOStream fd ", fd_, ": Write after ShutdownWrite()"));
  }
  if (QueuedBytes() + data.size() > options_.max_write_buffer_size) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "IOStream fd ", fd_, ": Write of ", data.size(), " bytes with ", QueuedBytes(),
        " queued would exceed max_write_buffer_size ", options_.max_write_buffer_size));
  }
  size_t sent = 0;
  if (write_queue_.empty() && io_ == nullptr) sent = SendDirect(data);
  if (io_ != nullptr) sent = SendCopied(data);
  queued_end_ += data.size();
  if (!closed_ && sent < data.size()) {
    write_queue_.Append(data.substr(sent));
    stats_.bytes_copied += data.size() - sent;
  }
  if (cb) {
    writes_.push_back({queued_end_, std::move(cb), StackContext::Capture()});
    if (flushed_ >= queued_end_ || closed_) ScheduleCompletions();
  }
  if (!closed_ && !write_queue_.empty() && frames_ == nullptr) UpdateInterest();
  return absl::OkStatus();
}

absl::Status IOStream::Write(absl::Cord data, WriteCallback cb) {
  if (closed_ || shutdown_requested_ ||
      QueuedBytes() + data.size() > options_.max_write_buffer_size) {
    // The same errors as the string form.
    if (!closed_ && !shutdown_requested_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "IOStream fd ", fd_, ": Write of ", data.size(), " bytes with ", QueuedBytes(),
          " queued would exceed max_write_buffer_size ", options_.max_write_buffer_size));
    }
    return Write(absl::string_view(), std::move(cb));
  }
  const size_t size = data.size();
  write_queue_.Append(std::move(data));  // Shares the Cord's chunks: no copy.
  queued_end_ += size;
  if (write_queue_.size() == size && io_ == nullptr) FlushQueue();
  if (cb) {
    writes_.push_back({queued_end_, std::move(cb), StackContext::Capture()});
    if (flushed_ >= queued_end_ || closed_) ScheduleCompletions();
  }
  if (!closed_ && !write_queue_.empty() && frames_ == nullptr) UpdateInterest();
  return absl::OkStatus();
}

// SendDirect() sends the caller's bytes while nothing is queued, without queueing
// them; returns how many the kernel took. FlushQueue() sends the queue until the
// kernel pushes back. Both close the stream on a socket error.
size_t IOStream::SendDirect(absl::string_view data) {
  if (data.empty()) return 0;
  const ssize_t n = RetryOnEintr([&] { return send(fd_, data.data(), data.size(), kSendFlags); });
  ++stats_.write_calls;
  return SentBytes(n);
}

// SentBytes() accounts for send(2)'s result `n`: the bytes the kernel took (0 on an
// error, which closes the stream unless it is EAGAIN).
size_t IOStream::SentBytes(ssize_t n) {
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      CloseNow(ErrnoStatus(errno, "IOStream: send", fd_), /*clean=*/false);
    }
    return 0;
  }
  flushed_ += static_cast<size_t>(n);
  stats_.bytes_written += static_cast<size_t>(n);
  return static_cast<size_t>(n);
}

void IOStream::FlushQueue() {
  while (!write_queue_.empty()) {
    iovec iov[kMaxIovecs];
    int count = 0;
    size_t total = 0;
    for (absl::string_view chunk : write_queue_.Chunks()) {
      iov[count].iov_base = const_cast<char*>(chunk.data());
      iov[count].iov_len = chunk.size();
      total += chunk.size();
      if (++count == kMaxIovecs) break;
    }
    msghdr message = {};
    message.msg_iov = iov;
    message.msg_iovlen = static_cast<decltype(message.msg_iovlen)>(count);
    const ssize_t n = RetryOnEintr([&] { return sendmsg(fd_, &message, kSendFlags); });
    ++stats_.write_calls;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        CloseNow(ErrnoStatus(errno, "IOStream: sendmsg", fd_), /*clean=*/false);
      }
      break;
    }
    write_queue_.RemovePrefix(static_cast<size_t>(n));
    flushed_ += static_cast<size_t>(n);
    stats_.bytes_written += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < total) break;  // The kernel pushed back.
  }
  if (write_queue_.empty()) write_queue_ = absl::Cord();  // Give the tree back.
}

void IOStream::HandleWrite() {
  FlushQueue();
  if (!closed_ && write_queue_.empty() && shutdown_requested_ && !write_shut_) {
    write_shut_ = true;
    shutdown(fd_, SHUT_WR);
  }
}

void IOStream::ShutdownWrite() {
  if (closed_ || shutdown_requested_) return;
  shutdown_requested_ = true;
  if (QueuedBytes() == 0) {
    write_shut_ = true;
    shutdown(fd_, SHUT_WR);
  }
}

// --- Events and completions ---------------------------------------------------------

// InFrame() runs one dispatch step (an fd event, a deferred run, a finished receive
// or send) in a Frame, so that callbacks may destroy the stream; if a callback throws,
// the stream is closed as for any callback error and the exception goes on to the loop.
// The catch costs nothing until something throws, unlike a check on every return.
template <typename Body>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void IOStream::InFrame(Body&& body) {
  Frame frame(this);
  try {
    body(frame);
  } catch (...) {
    if (!frame.destroyed) {
      frames_ = frame.outer;
      OnCallbackThrew();
    }
    throw;
  }
}

// OnEvents() handles readiness. Its hot path is the streaming read (ChunkFastPathReady())
// on a read event: one read(2); if its bytes neither finish the read nor fill the
// request, they go straight to on_chunk, and when the callback left nothing else to do
// (no close, no queued bytes, no write completion) the stream is done with the event
// once the buffer is released and the watched events are found unchanged. That is
// HandleRead() + DrainCompletions() + Finish() for this case, without the calls; every
// other outcome continues out of line, the same way.
void IOStream::OnEvents(EventMask events) {
  InFrame([&](Frame& frame) {
    if (ABSL_PREDICT_TRUE(events == kRead) && ChunkFastPathReady()) {
      const size_t want = std::min(options_.read_chunk_size, options_.max_buffer_size);
      const ssize_t n = read_buffer_.Read(fd_, want);
      ReadRequest& r = read_;
      if (ABSL_PREDICT_TRUE(
              n > 0 && static_cast<size_t>(n) < want &&
              (r.kind == ReadKind::kUntilClose || r.limit > static_cast<size_t>(n)))) {
        const size_t got = static_cast<size_t>(n);
        ++stats_.read_calls;
        stats_.bytes_read += got;
        const absl::string_view chunk = read_buffer_.View();
        read_buffer_.ConsumeAll();  // The view stays valid until Settle().
        if (r.kind == ReadKind::kBytes) r.limit -= got;
        (*r.on_chunk)(chunk);
        if (frame.destroyed) return;
        if (ABSL_PREDICT_TRUE(!closed_ && write_queue_.empty() && writes_head_ == writes_.size())) {
          // Nothing became due: what DrainCompletions() would find, without looking.
          read_buffer_.Settle();
          if (ABSL_PREDICT_TRUE(registered_ && interest_ == kRead)) return;
          Finish(frame);
          return;
        }
        if (DrainCompletions(frame)) Finish(frame);
        return;
      }
      AfterRead(frame, n, want);
      return;
    }
    HandleEvents(frame, events);
  });
}

// AfterRead() finishes the event after OnEvents()' read of `n` bytes (of `want`) went
// to the buffer without a fast delivery: as HandleRead() and OnEvents() would.
ABSL_ATTRIBUTE_NOINLINE void IOStream::AfterRead(Frame& frame, ssize_t n, size_t want) {
  ++stats_.read_calls;
  bool changed = false;
  if (n > 0) {
    stats_.bytes_read += static_cast<size_t>(n);
    if (!DrainCompletions(frame)) return;
    if (static_cast<size_t>(n) == want) {
      changed = HandleRead(frame);  // More may be waiting.
      if (frame.destroyed) return;
    }
  } else if (n == 0) {
    eof_ = true;
    changed = true;
  } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
    CloseNow(ErrnoStatus(errno, "IOStream: read", fd_), /*clean=*/false);
    changed = true;
  }
  if (changed && !DrainCompletions(frame)) return;
  Finish(frame);
}

// HandleEvents() is OnEvents() for everything but the hot path.
ABSL_ATTRIBUTE_NOINLINE void IOStream::HandleEvents(Frame& frame, EventMask events) {
  // Completions are due only if something changed since they last ran.
  bool changed = false;
  if (events & kWrite) {
    HandleWrite();
    changed = true;
  }
  if ((events & kRead) && !closed_) {
    changed |= HandleRead(frame);
    if (frame.destroyed) return;
  }
  if ((events & (kRead | kWrite)) == 0 && (events & kError) && !closed_) {
    HandleErrorOnly();
    changed = true;
  }
  if (changed && !DrainCompletions(frame)) return;
  Finish(frame);
}

// HandleRead() reads while the pending read wants data, running completions after
// each read. Returns true if something changed since completions last ran (EOF, an
// error).
bool IOStream::HandleRead(Frame& frame) {
  for (int i = 0; i < kMaxReadsPerEvent; ++i) {
    const size_t buffered = read_buffer_.size();
    if (closed_ || eof_ || buffered >= options_.max_buffer_size) return false;
    if (!has_read_ && buffered > 0) return false;  // Read ahead at most one chunk.
    const size_t want = std::min(options_.read_chunk_size, options_.max_buffer_size - buffered);
    const ssize_t n = read_buffer_.Read(fd_, want);
    ++stats_.read_calls;
    if (n > 0) {
      stats_.bytes_read += static_cast<size_t>(n);
      if (!DrainCompletions(frame)) return false;
      if (static_cast<size_t>(n) < want) return false;  // Drained the socket for now.
      continue;
    }
    if (n == 0) {
      eof_ = true;
      return true;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    CloseNow(ErrnoStatus(errno, "IOStream: read", fd_), /*clean=*/false);
    return true;
  }
  return false;
}

// HandleErrorOnly(): the backend reported an error or hang-up on an fd watched for
// nothing (a stream that stopped reading with data buffered). Level-triggered, it
// would be reported again and again: close on a socket error, else stop watching
// until the stream wants events again.
void IOStream::HandleErrorOnly() {
  int error = 0;
  socklen_t len = sizeof error;
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error != 0) {
    CloseNow(ErrnoStatus(error, "IOStream: socket error", fd_), /*clean=*/false);
    return;
  }
  if (registered_) {
    loop_->RemoveHandler(fd_).IgnoreError();
    registered_ = false;
    interest_ = kNone;
  }
}

bool IOStream::DrainCompletions(Frame& frame) {
  while (true) {
    if (has_read_ && StepRead(frame)) {
      if (frame.destroyed) return false;
      continue;
    }
    if (writes_head_ == writes_.size() && !eof_ && !closed_) return true;
    switch (StepOthers(frame)) {
      case Step::kIdle:
        return true;
      case Step::kRan:
        continue;
      case Step::kDestroyed:
        return false;
    }
  }
}

// StepOthers(): one write completion, the EOF close, or the close callback, if due.
IOStream::Step IOStream::StepOthers(Frame& frame) {
  {
    if (writes_head_ < writes_.size()) {
      PendingWrite& w = writes_[writes_head_];
      if (w.end <= flushed_ || closed_) {
        WriteCallback cb = std::move(w.callback);
        StackContext context = std::move(w.context);
        absl::Status status =
            w.end <= flushed_
                ? absl::OkStatus()
                : absl::Status(error_.code(), absl::StrCat("IOStream::Write: ", error_.message()));
        if (++writes_head_ == writes_.size()) {
          writes_.clear();
          writes_head_ = 0;
        }
        RunIn(context, [&] { cb(std::move(status)); });
        return frame.destroyed ? Step::kDestroyed : Step::kRan;
      }
    }
    if (eof_ && !closed_ && !has_read_ && QueuedBytes() == 0) {
      // The peer's EOF ends the stream once what was queued for it is flushed.
      CloseNow(
          absl::UnavailableError(absl::StrCat("IOStream fd ", fd_, ": closed by the peer (EOF)")),
          /*clean=*/true);
      return Step::kRan;
    }
    if (closed_ && !close_done_ && !has_read_ && writes_head_ == writes_.size()) {
      close_done_ = true;
      if (close_callback_) {
        CloseCallback cb = std::move(close_callback_);
        StackContext context = std::move(close_context_);
        RunIn(context, [&] { cb(); });
        if (frame.destroyed) return Step::kDestroyed;
      }
      return Step::kRan;
    }
    return Step::kIdle;
  }
}

bool IOStream::Finish(Frame& frame) {
  while (true) {
    read_buffer_.Settle();
    if (UpdateInterest()) return true;
    // Watching failed and closed the stream: run the close step now.
    if (!DrainCompletions(frame)) return false;
  }
}

// UpdateInterest() watches what the stream needs: reads while a read is pending and
// the buffer has room, or while idle with nothing buffered (to see EOF); writes while
// bytes are queued. Returns false if the loop refused and the stream closed.
bool IOStream::UpdateInterest() {
  if (closed_) return true;
  if (io_ != nullptr) {
    UpdateOps();
    return true;
  }
  EventMask want = kNone;
  const size_t buffered = read_buffer_.size();
  if (!eof_ && buffered < options_.max_buffer_size && (has_read_ || buffered == 0)) want |= kRead;
  if (!write_queue_.empty()) want |= kWrite;
  if (registered_ && want == interest_) return true;
  return ChangeInterest(want);
}

bool IOStream::ChangeInterest(EventMask want) {
  if (registered_) {
    if (absl::Status s = loop_->UpdateHandler(fd_, want); !s.ok()) {
      CloseNow(std::move(s), /*clean=*/false);
      return false;
    }
    interest_ = want;
    return true;
  }
  if (want == kNone) return true;
  NullContext no_context;  // Callbacks carry their own contexts.
  if (absl::Status s = loop_->AddHandler(
          fd_, [this](int, EventMask events) { OnEvents(events); }, want);
      !s.ok()) {
    CloseNow(std::move(s), /*clean=*/false);
    return false;
  }
  registered_ = true;
  interest_ = want;
  return true;
}

void IOStream::CloseNow(absl::Status reason, bool clean) {
  if (closed_) return;
  closed_ = true;
  clean_close_ = clean;
  error_ = std::move(reason);
  if (registered_) {
    loop_->RemoveHandler(fd_).IgnoreError();
    registered_ = false;
  }
  interest_ = kNone;
  if (io_ != nullptr) CancelOps();
  close(fd_);
  write_queue_ = absl::Cord();
  ScheduleCompletions();
}

void IOStream::Close(absl::Status reason) {
  if (closed_) return;
  const bool clean = reason.ok();
  if (clean)
    reason = absl::CancelledError(absl::StrCat("IOStream fd ", fd_, ": closed by Close()"));
  CloseNow(std::move(reason), clean);
}

void IOStream::SetCloseCallback(CloseCallback cb) {
  close_callback_ = std::move(cb);
  close_context_ = StackContext::Capture();
  if (closed_ && close_done_) {
    close_done_ = false;  // Run the close step again, for this callback.
    ScheduleCompletions();
  }
}

absl::Status IOStream::SetNoDelay(bool no_delay) {
  if (closed_) {
    return absl::FailedPreconditionError(absl::StrCat("IOStream fd ", fd_, ": closed"));
  }
  const int value = no_delay ? 1 : 0;
  if (setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) < 0) {
    return ErrnoStatus(errno, "IOStream: setsockopt(TCP_NODELAY)", fd_);
  }
  return absl::OkStatus();
}

// ScheduleCompletions() makes sure due completions run soon: inside the dispatch in
// progress if there is one, else from a zero-delay timeout (cancellable, unlike a
// callback, so a destroyed stream leaves nothing behind).
void IOStream::ScheduleCompletions() {
  if (frames_ != nullptr || deferred_pending_) return;
  deferred_pending_ = true;
  NullContext no_context;  // Each callback runs in its own captured context.
  deferred_ = loop_->AddTimeout(absl::ZeroDuration(), [this] { RunDeferred(); });
}

void IOStream::RunDeferred() {
  deferred_pending_ = false;
  deferred_ = TimeoutHandle();
  InFrame([&](Frame& frame) {
    if (!DrainCompletions(frame)) return;
    Finish(frame);
  });
}

void IOStream::OnCallbackThrew() {
  if (!closed_) {
    CloseNow(absl::InternalError(absl::StrCat(
                 "IOStream fd ", fd_, ": a callback threw an exception; the stream was closed")),
             /*clean=*/false);
  }
  if (has_read_) read_.on_chunk.reset();  // Never called again after it threw.
  read_buffer_.Settle();
  ScheduleCompletions();
}

// --- The completion path -----------------------------------------------------------

// UpdateOps() is UpdateInterest() for the completion path: one receive that stays
// armed from the start until EOF, paused whenever the readiness path would not watch
// for reads (the read buffer full, or no read pending and something buffered: the
// same back-pressure), and a send while bytes are queued.
void IOStream::UpdateOps() {
  if (loop_->completion_io() == nullptr) return;  // The loop closed: nothing more starts.
  const size_t room = RecvRoom();
  if (room > 0 && recv_op_ == 0 && !eof_) {
    recv_op_ =
        io_->RecvMany(fd_, options_.read_chunk_size,
                      [this](int result, absl::string_view data) { return OnRecv(result, data); });
    ++stats_.read_calls;
  } else if (room > 0 && recv_paused_) {
    recv_paused_ = false;
    io_->Resume(recv_op_);
    ++stats_.read_calls;
  } else if (room == 0 && recv_op_ != 0 && !recv_paused_) {
    recv_paused_ = true;
    io_->Pause(recv_op_);
  }
  if (send_op_ == 0 && !write_queue_.empty()) {
    // The op shares the queue's chunks; bytes appended meanwhile go in the next send.
    send_op_ = io_->Send(fd_, write_queue_, [this](int result) { OnSend(result); });
    ++stats_.write_calls;
  }
}

// SendCopied() hands `data` to the poller as a copy when nothing is queued or in
// flight and it is small (CompletionIo::SendCopy): no queue node per small write.
// Keeps its own copy (copied_) until the send finished, to queue again what the kernel
// did not take. Returns how many bytes it handed over (all or none).
size_t IOStream::SendCopied(absl::string_view data) {
  if (closed_ || send_op_ != 0 || !write_queue_.empty() || data.empty() ||
      data.size() > CompletionIo::kMaxSendCopyBytes || loop_->completion_io() == nullptr) {
    return 0;
  }
  copied_.assign(data.data(), data.size());
  stats_.bytes_copied += data.size();
  send_op_ = io_->SendCopy(fd_, data, [this](int result) { OnSend(result); });
  ++stats_.write_calls;
  return data.size();
}

// RecvRoom() is how many bytes the stream takes from the socket now, as the readiness
// path would read them: as much as fits while a read is pending; one run of at most
// read_chunk_size while none is and nothing is buffered (to see the peer close); none
// otherwise (an EOF behind buffered data then waits for a read), nor after EOF.
size_t IOStream::RecvRoom() const {
  const size_t buffered = read_buffer_.size();
  if (eof_ || closed_ || buffered >= options_.max_buffer_size) return 0;
  if (has_read_) return options_.max_buffer_size - buffered;
  return buffered == 0 ? std::min(options_.read_chunk_size, options_.max_buffer_size) : 0;
}

// OnRecv() takes bytes received: to a streaming read directly when
// ChunkFastPathReady() (no copy), else into the read buffer, as much as fits (the rest
// waits in the backend, which pauses the receive); then completions run. Returns how
// many bytes it took. A result <= 0 ends the receive (EOF or an error).
size_t IOStream::OnRecv(int result, absl::string_view data) {
  size_t taken = data.size();
  if (result <= 0) recv_op_ = 0;
  InFrame([&](Frame& frame) {
    if (result > 0) {
      ReadRequest& r = read_;
      if (ChunkFastPathReady() && (r.kind == ReadKind::kUntilClose || r.limit > data.size())) {
        stats_.bytes_read += taken;
        if (r.kind == ReadKind::kBytes) r.limit -= taken;
        (*r.on_chunk)(data);
        if (frame.destroyed) return;
      } else {
        const size_t room = RecvRoom();
        if (taken > room) {
          taken = room;
          recv_paused_ = true;
        }
        stats_.bytes_read += taken;
        read_buffer_.Append(data.substr(0, taken));
      }
    } else if (result == 0) {
      eof_ = true;
    } else {
      CloseNow(ErrnoStatus(-result, "IOStream: recv", fd_), /*clean=*/false);
    }
    if (!DrainCompletions(frame)) return;
    Finish(frame);
  });
  return taken;
}

// OnSend() takes a finished send: drops what the kernel took from the queue, half-closes
// once it drained after ShutdownWrite(), runs the write completions now due.
void IOStream::OnSend(int result) {
  send_op_ = 0;
  InFrame([&](Frame& frame) {
    if (result > 0) {
      const size_t n = static_cast<size_t>(result);
      if (!copied_.empty()) {  // SendCopied()'s bytes; a rest goes out first, from the queue.
        if (n < copied_.size()) write_queue_.Prepend(absl::string_view(copied_).substr(n));
        copied_.clear();
      } else {
        write_queue_.RemovePrefix(n);
      }
      flushed_ += n;
      stats_.bytes_written += n;
      if (write_queue_.empty()) {
        write_queue_ = absl::Cord();  // Give the tree back.
        if (shutdown_requested_ && !write_shut_) {
          write_shut_ = true;
          shutdown(fd_, SHUT_WR);
        }
      }
    } else if (result < 0 && result != -ECANCELED && result != -EAGAIN && result != -EINTR) {
      CloseNow(ErrnoStatus(-result, "IOStream: send", fd_), /*clean=*/false);
    } else if (!copied_.empty()) {  // Nothing was sent: Finish() submits it from the queue.
      write_queue_.Prepend(copied_);
      copied_.clear();
    }  // Otherwise nothing was sent: Finish() submits another.
    if (!DrainCompletions(frame)) return;
    Finish(frame);
  });
}

// CancelOps() cancels what is in flight, before the fd is closed (the backend keeps
// the buffers until the kernel lets go). A send that never reached the kernel is tried
// once, non-blocking, first: on the readiness path Write() would already have sent it.
void IOStream::CancelOps() {
  CompletionIo* io = loop_->completion_io();  // nullptr once the loop closed.
  if (io == nullptr) {
    recv_op_ = send_op_ = 0;
    copied_.clear();
    return;
  }
  if (recv_op_ != 0) io->Cancel(recv_op_);
  recv_op_ = 0;
  recv_paused_ = false;
  if (send_op_ != 0 && io->Cancel(send_op_)) {
    if (!copied_.empty()) write_queue_.Prepend(copied_);
    SendUnsentOnce();
  }
  send_op_ = 0;
  copied_.clear();
}

// SendUnsentOnce() hands the kernel what of the queue it takes without blocking, and
// changes nothing else (it runs on the way to close(), also from the destructor).
void IOStream::SendUnsentOnce() {
  iovec iov[kMaxIovecs];
  int count = 0;
  for (absl::string_view chunk : write_queue_.Chunks()) {
    iov[count].iov_base = const_cast<char*>(chunk.data());
    iov[count].iov_len = chunk.size();
    if (++count == kMaxIovecs) break;
  }
  if (count == 0) return;
  msghdr message = {};
  message.msg_iov = iov;
  message.msg_iovlen = static_cast<decltype(message.msg_iovlen)>(count);
  const ssize_t n = RetryOnEintr([&] { return sendmsg(fd_, &message, kSendFlags); });
  ++stats_.write_calls;
  if (n > 0) {
    flushed_ += static_cast<size_t>(n);
    stats_.bytes_written += static_cast<size_t>(n);
  }
}

// --- Connect ------------------------------------------------------------------------

namespace {

struct PendingConnect {
  IOLoop* loop;
  int fd;
  IOStream::ConnectCallback callback;
  IOStream::Options options;
  StackContext context;
  TimeoutHandle timer;
  std::string where;
  bool handed_over = false;
  ~PendingConnect() {
    if (!handed_over) close(fd);
  }
};

bool ParseAddress(absl::string_view address, int port, sockaddr_storage& out, socklen_t& len) {
  if (port < 0 || port > 65535) return false;
  std::string host(address);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::memset(&out, 0, sizeof out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// Finish() hands the result to the callback, in the caller's context.
void FinishConnect(const std::shared_ptr<PendingConnect>& p,
                   absl::StatusOr<std::unique_ptr<IOStream>> result) {
  IOStream::ConnectCallback cb = std::move(p->callback);
  StackContext context = std::move(p->context);
  RunIn(context, [&] { cb(std::move(result)); });
}

}  // namespace

void IOStream::Connect(IOLoop* loop, absl::string_view address, int port, ConnectCallback cb,
                       absl::Duration timeout, Options options) {
  const std::string where = absl::StrCat(address, " port ", port);
  sockaddr_storage addr;
  socklen_t addr_len = 0;
  absl::Status early;
  int fd = -1;
  if (!ParseAddress(address, port, addr, addr_len)) {
    early = absl::InvalidArgumentError(
        absl::StrCat("IOStream::Connect: ", where,
                     ": not a numeric IPv4 or IPv6 address and port (names are not resolved)"));
  } else {
    fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      early = ErrnoStatus(errno, absl::StrCat("IOStream::Connect: socket for ", where));
    } else if (RetryOnEintr([&] {
                 return connect(fd, reinterpret_cast<sockaddr*>(&addr), addr_len);
               }) == 0) {
      // Connected at once: still complete on the loop, never inside Connect().
      loop->AddCallback([loop, fd, options, cb = std::move(cb)]() mutable {
        cb(std::make_unique<IOStream>(loop, fd, options));
      });
      return;
    } else if (errno != EINPROGRESS) {
      early = ErrnoStatus(errno, absl::StrCat("IOStream::Connect: connect to ", where), fd);
      close(fd);
    }
  }
  if (!early.ok()) {
    loop->AddCallback(
        [cb = std::move(cb), early = std::move(early)]() mutable { cb(std::move(early)); });
    return;
  }

  auto pending = std::make_shared<PendingConnect>();
  pending->loop = loop;
  pending->fd = fd;
  pending->callback = std::move(cb);
  pending->options = options;
  pending->context = StackContext::Capture();
  pending->where = where;
  NullContext no_context;
  absl::Status watched = loop->AddHandler(
      fd,
      [pending](int fd, EventMask) {
        std::shared_ptr<PendingConnect> p = pending;  // Outlives the handler's removal.
        int error = 0;
        socklen_t len = sizeof error;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0) error = errno;
        p->loop->RemoveTimeout(p->timer);
        p->loop->RemoveHandler(fd).IgnoreError();
        if (error != 0) {
          FinishConnect(
              p, ErrnoStatus(error, absl::StrCat("IOStream::Connect: connect to ", p->where)));
          return;
        }
        p->handed_over = true;
        FinishConnect(p, std::make_unique<IOStream>(p->loop, fd, p->options));
      },
      kWrite);
  if (!watched.ok()) {
    loop->AddCallback([p = pending, watched]() mutable { FinishConnect(p, watched); });
    return;
  }
  pending->timer = loop->AddTimeout(timeout, [p = pending.get(), timeout] {
    // The handler owns `p`: take what is needed before removing the handler.
    IOLoop* loop = p->loop;
    const int fd = p->fd;
    std::string where = p->where;
    IOStream::ConnectCallback cb = std::move(p->callback);
    StackContext context = std::move(p->context);
    loop->RemoveHandler(fd).IgnoreError();  // Destroys `p` and closes the fd.
    absl::Status status = absl::DeadlineExceededError(absl::StrCat("IOStream::Connect: connect to ",
                                                                   where, " timed out after ",
                                                                   absl::FormatDuration(timeout)));
    RunIn(context, [&] { cb(std::move(status)); });
  });
}

}  // namespace ioloop
