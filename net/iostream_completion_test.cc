// IOStream's completion path (io_uring): what the shared suite in iostream_test.cc
// cannot see from the outside. Cancellation of receives and sends in flight, closing
// and destroying streams (also from their own callbacks) with operations pending,
// closing the loop with operations in the kernel, back-pressure (the receive paused
// while the buffer is full, the rest left in the kernel), fd numbers reused while an old operation
// is still being cancelled, and the off switch. Skipped where this build or kernel has no io_uring.

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "net/iostream.h"
#include "net/testing/net_test_loop.h"
#include "testing/backends.h"

namespace ioloop {
namespace {

using net_testing::NetTestLoop;
using net_testing::ReadAvailable;
using net_testing::SocketPair;
using net_testing::WriteAll;

bool HaveIoUring() {
  const std::vector<std::string> names = testing::RealBackends();
  return std::find(names.begin(), names.end(), "io_uring") != names.end();
}

// PeerSeesEof() waits (bounded) for `fd` to read EOF, discarding data before it.
bool PeerSeesEof(int fd, std::string* data = nullptr) {
  char buf[65536];
  for (int i = 0; i < 1000; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return false;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) return false;
    if (data != nullptr) data->append(buf, static_cast<size_t>(n));
  }
  return false;
}

class IOStreamCompletionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveIoUring()) GTEST_SKIP() << "no io_uring in this build or kernel";
    t_ = std::make_unique<NetTestLoop>("io_uring");
  }
  void TearDown() override {
    if (peer_ >= 0) close(peer_);
  }
  std::unique_ptr<IOStream> MakeStream(IOStream::Options options = IOStream::Options()) {
    auto [mine, peer] = SocketPair();
    peer_ = peer;
    auto stream = std::make_unique<IOStream>(t_->loop(), mine, options);
    EXPECT_EQ(stream->UsesCompletions(), options.use_completions);
    return stream;
  }
  // RunUntilPeerReadsEof() runs the loop, appending what the peer reads to `got`, until
  // the peer reads EOF; false if that does not happen within RunUntil()'s limit.
  bool RunUntilPeerReadsEof(std::string& got) {
    fcntl(peer_, F_SETFL, fcntl(peer_, F_GETFL) | O_NONBLOCK);
    return t_->RunUntil([&] {
      char buf[65536];
      ssize_t n;
      while ((n = read(peer_, buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
      return n == 0;
    });
  }

  std::unique_ptr<NetTestLoop> t_;
  int peer_ = -1;
};

TEST_F(IOStreamCompletionTest, AnIdleStreamKeepsOneReceiveInTheKernelNotOnePerIteration) {
  auto stream = MakeStream();
  for (int i = 0; i < 10; ++i) t_->RunOnce();
  EXPECT_EQ(stream->stats().read_calls, 1u) << "one receive waits; nothing re-submits it";
  ASSERT_TRUE(WriteAll(peer_, "ping\n"));
  std::string line;
  stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { line = s.value(); });
  ASSERT_TRUE(t_->RunUntil([&] { return !line.empty(); }));
  EXPECT_EQ(line, "ping\n");
}

TEST_F(IOStreamCompletionTest, CloseCancelsTheReceiveInFlightAndReleasesTheSocket) {
  auto stream = MakeStream();
  absl::Status read_status;
  bool read_done = false, closed = false;
  stream->ReadBytes(10, [&](absl::StatusOr<std::string> s) {
    read_status = s.status();
    read_done = true;
  });
  stream->SetCloseCallback([&] { closed = true; });
  for (int i = 0; i < 3; ++i) t_->RunOnce();  // The receive is now in the kernel.
  ASSERT_EQ(stream->stats().read_calls, 1u);
  stream->Close();
  EXPECT_FALSE(read_done) << "never inside Close()";
  // The cancelled receive no longer holds the file: the peer sees the close at once,
  // without the loop running again.
  EXPECT_TRUE(PeerSeesEof(peer_));
  ASSERT_TRUE(t_->RunUntil([&] { return closed; }));
  EXPECT_TRUE(read_done);
  EXPECT_EQ(read_status.code(), absl::StatusCode::kCancelled) << read_status;
  EXPECT_EQ(stream->stats().bytes_read, 0u);
}

TEST_F(IOStreamCompletionTest, DestroyingAStreamWithAReceiveAndASendInFlightTouchesNothing) {
  auto stream = MakeStream();
  const std::string big(4 << 20, 's');  // More than the socket buffers: the send waits.
  bool called = false;
  ASSERT_TRUE(stream->Write(big, [&](absl::Status) { called = true; }).ok());
  stream->ReadBytes(1, [&](absl::StatusOr<std::string>) { called = true; });
  for (int i = 0; i < 3; ++i) t_->RunOnce();
  ASSERT_TRUE(stream->Writing());
  stream.reset();
  // Data arriving for the cancelled receive, and the peer draining what the cancelled
  // send handed the kernel, must not reach freed memory (ASan) nor any callback.
  (void)!send(peer_, "late", 4, MSG_NOSIGNAL | MSG_DONTWAIT);
  std::string got;
  EXPECT_TRUE(PeerSeesEof(peer_, &got));
  EXPECT_LT(got.size(), big.size());
  for (int i = 0; i < 5; ++i) t_->RunOnce();
  EXPECT_FALSE(called) << "a destroyed stream's callbacks are dropped, not called";
}

TEST_F(IOStreamCompletionTest, CloseRightAfterWriteStillHandsTheBytesToTheKernel) {
  auto stream = MakeStream();
  bool write_ok = false;
  ASSERT_TRUE(stream->Write("bye\n", [&](absl::Status s) { write_ok = s.ok(); }).ok());
  stream->Close();  // The send never reached the ring: it is tried once, directly.
  std::string got;
  EXPECT_TRUE(PeerSeesEof(peer_, &got));
  EXPECT_EQ(got, "bye\n");
  ASSERT_TRUE(t_->RunUntil([&] { return write_ok; }));
}

// Small writes go to the poller as copies, one at a time; the ones behind wait in the
// queue. Order holds across both, and ShutdownWrite() right after waits for all of it.
TEST_F(IOStreamCompletionTest, SmallWritesKeepTheirOrderAndShutdownWaitsForThem) {
  auto stream = MakeStream();
  std::string want;
  for (int i = 0; i < 50; ++i) {
    const std::string piece = absl::StrCat(i, i % 7 == 0 ? std::string(700, 'x') : "", ";");
    want += piece;
    ASSERT_TRUE(stream->Write(piece).ok());
  }
  EXPECT_EQ(stream->WriteBufferSize(), want.size()) << "copied or queued, all counted";
  stream->ShutdownWrite();
  std::string got;
  ASSERT_TRUE(RunUntilPeerReadsEof(got));
  EXPECT_EQ(got, want) << "the EOF only after every byte, in order";
  EXPECT_EQ(stream->WriteBufferSize(), 0u);
}

TEST_F(IOStreamCompletionTest, ShutdownWriteHalfClosesOnceTheSendsCompleted) {
  auto stream = MakeStream();
  const std::string big(1 << 20, 'h');
  ASSERT_TRUE(stream->Write(big).ok());
  stream->ShutdownWrite();
  std::string got;
  ASSERT_TRUE(RunUntilPeerReadsEof(got));
  EXPECT_EQ(got, big);
  EXPECT_FALSE(stream->Closed()) << "half-closed: the stream still reads";
  ASSERT_TRUE(WriteAll(peer_, "after\n"));
  std::string line;
  stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { line = s.value(); });
  ASSERT_TRUE(t_->RunUntil([&] { return !line.empty(); }));
  EXPECT_EQ(line, "after\n");
}

