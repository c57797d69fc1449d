// IOStream on every backend: the fake poller with real sockets (timeouts in zero real
// time) and each real backend of this build.

#include "net/iostream.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ioloop/stack_context.h"
#include "net/tcp_server.h"
#include "net/testing/net_test_loop.h"

namespace ioloop {
namespace {

using net_testing::NetTestLoop;
using net_testing::ReadAvailable;
using net_testing::SocketPair;
using net_testing::TcpPair;
using net_testing::WriteAll;

class IOStreamTest : public ::testing::TestWithParam<std::string> {
 protected:
  IOStreamTest() : t_(GetParam()) {}

  // Makes a stream over one end of a socketpair; peer_ is the other end.
  std::unique_ptr<IOStream> MakeStream(IOStream::Options options = IOStream::Options()) {
    auto [mine, peer] = SocketPair();
    peer_ = peer;
    auto stream = std::make_unique<IOStream>(t_.loop(), mine, options);
    // io_uring runs this suite on the completion path; every other backend on readiness.
    EXPECT_EQ(stream->UsesCompletions(), GetParam() == "io_uring" && options.use_completions);
    return stream;
  }
  void TearDown() override {
    if (peer_ >= 0) close(peer_);
  }
  void ClosePeer() {
    close(peer_);
    peer_ = -1;
  }

