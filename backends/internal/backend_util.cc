#include "backends/internal/backend_util.h"

#include <fcntl.h>

#include <climits>

#include "absl/strings/str_cat.h"

namespace ioloop::backend_internal {

absl::Status CheckArguments(absl::string_view backend, absl::string_view call, int fd,
                            EventMask events) {
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(backend, ": ", call, " fd ", fd, ": negative fd"));
  }
  if (events & ~kAllEvents) {
    return absl::InvalidArgumentError(absl::StrCat(backend, ": ", call, " fd ", fd,
                                                   ": unknown event bits 0x",
                                                   absl::Hex(events & ~kAllEvents)));
  }
  return absl::OkStatus();
}

absl::Status NotRegistered(absl::string_view backend, absl::string_view call, int fd) {
  return absl::NotFoundError(absl::StrCat(backend, ": ", call, " fd ", fd, ": not registered"));
}

absl::Status AlreadyRegistered(absl::string_view backend, int fd) {
  return absl::AlreadyExistsError(
      absl::StrCat(backend, ": Register fd ", fd, ": already registered"));
}

bool IsOpen(int fd) { return fcntl(fd, F_GETFD) >= 0; }

int TimeoutMillis(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return -1;
  if (timeout <= absl::ZeroDuration()) return 0;
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)));
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

}  // namespace ioloop::backend_internal