TEST_F(IOStreamCompletionTest, AFullReadBufferStopsReceivesUntilReadsMakeRoom) {
  IOStream::Options options;
  options.max_buffer_size = 8192;
  options.read_chunk_size = 4096;
  auto stream = MakeStream(options);
  fcntl(peer_, F_SETFL, fcntl(peer_, F_GETFL) | O_NONBLOCK);
  const std::string flood(100000, 'f');
  size_t sent = 0;
  for (ssize_t n; sent < flood.size() &&
                  (n = send(peer_, flood.data() + sent, flood.size() - sent, MSG_NOSIGNAL)) > 0;) {
    sent += static_cast<size_t>(n);
  }
  // No read pending: one run read ahead (at most read_chunk_size), then nothing more.
  for (int i = 0; i < 20; ++i) t_->RunOnce();
  EXPECT_GT(stream->ReadBufferSize(), 0u);
  EXPECT_LE(stream->ReadBufferSize(), options.read_chunk_size);
  EXPECT_EQ(stream->stats().read_calls, 1u) << "no receive re-armed while nothing is wanted";
  // A read that the buffer cannot satisfy fills it to max_buffer_size, then stops.
  absl::Status status;
  stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { status = s.status(); });
  ASSERT_TRUE(t_->RunUntil([&] { return !status.ok(); }));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(stream->ReadBufferSize(), options.max_buffer_size);
  const uint64_t calls = stream->stats().read_calls;
  for (int i = 0; i < 20; ++i) t_->RunOnce();
  EXPECT_EQ(stream->stats().read_calls, calls) << "a full buffer re-arms no receive";
  int unread = 0;
  ASSERT_EQ(ioctl(stream->fd(), FIONREAD, &unread), 0);
  EXPECT_EQ(static_cast<size_t>(unread), sent - options.max_buffer_size)
      << "the rest waits in the kernel (TCP back-pressure), not in memory";
  // Reads make room, and everything arrives in order.
  std::string all;
  bool done = false;
  stream->ReadBytes(
      sent, [&](absl::string_view chunk) { all.append(chunk.data(), chunk.size()); },
      [&](absl::Status s) { done = s.ok(); });
  ASSERT_TRUE(t_->RunUntil([&] { return done; }));
  EXPECT_EQ(all, flood.substr(0, sent));
}