  NetTestLoop t_;
  int peer_ = -1;
};

INSTANTIATE_TEST_SUITE_P(Backends, IOStreamTest, ::testing::ValuesIn(net_testing::Backends()),
                         [](const auto& info) { return info.param; });

TEST_P(IOStreamTest, ReadUntilReturnsThroughTheDelimiterInOrder) {
  auto stream = MakeStream();
  ASSERT_TRUE(WriteAll(peer_, "hello\r\nworld\r\nrest"));
  std::vector<std::string> lines;
  std::function<void()> next = [&] {
    stream->ReadUntil("\r\n", [&](absl::StatusOr<std::string> line) {
      ASSERT_TRUE(line.ok()) << line.status();
      lines.push_back(*line);
      if (lines.size() < 2) next();
    });
  };
  next();
  ASSERT_TRUE(t_.RunUntil([&] { return lines.size() == 2; }));
  EXPECT_EQ(lines[0], "hello\r\n");
  EXPECT_EQ(lines[1], "world\r\n");
  EXPECT_EQ(stream->ReadBufferSize(), 4u);  // "rest" waits for the next read.
}

TEST_P(IOStreamTest, DelimiterSplitAcrossArrivalsIsFound) {
  auto stream = MakeStream();
  std::string got;
  stream->ReadUntil("END", [&](absl::StatusOr<std::string> s) { got = s.value(); });
  ASSERT_TRUE(WriteAll(peer_, "abcE"));
  t_.RunUntil([&] { return stream->ReadBufferSize() == 4; });
  ASSERT_TRUE(WriteAll(peer_, "N"));
  t_.RunUntil([&] { return stream->ReadBufferSize() == 5; });
  EXPECT_TRUE(got.empty());
  ASSERT_TRUE(WriteAll(peer_, "Dxyz"));
  ASSERT_TRUE(t_.RunUntil([&] { return !got.empty(); }));
  EXPECT_EQ(got, "abcEND");
}

TEST_P(IOStreamTest, ReadBytesExactPartialAndStreaming) {
  auto stream = MakeStream();
  ASSERT_TRUE(WriteAll(peer_, "0123456789"));
  std::string exact, partial, streamed;
  bool done = false;
  stream->ReadBytes(4, [&](absl::StatusOr<std::string> s) {
    exact = s.value();
    stream->ReadBytes(
        100,
        [&](absl::StatusOr<std::string> s) {
          partial = s.value();
          stream->ReadBytes(
              5, [&](absl::string_view chunk) { streamed.append(chunk.data(), chunk.size()); },
              [&](absl::Status s) {
                EXPECT_TRUE(s.ok()) << s;
                done = true;
              });
          ASSERT_TRUE(WriteAll(peer_, "ab"));
          ASSERT_TRUE(WriteAll(peer_, "cdefg"));
        },
        /*partial=*/true);
  });
  ASSERT_TRUE(t_.RunUntil([&] { return done; }));
  EXPECT_EQ(exact, "0123");
  EXPECT_EQ(partial, "456789");
  EXPECT_EQ(streamed, "abcde");
  ASSERT_TRUE(t_.RunUntil([&] { return stream->ReadBufferSize() == 2; }));  // "fg" stays.
}

TEST_P(IOStreamTest, ReadBytesZeroCompletesButNeverInsideTheCall) {
  auto stream = MakeStream();
  bool done = false;
  stream->ReadBytes(0, [&](absl::StatusOr<std::string> s) {
    EXPECT_EQ(s.value(), "");
    done = true;
  });
  EXPECT_FALSE(done) << "completed inside ReadBytes()";
  ASSERT_TRUE(t_.RunUntil([&] { return done; }));
}

TEST_P(IOStreamTest, ReadUntilCloseGetsEverythingThenTheCloseCallback) {
  auto stream = MakeStream();
  std::vector<std::string> order;
  stream->SetCloseCallback([&] { order.push_back("close"); });
  stream->ReadUntilClose([&](absl::StatusOr<std::string> s) {
    ASSERT_TRUE(s.ok()) << s.status();
    order.push_back(*s);
  });
  ASSERT_TRUE(WriteAll(peer_, std::string(200000, 'x')));
  ClosePeer();
  ASSERT_TRUE(t_.RunUntil([&] { return order.size() == 2; }));
  EXPECT_EQ(order[0], std::string(200000, 'x'));
  EXPECT_EQ(order[1], "close");
  EXPECT_EQ(stream->Error().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(stream->Closed());
}

TEST_P(IOStreamTest, StreamingReadUntilCloseDeliversChunksThenOk) {
  auto stream = MakeStream();
  std::string all;
  bool done = false;
  stream->ReadUntilClose([&](absl::string_view chunk) { all.append(chunk.data(), chunk.size()); },
                         [&](absl::Status s) {
                           EXPECT_TRUE(s.ok()) << s;
                           done = true;
                         });
  const std::string data(150000, 'q');
  ASSERT_TRUE(WriteAll(peer_, data));
  ClosePeer();
  ASSERT_TRUE(t_.RunUntil([&] { return done; }));
  EXPECT_EQ(all, data);
  EXPECT_EQ(stream->stats().bytes_copied, 0u) << "streaming reads hand out views";
}

// A chunk callback may do what needs the stream's completion machinery: a write with a
// callback, a write the kernel cannot take whole (queued, then flushed on writability),
// a close. Each chunk arrives alone, so each takes the streaming hot path first.
TEST_P(IOStreamTest, ChunkCallbackMayWriteWithACallbackQueueOrClose) {
  auto stream = MakeStream();
  IOStream* s = stream.get();
  const std::string big(2 << 20, 'w');
  int chunks = 0;
  bool flushed = false;
  bool done = false;
  bool closed = false;
  absl::Status done_status = absl::UnknownError("not yet");
  s->SetCloseCallback([&] {
    EXPECT_TRUE(done) << "the read completes before the close callback";
    closed = true;
  });
  s->ReadUntilClose(
      [&](absl::string_view chunk) {
        switch (++chunks) {
          case 1:
            EXPECT_TRUE(s->Write(chunk, [&](absl::Status st) { flushed = st.ok(); }).ok());
            break;
          case 2:
            EXPECT_TRUE(s->Write(big).ok());
            EXPECT_TRUE(s->Writing()) << "2 MiB do not fit a socket buffer";
            break;
          default:
            s->Close();
            break;
        }
      },
      [&](absl::Status st) {
        done_status = st;
        done = true;
      });
  std::string got;
  ASSERT_TRUE(WriteAll(peer_, "one"));
  ASSERT_TRUE(t_.RunUntil([&] {
    got += ReadAvailable(peer_);
    return flushed && got == "one";
  }));
  ASSERT_TRUE(WriteAll(peer_, "two"));
  ASSERT_TRUE(t_.RunUntil([&] {
    got += ReadAvailable(peer_);
    return chunks == 2 && !s->Writing() && got.size() == 3 + big.size();
  }));
  EXPECT_EQ(got.substr(3), big);
  ASSERT_TRUE(WriteAll(peer_, "three"));
  ASSERT_TRUE(t_.RunUntil([&] { return closed; }));
  EXPECT_EQ(chunks, 3);
  EXPECT_TRUE(done_status.ok()) << done_status;
  EXPECT_EQ(s->stats().bytes_written, 3 + big.size());
}

TEST_P(IOStreamTest, PendingReadAtPeerCloseFailsNamingTheCauseAndDataStaysReadable) {
  auto stream = MakeStream();
  std::vector<std::string> order;
  absl::Status failure;
  stream->SetCloseCallback([&] { order.push_back("close"); });
  stream->ReadBytes(10, [&](absl::StatusOr<std::string> s) {
    failure = s.status();
    order.push_back("read");
  });
  ASSERT_TRUE(WriteAll(peer_, "abc"));
  ClosePeer();
  ASSERT_TRUE(t_.RunUntil([&] { return order.size() == 2; }));
  EXPECT_EQ(order, (std::vector<std::string>{"read", "close"}));
  EXPECT_EQ(failure.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(failure.message().find("ReadBytes(10)"), std::string::npos) << failure;
  EXPECT_NE(failure.message().find("3 bytes buffered"), std::string::npos) << failure;
  EXPECT_NE(failure.message().find("EOF"), std::string::npos) << failure;
  // Buffered data is not lost to the close: a read it satisfies still completes.
  std::string rest;
  stream->ReadBytes(3, [&](absl::StatusOr<std::string> s) { rest = s.value(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !rest.empty(); }));
  EXPECT_EQ(rest, "abc");
}

TEST_P(IOStreamTest, DataBeforeEofIsDeliveredBeforeTheCloseCallback) {
  auto stream = MakeStream();
  std::vector<std::string> order;
  stream->SetCloseCallback([&] { order.push_back("close"); });
  std::function<void()> next = [&] {
    stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) {
      order.push_back(s.ok() ? *s : "error");
      if (s.ok()) next();
    });
  };
  next();
  ASSERT_TRUE(WriteAll(peer_, "a\nb\nc\n"));
  ClosePeer();
  ASSERT_TRUE(t_.RunUntil([&] { return !order.empty() && order.back() == "close"; }));
  EXPECT_EQ(order, (std::vector<std::string>{"a\n", "b\n", "c\n", "error", "close"}));
}

TEST_P(IOStreamTest, CloseCompletesThePendingReadWithCancelledNeverInsideClose) {
  auto stream = MakeStream();
  absl::Status read_status;
  bool closed = false;
  stream->SetCloseCallback([&] { closed = true; });
  stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { read_status = s.status(); });
  stream->Close();
  EXPECT_TRUE(stream->Closed());
  EXPECT_TRUE(read_status.ok()) << "completed inside Close()";
  EXPECT_FALSE(closed);
  ASSERT_TRUE(t_.RunUntil([&] { return closed; }));
  EXPECT_EQ(read_status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(stream->Error().code(), absl::StatusCode::kCancelled);
  char c;
  EXPECT_EQ(read(peer_, &c, 1), 0) << "the peer sees the close";
}

TEST_P(IOStreamTest, ReadUntilOverMaxBytesReportsAndKeepsTheStreamOpen) {
  auto stream = MakeStream();
  absl::Status status;
  bool called = false;
  stream->ReadUntil(
      "\n",
      [&](absl::StatusOr<std::string> s) {
        status = s.status();
        called = true;
      },
      /*max_bytes=*/8);
  ASSERT_TRUE(WriteAll(peer_, "0123456789\n"));
  ASSERT_TRUE(t_.RunUntil([&] { return called; }));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("max_bytes 8"), std::string::npos) << status;
  EXPECT_FALSE(stream->Closed()) << "a limit is reported, not enforced by closing (#2507)";
  std::string rest;
  stream->ReadBytes(11, [&](absl::StatusOr<std::string> s) { rest = s.value(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !rest.empty(); }));
  EXPECT_EQ(rest, "0123456789\n");
}

TEST_P(IOStreamTest, DelimiterWithinMaxBytesIsAccepted) {
  auto stream = MakeStream();
  std::string got;
  stream->ReadUntil(
      "\n", [&](absl::StatusOr<std::string> s) { got = s.value(); }, 4);
  ASSERT_TRUE(WriteAll(peer_, "abc\nzzzzzzzz"));
  ASSERT_TRUE(t_.RunUntil([&] { return !got.empty(); }));
  EXPECT_EQ(got, "abc\n");
}

TEST_P(IOStreamTest, TwoByteReadDoesNotDrainTheSocket) {
  IOStream::Options options;
  options.read_chunk_size = 4096;
  auto stream = MakeStream(options);
  // Non-blocking peer: fill the socket as far as the kernel takes.
  fcntl(peer_, F_SETFL, fcntl(peer_, F_GETFL) | O_NONBLOCK);
  const std::string chunk(65536, 'z');
  size_t sent = 0;
  for (ssize_t n; (n = send(peer_, chunk.data(), chunk.size(), MSG_NOSIGNAL)) > 0;) sent += n;
  ASSERT_GT(sent, 4 * options.read_chunk_size);
  std::string got;
  stream->ReadBytes(2, [&](absl::StatusOr<std::string> s) { got = s.value(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !got.empty(); }));
  for (int i = 0; i < 5; ++i) t_.RunOnce();  // Idle: at most one more chunk read ahead.
  EXPECT_EQ(got, "zz");
  EXPECT_LE(stream->stats().bytes_read, 2 * options.read_chunk_size) << "tornado #597/#943";
  int unread = 0;
  ASSERT_EQ(ioctl(stream->fd(), FIONREAD, &unread), 0);
  EXPECT_GE(static_cast<size_t>(unread), sent - 2 * options.read_chunk_size);
}

TEST_P(IOStreamTest, NoPendingReadMeansBackPressureNotBuffering) {
  IOStream::Options options;
  options.read_chunk_size = 1024;
  auto stream = MakeStream(options);
  ASSERT_TRUE(WriteAll(peer_, std::string(100000, 'b')));
  for (int i = 0; i < 20; ++i) t_.RunOnce();
  EXPECT_LE(stream->ReadBufferSize(), options.read_chunk_size);
  if (t_.fake()) {
    EXPECT_EQ(t_.fake_poller()->RegisteredEvents(stream->fd()) & kRead, kNone)
        << "stops watching for reads while nothing is wanted";
  }
  // Nothing was lost: a read gets all of it, in order.
  std::string all;
  stream->ReadBytes(100000, [&](absl::StatusOr<std::string> s) { all = s.value(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !all.empty(); }));
  EXPECT_EQ(all, std::string(100000, 'b'));
}

// Two requests and the EOF arrive together; the server reads the first and answers it
// later, with no read pending meanwhile and the second request buffered. The EOF must
// wait for a read (as it waits in the kernel on the readiness path): the stream stays
// open, the answer goes out, and the next reads get the second request, then the EOF.
TEST_P(IOStreamTest, EofBehindBufferedDataWaitsForARead) {
  auto stream = MakeStream();
  ASSERT_TRUE(WriteAll(peer_, "req1\nreq2\n"));
  ASSERT_EQ(shutdown(peer_, SHUT_WR), 0);  // EOF; the peer still reads the answers.
  std::string first;
  stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { first = s.value(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !first.empty(); }));
  EXPECT_EQ(first, "req1\n");
  for (int i = 0; i < 10; ++i) t_.RunOnce();  // No read pending: "req2\n" stays buffered.
  EXPECT_FALSE(stream->Closed()) << "nothing asked for the EOF yet";
  EXPECT_TRUE(stream->Write("resp1\n").ok()) << "an answer to a request already read";
  std::string second;
  stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { second = s.value(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !second.empty(); }));
  EXPECT_EQ(second, "req2\n");
  absl::Status end;
  stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { end = s.status(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !end.ok(); })) << "the EOF reaches the next read";
  EXPECT_TRUE(stream->Closed());
  std::string answers;
  ASSERT_TRUE(t_.RunUntil([&] {
    answers += ReadAvailable(peer_);
    return answers.size() >= 6;
  }));
  EXPECT_EQ(answers, "resp1\n");
}

