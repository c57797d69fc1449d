#include <cstdio>
#include <cstdlib>

#include "fuzz/fuzz_input.h"

namespace ioloop::fuzz {

void Violation(const char* what) {
  std::fprintf(stderr, "model property violated: %s\n", what);
  std::abort();
}

}  // namespace ioloop::fuzz