TEST_F(IOStreamCompletionTest, ReadCallbackMayDestroyTheStreamWhileItsSendFinishesInTheSameBatch) {
  auto stream = MakeStream();
  bool write_called = false;
  std::string got;
  // The peer's data is already there: the receive and the small send complete in the
  // same poll; the read callback, run first or second, destroys the stream.
  ASSERT_TRUE(WriteAll(peer_, "x"));
  ASSERT_TRUE(stream->Write("y", [&](absl::Status) { write_called = true; }).ok());
  stream->ReadBytes(1, [&](absl::StatusOr<std::string> s) {
    got = s.value();
    stream.reset();
  });
  ASSERT_TRUE(t_->RunUntil([&] { return stream == nullptr; }));
  EXPECT_EQ(got, "x");
  for (int i = 0; i < 5; ++i) t_->RunOnce();
  std::string peer_got;
  EXPECT_TRUE(PeerSeesEof(peer_, &peer_got));
  EXPECT_EQ(peer_got, "y");
  (void)write_called;  // Either way is fine: ran before the read, or dropped after.
}

TEST_F(IOStreamCompletionTest, WriteCallbackMayDestroyTheStreamWithAReceiveInFlight) {
  auto stream = MakeStream();
  bool read_called = false;
  stream->ReadBytes(5, [&](absl::StatusOr<std::string>) { read_called = true; });
  ASSERT_TRUE(stream
                  ->Write("hello",
                          [&](absl::Status s) {
                            EXPECT_TRUE(s.ok()) << s;
                            stream.reset();
                          })
                  .ok());
  ASSERT_TRUE(t_->RunUntil([&] { return stream == nullptr; }));
  // Fails (EPIPE) once the close went through: the receive was cancelled with it.
  (void)!send(peer_, "abcde", 5, MSG_NOSIGNAL | MSG_DONTWAIT);
  for (int i = 0; i < 5; ++i) t_->RunOnce();
  EXPECT_FALSE(read_called);
  std::string got;
  EXPECT_TRUE(PeerSeesEof(peer_, &got));
  EXPECT_EQ(got, "hello");
}

TEST_F(IOStreamCompletionTest, ChunkCallbackMayDestroyTheStream) {
  auto stream = MakeStream();
  int chunks = 0;
  stream->ReadUntilClose(
      [&](absl::string_view) {
        ++chunks;
        stream.reset();
      },
      [&](absl::Status) { ADD_FAILURE() << "dropped with the stream"; });
  ASSERT_TRUE(WriteAll(peer_, "chunk"));
  ASSERT_TRUE(t_->RunUntil([&] { return stream == nullptr; }));
  for (int i = 0; i < 3; ++i) t_->RunOnce();
  EXPECT_EQ(chunks, 1);
}