// The peer hangs up while the stream, with data buffered and no read pending, watches
// nothing: the level-triggered hang-up must not spin the loop, and the data and the
// EOF still reach the next read.
TEST_P(IOStreamTest, HangUpWhileNotReadingNeitherSpinsNorLosesData) {
  IOStream::Options options;
  options.read_chunk_size = 1000;
  auto stream = MakeStream(options);
  const std::string data(5000, 'h');
  ASSERT_TRUE(WriteAll(peer_, data));
  ClosePeer();
  for (int i = 0; i < 10; ++i) t_.RunOnce();
  EXPECT_LE(stream->ReadBufferSize(), options.read_chunk_size);
  EXPECT_FALSE(stream->Closed()) << "nothing asked for the EOF yet";
  if (t_.fake()) {
    EXPECT_FALSE(t_.fake_poller()->IsRegistered(stream->fd()))
        << "a hang-up on an fd watched for nothing parks it instead of spinning";
  }
  std::string all;
  bool closed = false;
  stream->SetCloseCallback([&] { closed = true; });
  stream->ReadUntilClose([&](absl::StatusOr<std::string> s) { all = s.value(); });
  ASSERT_TRUE(t_.RunUntil([&] { return closed; }));
  EXPECT_EQ(all, data);
}

TEST_P(IOStreamTest, FullBufferFailsTheReadWithResourceExhaustedNotUnboundedMemory) {
  IOStream::Options options;
  options.max_buffer_size = 10000;
  options.read_chunk_size = 4096;
  auto stream = MakeStream(options);
  fcntl(peer_, F_SETFL, fcntl(peer_, F_GETFL) | O_NONBLOCK);
  const std::string flood(200000, 'f');
  (void)!send(peer_, flood.data(), flood.size(), MSG_NOSIGNAL);
  absl::Status status;
  stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { status = s.status(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !status.ok(); }));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_LE(stream->ReadBufferSize(), options.max_buffer_size);
  EXPECT_FALSE(stream->Closed());
  absl::Status too_large;
  stream->ReadBytes(options.max_buffer_size + 1,
                    [&](absl::StatusOr<std::string> s) { too_large = s.status(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !too_large.ok(); }));
  EXPECT_EQ(too_large.code(), absl::StatusCode::kResourceExhausted);
}

