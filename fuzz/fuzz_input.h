// FuzzInput: reads small integers from a fuzzer's byte string; past the end it
// yields zeros, so every input is a valid program.

#ifndef IOLOOP_FUZZ_FUZZ_INPUT_H_
#define IOLOOP_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>

namespace ioloop::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  // Below(n): a value in [0, n).
  uint32_t Below(uint32_t n) { return n == 0 ? 0 : Byte() % n; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Check(): a broken model property; aborts so both libFuzzer and the corpus runner
// report it with the input that caused it.
[[noreturn]] void Violation(const char* what);
#define IOLOOP_FUZZ_CHECK(condition)                         \
  do {                                                       \
    if (!(condition)) ::ioloop::fuzz::Violation(#condition); \
  } while (false)

}  // namespace ioloop::fuzz

#endif  // IOLOOP_FUZZ_FUZZ_INPUT_H_