// A closed stream's fd number is reused at once by a new socket while the old
// receive's cancellation may still be on its way: the old operation's completion
// must reach neither stream, and the new stream must get exactly its own bytes.
TEST_F(IOStreamCompletionTest, AReusedFdNumberNeverSeesTheOldStreamsOperations) {
  for (int round = 0; round < 20; ++round) {
    auto old_stream = MakeStream();
    const int number = old_stream->fd();
    bool old_called = false;
    old_stream->ReadBytes(3, [&](absl::StatusOr<std::string> s) {
      if (s.ok()) old_called = true;
    });
    t_->RunOnce();  // Its receive is in the kernel.
    old_stream.reset();
    close(peer_);
    auto [mine, peer] = SocketPair();
    peer_ = peer;
    int fd = mine;
    if (peer == number) std::swap(fd, peer_);  // Put the reused number on the stream side.
    ASSERT_EQ(fd, number) << "the lowest free fd number is reused";
    IOStream fresh(t_->loop(), fd);
    ASSERT_TRUE(fresh.UsesCompletions());
    std::string got;
    fresh.ReadBytes(3, [&](absl::StatusOr<std::string> s) { got = s.value(); });
    ASSERT_TRUE(WriteAll(peer_, "new"));
    ASSERT_TRUE(t_->RunUntil([&] { return !got.empty(); }));
    EXPECT_EQ(got, "new");
    EXPECT_FALSE(old_called);
    EXPECT_EQ(fresh.stats().bytes_read, 3u);
    close(peer_);
    peer_ = -1;
  }
}

// The loop closes with operations still in the kernel (streams destroyed without the
// loop running again, and one stream still alive): the poller cancels them and frees
// their buffers (LSan), and the late stream's destruction touches no freed poller.
TEST_F(IOStreamCompletionTest, ClosingTheLoopWithOperationsInFlightFreesEverything) {
  std::vector<std::unique_ptr<IOStream>> streams;
  std::vector<int> peers;
  for (int i = 0; i < 8; ++i) {
    auto [mine, peer] = SocketPair();
    peers.push_back(peer);
    streams.push_back(std::make_unique<IOStream>(t_->loop(), mine));
    ASSERT_TRUE(streams.back()->Write(std::string(1 << 20, 'z')).ok());
    streams.back()->ReadBytes(10, [](absl::StatusOr<std::string>) {});
  }
  for (int i = 0; i < 3; ++i) t_->RunOnce();
  for (int i = 0; i < 7; ++i) streams[i].reset();  // Cancels, not yet reaped.
  ASSERT_TRUE(t_->loop()->Close().ok());
  EXPECT_EQ(t_->loop()->completion_io(), nullptr);
  streams[7].reset();  // After Close(): nothing left to cancel; closes its fd.
  for (int peer : peers) {
    EXPECT_TRUE(PeerSeesEof(peer));
    close(peer);
  }
}

TEST_F(IOStreamCompletionTest, UseCompletionsFalseKeepsTheReadinessPath) {
  IOStream::Options options;
  options.use_completions = false;
  auto stream = MakeStream(options);
  ASSERT_TRUE(stream->Write("direct").ok());
  EXPECT_FALSE(stream->Writing()) << "the readiness path sends inside Write()";
  EXPECT_EQ(ReadAvailable(peer_), "direct");
  ASSERT_TRUE(WriteAll(peer_, "back\n"));
  std::string line;
  stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { line = s.value(); });
  ASSERT_TRUE(t_->RunUntil([&] { return !line.empty(); }));
  EXPECT_EQ(line, "back\n");
}

TEST_F(IOStreamCompletionTest, ManyEchoesRoundTripInOrder) {
  auto stream = MakeStream();
  IOStream* s = stream.get();
  int echoed = 0;
  std::function<void()> next = [&] {
    s->ReadUntil("\n", [&](absl::StatusOr<std::string> line) {
      ASSERT_TRUE(line.ok()) << line.status();
      ASSERT_TRUE(s->Write(*line).ok());
      ++echoed;
      next();
    });
  };
  next();
  std::string expected, got;
  for (int i = 0; i < 200; ++i) expected += "message " + std::to_string(i) + "\n";
  ASSERT_TRUE(WriteAll(peer_, expected));
  fcntl(peer_, F_SETFL, fcntl(peer_, F_GETFL) | O_NONBLOCK);
  ASSERT_TRUE(t_->RunUntil([&] {
    got += ReadAvailable(peer_);
    return got.size() >= expected.size();
  }));
  EXPECT_EQ(got, expected);
  EXPECT_EQ(echoed, 200);
  EXPECT_LT(s->stats().write_calls, 200u) << "queued echoes share sends";
}

}  // namespace
}  // namespace ioloop