TEST_P(IOStreamTest, WriteCallbackRunsOnceEverythingSoFarIsFlushed) {
  auto stream = MakeStream();
  std::vector<int> done;
  ASSERT_TRUE(stream
                  ->Write("one ",
                          [&](absl::Status s) {
                            EXPECT_TRUE(s.ok()) << s;
                            done.push_back(1);
                          })
                  .ok());
  ASSERT_TRUE(stream->Write("two").ok());
  ASSERT_TRUE(stream->Write(absl::Cord(" three"), [&](absl::Status s) { done.push_back(3); }).ok());
  EXPECT_TRUE(done.empty()) << "completed inside Write()";
  ASSERT_TRUE(t_.RunUntil([&] { return done.size() == 2; }));
  EXPECT_EQ(done, (std::vector<int>{1, 3}));
  EXPECT_EQ(ReadAvailable(peer_), "one two three");
}

TEST_P(IOStreamTest, QueuedWritesFlushAsThePeerReads) {
  auto stream = MakeStream();
  const std::string big(2 << 20, 'w');
  bool flushed = false;
  ASSERT_TRUE(stream->Write(big, [&](absl::Status s) { flushed = s.ok(); }).ok());
  EXPECT_TRUE(stream->Writing()) << "2 MiB do not fit a socket buffer";
  std::string got;
  ASSERT_TRUE(t_.RunUntil([&] {
    got += ReadAvailable(peer_);
    return flushed && got.size() == big.size();
  }));
  EXPECT_EQ(got, big);
  EXPECT_FALSE(stream->Writing());
}

