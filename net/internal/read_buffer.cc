#include "net/internal/read_buffer.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/eintr.h"

namespace ioloop::stream_internal {
namespace {

// ScratchOwner frees the thread's scratch memory when the thread exits.
struct ScratchOwner {
  std::unique_ptr<char[]> data;
  ~ScratchOwner() { t_read_scratch = ReadScratch(); }
};
thread_local ScratchOwner t_scratch_owner;

// Owned storage below this is never shrunk; above it, it is shrunk once four times
// larger than its contents.
constexpr size_t kMinShrinkCapacity = 4096;

}  // namespace

constinit thread_local ReadScratch t_read_scratch;

ReadBuffer::~ReadBuffer() { ReleaseScratch(); }

void ReadBuffer::ReleaseScratch() {
  if (borrowed_) {
    t_read_scratch.in_use = false;
    borrowed_ = false;
    data_ = owned_.get();
    begin_ = end_ = 0;
  }
}

ssize_t ReadBuffer::ReadSlow(int fd, size_t want) {
  if (borrowed_) Adopt();
  ReadScratch& scratch = t_read_scratch;
  if (scratch.in_use) {
    // Another buffer borrowed the scratch (only with loops nested on one thread): read
    // straight into owned storage.
    Reserve(want);
    const ssize_t n = RetryOnEintr([&] { return read(fd, data_ + end_, want); });
    if (n > 0) end_ += static_cast<size_t>(n);
    return n;
  }
  if (scratch.size < want) {
    t_scratch_owner.data.reset(new char[want]);
    scratch.data = t_scratch_owner.data.get();
    scratch.size = want;
  }
  const ssize_t n = RetryOnEintr([&] { return read(fd, scratch.data, want); });
  if (n <= 0) return n;
  if (empty()) {
    // Borrow: the common case costs no copy.
    data_ = scratch.data;
    begin_ = 0;
    end_ = static_cast<size_t>(n);
    borrowed_ = true;
    scratch.in_use = true;
  } else {
    Append(absl::string_view(scratch.data, static_cast<size_t>(n)));
  }
  return n;
}

void ReadBuffer::Append(absl::string_view data) {
  if (data.empty()) return;
  if (borrowed_) Adopt();
  Reserve(data.size());
  std::memcpy(data_ + end_, data.data(), data.size());
  end_ += data.size();
  copied_ += data.size();
}

void ReadBuffer::Reserve(size_t extra) {
  const size_t used = size();
  if (owned_capacity_ - end_ >= extra) return;
  if (owned_ != nullptr && used + extra <= owned_capacity_ && begin_ >= used) {
    // Room at the front: slide the bytes down (cheap: they are fewer than the gap).
    std::memmove(owned_.get(), owned_.get() + begin_, used);
    copied_ += used;
    begin_ = 0;
    end_ = used;
    data_ = owned_.get();
    return;
  }
  MoveToNewStorage(std::max({owned_capacity_ * 2, used + extra, size_t{64}}));
}

void ReadBuffer::MoveToNewStorage(size_t capacity) {
  const size_t used = size();
  std::unique_ptr<char[]> storage(new char[capacity]);
  if (used > 0) std::memcpy(storage.get(), data_ + begin_, used);
  copied_ += used;
  owned_ = std::move(storage);
  owned_capacity_ = capacity;
  data_ = owned_.get();
  begin_ = 0;
  end_ = used;
}

void ReadBuffer::Adopt() {
  const absl::string_view bytes = View();
  std::unique_ptr<char[]> owned(new char[std::max(bytes.size(), size_t{64})]);
  std::memcpy(owned.get(), bytes.data(), bytes.size());
  copied_ += bytes.size();
  t_read_scratch.in_use = false;
  borrowed_ = false;
  owned_ = std::move(owned);
  owned_capacity_ = std::max(bytes.size(), size_t{64});
  data_ = owned_.get();
  begin_ = 0;
  end_ = bytes.size();
}

void ReadBuffer::SettleSlow() {
  if (borrowed_) {
    if (empty()) {
      ReleaseScratch();
    } else {
      Adopt();
      return;  // Adopt() sized the storage to the data.
    }
  }
  if (empty()) {
    owned_.reset();
    owned_capacity_ = 0;
    data_ = nullptr;
    begin_ = end_ = 0;
    return;
  }
  if (owned_capacity_ > kMinShrinkCapacity && owned_capacity_ > 4 * size()) {
    MoveToNewStorage(std::max(size() * 2, size_t{64}));
  }
}

}  // namespace ioloop::stream_internal
