#include "base/errno_status.h"

#include "absl/strings/str_cat.h"

namespace ioloop {

absl::Status ErrnoStatus(int error, absl::string_view what, int fd) {
  return absl::ErrnoToStatus(error, fd >= 0 ? absl::StrCat(what, " fd ", fd) : std::string(what));
}

}  // namespace ioloop