TEST_P(IOStreamTest, WriteOverTheBoundFailsAndQueuesNothing) {
  IOStream::Options options;
  options.max_write_buffer_size = 100000;
  auto stream = MakeStream(options);
  ASSERT_TRUE(stream->Write(std::string(1 << 20, 'a')).code() ==
              absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(stream->WriteBufferSize(), 0u);
  // Fill the kernel, then the queue up to the bound.
  size_t accepted = 0;
  absl::Status s;
  while ((s = stream->Write(std::string(10000, 'a'))).ok()) accepted += 10000;
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_GE(accepted, 90000u) << "the queue takes writes up to its bound";
  EXPECT_NE(s.message().find("max_write_buffer_size 100000"), std::string::npos) << s;
  EXPECT_LE(stream->WriteBufferSize(), options.max_write_buffer_size);
  EXPECT_FALSE(stream->Closed()) << "going over is reported to the writer";
}

TEST_P(IOStreamTest, WriteOnAClosedStreamIsFailedPrecondition) {
  auto stream = MakeStream();
  stream->Close();
  bool called = false;
  EXPECT_EQ(stream->Write("x", [&](absl::Status) { called = true; }).code(),
            absl::StatusCode::kFailedPrecondition);
  t_.RunOnce();
  EXPECT_FALSE(called) << "cb runs only when Write() returned OK";
}

TEST_P(IOStreamTest, CloseFailsQueuedWritesAndRunsTheCloseCallbackLast) {
  auto stream = MakeStream();
  std::vector<std::string> order;
  ASSERT_TRUE(stream
                  ->Write(std::string(4 << 20, 'c'),
                          [&](absl::Status s) {
                            order.push_back(
                                absl::StrCat("write ", absl::StatusCodeToString(s.code())));
                          })
                  .ok());
  stream->SetCloseCallback([&] { order.push_back("close"); });
  stream->Close();
  ASSERT_TRUE(t_.RunUntil([&] { return order.size() == 2; }));
  EXPECT_EQ(order, (std::vector<std::string>{"write CANCELLED", "close"}));
}

TEST_P(IOStreamTest, ShutdownWriteHalfClosesAfterTheQueueDrains) {
  auto stream = MakeStream();
  ASSERT_TRUE(stream->Write("last words").ok());
  stream->ShutdownWrite();
  EXPECT_EQ(stream->Write("more").code(), absl::StatusCode::kFailedPrecondition);
  // The completion path (io_uring) sends with the loop's next poll, not inside Write().
  ASSERT_TRUE(t_.RunUntil([&] { return !stream->Writing(); }));
  std::string got;
  char buf[64];
  ssize_t n;
  while ((n = read(peer_, buf, sizeof buf)) > 0) got.append(buf, n);
  EXPECT_EQ(n, 0) << "EOF after the data";
  EXPECT_EQ(got, "last words");
  // The stream still reads.
  ASSERT_TRUE(WriteAll(peer_, "reply\n"));
  std::string reply;
  stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { reply = s.value(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !reply.empty(); }));
  EXPECT_EQ(reply, "reply\n");
}

