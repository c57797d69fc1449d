// RealBackends(): the names of every real poller backend this build has, for tests
// parameterised over backends (INSTANTIATE_TEST_SUITE_P(..., ValuesIn(RealBackends()))).
// Test-only. Thread-safe.

#ifndef IOLOOP_TESTING_BACKENDS_H_
#define IOLOOP_TESTING_BACKENDS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "backends/default_poller.h"

namespace ioloop::testing {

inline std::vector<std::string> RealBackends() {
  std::vector<std::string> names;
  for (absl::string_view name : AvailablePollers()) names.emplace_back(name);
  return names;
}

}  // namespace ioloop::testing

#endif  // IOLOOP_TESTING_BACKENDS_H_
