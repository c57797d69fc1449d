// RefuseIoUringSetupForTesting(): makes this kernel refuse io_uring to the calling
// thread, as a container's seccomp profile does, so tests can check the refusal and
// fallback paths on a kernel that allows io_uring.

#ifndef IOLOOP_BACKENDS_IO_URING_TESTING_REFUSE_IO_URING_H_
#define IOLOOP_BACKENDS_IO_URING_TESTING_REFUSE_IO_URING_H_

namespace ioloop {

// RefuseIoUringSetupForTesting() installs a seccomp filter on the calling thread (and
// the threads it starts afterwards) that fails io_uring_setup() with `error`. It
// cannot be undone: call it on a thread or in a process made for the purpose. Returns
// false if this system does not let the process install the filter.
bool RefuseIoUringSetupForTesting(int error);

}  // namespace ioloop

#endif  // IOLOOP_BACKENDS_IO_URING_TESTING_REFUSE_IO_URING_H_