TEST_P(IOStreamTest, PeerEofFlushesQueuedWritesBeforeClosing) {
  auto stream = MakeStream();
  const std::string big(1 << 20, 'e');
  bool flushed = false, closed = false;
  ASSERT_TRUE(stream->Write(big, [&](absl::Status s) { flushed = s.ok(); }).ok());
  stream->SetCloseCallback([&] { closed = true; });
  shutdown(peer_, SHUT_WR);  // The peer half-closes and goes on reading.
  std::string got;
  ASSERT_TRUE(t_.RunUntil([&] {
    got += ReadAvailable(peer_);
    return closed;
  }));
  got += ReadAvailable(peer_);
  EXPECT_TRUE(flushed);
  EXPECT_EQ(got.size(), big.size());
  EXPECT_EQ(stream->Error().code(), absl::StatusCode::kUnavailable);
}

TEST_P(IOStreamTest, ResetMidStreamClosesWithTheErrno) {
  auto [mine, peer] = TcpPair();
  IOStream stream(t_.loop(), mine);
  absl::Status status;
  bool closed = false;
  stream.SetCloseCallback([&] { closed = true; });
  stream.ReadBytes(1 << 20, [&](absl::StatusOr<std::string> s) { status = s.status(); });
  ASSERT_TRUE(WriteAll(peer, "partial"));
  t_.RunUntil([&] { return stream.ReadBufferSize() == 7; });
  // Leave unread data at the peer, then close with SO_LINGER 0: an RST.
  ASSERT_TRUE(stream.Write("unread by the peer").ok());
  linger hard = {1, 0};
  setsockopt(peer, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  close(peer);
  ASSERT_TRUE(t_.RunUntil([&] { return closed; }));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(stream.Error().message().find("Connection reset"), std::string::npos) << stream.Error();
}

TEST_P(IOStreamTest, CloseFromInsideItsOwnReadCallback) {
  auto stream = MakeStream();
  int close_calls = 0;
  stream->SetCloseCallback([&] { ++close_calls; });
  stream->ReadBytes(1, [&](absl::StatusOr<std::string>) { stream->Close(); });
  ASSERT_TRUE(WriteAll(peer_, "x"));
  ASSERT_TRUE(t_.RunUntil([&] { return close_calls == 1; }));
  for (int i = 0; i < 3; ++i) t_.RunOnce();
  EXPECT_EQ(close_calls, 1);
}

TEST_P(IOStreamTest, DestroyFromInsideEachKindOfCallback) {
  for (int kind = 0; kind < 5; ++kind) {
    SCOPED_TRACE(kind);
    auto stream = MakeStream();
    bool ran = false;
    IOStream* s = stream.get();
    auto destroy = [&] {
      ran = true;
      stream.reset();
    };
    switch (kind) {
      case 0:
        s->ReadBytes(1, [&](absl::StatusOr<std::string>) { destroy(); });
        break;
      case 1:
        s->ReadUntilClose([&](absl::string_view) { destroy(); }, [](absl::Status) {});
        break;
      case 2:
        ASSERT_TRUE(s->Write("w", [&](absl::Status) { destroy(); }).ok());
        break;
      case 3:
        s->SetCloseCallback(destroy);
        s->ReadUntilClose([](absl::StatusOr<std::string>) {});
        ClosePeer();
        break;
      case 4:
        s->ReadUntil("\n", [&](absl::StatusOr<std::string>) { destroy(); });
        s->Close();
        ClosePeer();
        break;
    }
    if (peer_ >= 0) {
      ASSERT_TRUE(WriteAll(peer_, "data\n"));
    }
    ASSERT_TRUE(t_.RunUntil([&] { return ran; }));
    EXPECT_EQ(stream, nullptr);
    for (int i = 0; i < 3; ++i) t_.RunOnce();  // Nothing left behind runs.
    if (peer_ >= 0) ClosePeer();
  }
}

TEST_P(IOStreamTest, DestroyingAStreamDropsPendingCallbacksAndClosesTheFd) {
  auto stream = MakeStream();
  bool called = false;
  stream->ReadBytes(5, [&](absl::StatusOr<std::string>) { called = true; });
  stream->SetCloseCallback([&] { called = true; });
  stream->Close();  // Completions are now scheduled...
  stream.reset();   // ...and dropped with the stream.
  for (int i = 0; i < 3; ++i) t_.RunOnce();
  EXPECT_FALSE(called);
  char c;
  EXPECT_EQ(read(peer_, &c, 1), 0);
}

TEST_P(IOStreamTest, SecondReadWhilePendingIsACheckFailure) {
  EXPECT_DEATH(
      {
        auto stream = MakeStream();
        stream->ReadBytes(1, [](absl::StatusOr<std::string>) {});
        stream->ReadBytes(1, [](absl::StatusOr<std::string>) {});
      },
      "one read at a time");
}

TEST_P(IOStreamTest, ExceptionFromACallbackClosesTheStreamAndReachesItsContext) {
  auto stream = MakeStream();
  std::string caught;
  bool closed = false;
  stream->SetCloseCallback([&] { closed = true; });
  {
    ExceptionStackContext context([&](std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        caught = x.what();
      }
      return false;  // Not handled: the stream closes, the loop reports it.
    });
    stream->ReadBytes(1, [](absl::StatusOr<std::string>) { throw std::runtime_error("boom"); });
  }
  ASSERT_TRUE(WriteAll(peer_, "x"));
  ASSERT_TRUE(t_.RunUntil([&] { return closed; }));
  EXPECT_EQ(caught, "boom");
  EXPECT_EQ(stream->Error().code(), absl::StatusCode::kInternal);
}

