"""The --//backends:poller build setting (Bazel 4.2.3 has no built-in string flag)."""

POLLER_CHOICES = ["auto", "epoll", "io_uring", "kqueue", "poll", "select"]

def _poller_flag_impl(ctx):
    if ctx.build_setting_value not in POLLER_CHOICES:
        fail("--%s=%s: choose one of %s" % (ctx.label, ctx.build_setting_value, ", ".join(POLLER_CHOICES)))
    return [ctx.attr.library[CcInfo]]

# The public contract names both the Poller library and the backend flag
# //backends:poller. One target can be both: this rule is the string build setting,
# and it forwards the C++ library it wraps, so `deps = ["//backends:poller"]` works.
poller_flag = rule(
    implementation = _poller_flag_impl,
    build_setting = config.string(flag = True),
    attrs = {"library": attr.label(mandatory = True, providers = [CcInfo])},
    doc = "The Poller interface library, and the flag choosing NewDefaultPoller()'s backend.",
)

# The operating systems where kqueue exists (NetBSD has no constraint in Debian's
# copy of @platforms).
KQUEUE_OS = ["macos", "freebsd", "openbsd"]
