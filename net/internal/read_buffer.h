// ReadBuffer: IOStream's read buffer. Internal to //net.
//
// Bytes come in through Read(), one read(2) at a time, and leave through View() and
// Consume(). Reads land in a per-thread scratch area first: when the buffer was empty
// the bytes stay there, borrowed, so a read that consumes them all costs no copy and no
// allocation; whatever is left when the stream settles (Settle()) is copied into
// owned heap storage. Owned storage grows by doubling, shrinks when mostly unused, and
// is freed when the buffer empties: an idle stream holds no buffer memory.
//
// Thread-safety: one thread (the stream's loop).

#ifndef IOLOOP_NET_INTERNAL_READ_BUFFER_H_
#define IOLOOP_NET_INTERNAL_READ_BUFFER_H_

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/base/optimization.h"
#include "absl/strings/string_view.h"
#include "base/eintr.h"

namespace ioloop::stream_internal {

// ReadScratch is the per-thread landing area for reads. At most one buffer borrows it
// at a time (`in_use`); a buffer that finds it taken reads into its own storage
// instead. Trivially destructible and constant-initialised, so that the inline fast
// paths below reach it without a TLS wrapper call; its memory is freed at thread exit
// by an owner in read_buffer.cc.
struct ReadScratch {
  char* data = nullptr;
  size_t size = 0;
  bool in_use = false;
};
extern constinit thread_local ReadScratch t_read_scratch;

class ReadBuffer {
 public:
  ReadBuffer() = default;
  ~ReadBuffer();
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;

  absl::string_view View() const { return absl::string_view(data_ + begin_, end_ - begin_); }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return end_ == begin_; }
  // capacity(): owned heap bytes held now.
  size_t capacity() const { return owned_capacity_; }
  // bytes_copied(): bytes moved within user space so far (adoption, appends,
  // compaction).
  uint64_t bytes_copied() const { return copied_; }

  // Read() does one read(2) of at most `want` bytes from `fd` and returns its result
  // (errno set when -1). Views taken before it stay valid only if it returns <= 0.
  ssize_t Read(int fd, size_t want) {
    ReadScratch& scratch = t_read_scratch;
    if (ABSL_PREDICT_TRUE(empty() && !borrowed_ && !scratch.in_use && scratch.size >= want)) {
      // The common case: borrow the scratch, no copy.
      ssize_t n = ::read(fd, scratch.data, want);
      if (ABSL_PREDICT_FALSE(n < 0 && errno == EINTR)) {
        n = RetryOnEintr([&] { return ::read(fd, scratch.data, want); });
      }
      if (n > 0) {
        data_ = scratch.data;
        begin_ = 0;
        end_ = static_cast<size_t>(n);
        borrowed_ = true;
        scratch.in_use = true;
      }
      return n;
    }
    return ReadSlow(fd, want);
  }

  // Consume() drops the first `n` bytes. Memory is not released until Settle(), so a
  // view of them stays valid until then.
  void Consume(size_t n) { begin_ += n < size() ? n : size(); }
  void ConsumeAll() { begin_ = end_; }

  // Settle() moves borrowed bytes into owned storage, frees storage once empty and
  // shrinks storage that is mostly unused.
  void Settle() {
    if (ABSL_PREDICT_TRUE(borrowed_ && empty() && owned_ == nullptr)) {
      // The common case: everything borrowed was consumed; hand the scratch back.
      t_read_scratch.in_use = false;
      borrowed_ = false;
      data_ = nullptr;
      begin_ = end_ = 0;
      return;
    }
    if (borrowed_ || owned_ != nullptr) SettleSlow();
  }

  // Append() copies `data` in (tests and the stream's slow paths).
  void Append(absl::string_view data);

 private:
  ssize_t ReadSlow(int fd, size_t want);
  void SettleSlow();
  void Reserve(size_t extra);
  // MoveToNewStorage() moves the unread bytes to the front of new owned storage of
  // `capacity` bytes (at least size()).
  void MoveToNewStorage(size_t capacity);
  void Adopt();
  void ReleaseScratch();

  char* data_ = nullptr;  // owned_.get(), or the scratch area while borrowed.
  size_t begin_ = 0;
  size_t end_ = 0;
  std::unique_ptr<char[]> owned_;
  size_t owned_capacity_ = 0;
  bool borrowed_ = false;
  uint64_t copied_ = 0;
};

}  // namespace ioloop::stream_internal

#endif  // IOLOOP_NET_INTERNAL_READ_BUFFER_H_