TEST_P(IOStreamTest, AnIdleStreamHoldsNoBufferMemory) {
  auto stream = MakeStream();
  std::string got;
  stream->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { got = s.value(); });
  const std::string line = std::string(150000, 'm') + "\n";
  ASSERT_TRUE(WriteAll(peer_, line));
  ASSERT_TRUE(t_.RunUntil([&] { return !got.empty(); }));
  t_.RunOnce();
  EXPECT_EQ(got, line);
  EXPECT_EQ(stream->BufferCapacity(), 0u);
  EXPECT_EQ(stream->ReadBufferSize(), 0u);
}

TEST_P(IOStreamTest, SetNoDelayOnTcpAndErrorOnUnix) {
  auto [mine, peer] = TcpPair();
  IOStream tcp(t_.loop(), mine);
  EXPECT_TRUE(tcp.SetNoDelay(true).ok());
  int value = 0;
  socklen_t len = sizeof value;
  getsockopt(mine, IPPROTO_TCP, TCP_NODELAY, &value, &len);
  EXPECT_EQ(value, 1);
  close(peer);
  auto unix_stream = MakeStream();
  EXPECT_FALSE(unix_stream->SetNoDelay(true).ok());
}

TEST_P(IOStreamTest, ConnectToAServerAndTalk) {
  std::unique_ptr<IOStream> server_side;
  TCPServer server(t_.loop(), [&](std::unique_ptr<IOStream> s, const SocketAddress& peer) {
    EXPECT_EQ(peer.Host(), "127.0.0.1");
    server_side = std::move(s);
  });
  ASSERT_TRUE(server.Listen(0).ok());
  std::unique_ptr<IOStream> client;
  IOStream::Connect(t_.loop(), "127.0.0.1", server.Port(),
                    [&](absl::StatusOr<std::unique_ptr<IOStream>> s) {
                      ASSERT_TRUE(s.ok()) << s.status();
                      client = *std::move(s);
                    });
  ASSERT_TRUE(t_.RunUntil([&] { return client != nullptr && server_side != nullptr; }));
  ASSERT_TRUE(client->Write("ping\n").ok());
  std::string got;
  server_side->ReadUntil("\n", [&](absl::StatusOr<std::string> s) { got = s.value(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !got.empty(); }));
  EXPECT_EQ(got, "ping\n");
}

