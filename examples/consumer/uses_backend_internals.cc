// Must not build: backend internals are private to @ioloop//backends.
#include "backends/internal/backend_util.h"
int Unused() { return ioloop::backend_internal::TimeoutMillis(absl::Seconds(1)); }
