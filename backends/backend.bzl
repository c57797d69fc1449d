"""ioloop_backend(): one backend's target, the same shape for every backend."""

load("//bazel:build_defs.bzl", "ioloop_cc_library")

def ioloop_backend(name, deps = [], target_compatible_with = None):
    """Declares //backends/<name>: the public factory, from <name>_poller.{h,cc}.

    Which backend is the build's default is decided in one place, //backends:default.
    """
    compat = {"target_compatible_with": target_compatible_with} if target_compatible_with else {}
    ioloop_cc_library(
        name = name,
        srcs = [name + "_poller.cc"],
        hdrs = [name + "_poller.h"],
        visibility = ["//visibility:public"],
        deps = [
            "//backends:poller",
            "//backends/internal:backend_util",
            "//backends/internal:fd_table",
            "//base:errno_status",
            "@com_google_absl//absl/status:statusor",
        ] + deps,
        **compat
    )
