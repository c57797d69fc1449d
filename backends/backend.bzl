"""ioloop_backend(): one backend's targets, the same shape for every backend."""

load("//bazel:build_defs.bzl", "ioloop_cc_library")

def ioloop_backend(name, deps = [], as_default_deps = [], target_compatible_with = None):
    """Declares one backend's targets.

    //backends/<name> is public (the factory); :as_default is private (the shim
    //backends:default links when this backend is the build's default).

    Sources follow the folder convention: <name>_poller.{h,cc} and as_default.cc.
    as_default_deps: what the shim needs besides the backend (e.g. a fallback backend).
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
            "@com_google_absl//absl/status:statusor",
        ] + deps,
        **compat
    )
    ioloop_cc_library(
        name = "as_default",
        srcs = ["as_default.cc"],
        visibility = ["//backends:__pkg__"],
        deps = [
            ":" + name,
            "//backends:default_poller_header",
            "//backends/internal:backend_util",
        ] + as_default_deps,
        **compat
    )