TEST_P(IOStreamTest, ConnectErrors) {
  absl::Status bad_address, refused;
  IOStream::Connect(t_.loop(), "localhost", 80,
                    [&](absl::StatusOr<std::unique_ptr<IOStream>> s) { bad_address = s.status(); });
  EXPECT_TRUE(bad_address.ok()) << "never inside Connect()";
  // A port nobody listens on: bind one, learn it, close it.
  auto fds = BindSockets(0);
  ASSERT_TRUE(fds.ok());
  const int port = LocalAddress(fds->front())->Port();
  close(fds->front());
  IOStream::Connect(t_.loop(), "127.0.0.1", port,
                    [&](absl::StatusOr<std::unique_ptr<IOStream>> s) { refused = s.status(); });
  ASSERT_TRUE(t_.RunUntil([&] { return !bad_address.ok() && !refused.ok(); }));
  EXPECT_EQ(bad_address.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_address.message().find("not resolved"), std::string::npos);
  EXPECT_NE(refused.message().find("Connection refused"), std::string::npos) << refused;
}

// On the fake poller with nothing ever ready, a connect times out in zero real time.
TEST(IOStreamFakeTest, ConnectTimesOutOnTheFakeClock) {
  NetTestLoop t("fake", /*real_readiness=*/false);
  auto fds = BindSockets(0);
  ASSERT_TRUE(fds.ok());
  const int port = LocalAddress(fds->front())->Port();
  absl::Status status;
  const absl::Time start = t.loop()->Time();
  const absl::Time real_start = absl::Now();
  IOStream::Connect(
      t.loop(), "127.0.0.1", port,
      [&](absl::StatusOr<std::unique_ptr<IOStream>> s) { status = s.status(); }, absl::Seconds(30));
  t.RunFor(absl::Seconds(31));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_GE(t.loop()->Time() - start, absl::Seconds(30));
  EXPECT_LT(absl::Now() - real_start, absl::Seconds(5));
  close(fds->front());
}

TEST(ReadBufferTest, BorrowsThenAdoptsThenFreesWhenEmpty) {
  auto [a, b] = SocketPair();
  stream_internal::ReadBuffer buffer;
  ASSERT_TRUE(WriteAll(b, "hello world"));
  ASSERT_EQ(buffer.Read(a, 4096), 11);
  EXPECT_EQ(buffer.capacity(), 0u) << "borrowed: no heap storage yet";
  buffer.Consume(6);
  buffer.Settle();
  EXPECT_EQ(buffer.View(), "world");
  EXPECT_GT(buffer.capacity(), 0u);
  EXPECT_EQ(buffer.bytes_copied(), 5u);
  ASSERT_TRUE(WriteAll(b, "!!"));
  ASSERT_EQ(buffer.Read(a, 4096), 2);
  EXPECT_EQ(buffer.View(), "world!!");
  buffer.Consume(7);
  buffer.Settle();
  EXPECT_EQ(buffer.capacity(), 0u);
  close(a);
  close(b);
}

}  // namespace
}  // namespace ioloop
