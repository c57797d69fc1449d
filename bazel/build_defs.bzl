"""The project's BUILD macros: every ioloop target is declared through one of these.

They give every package the same compiler options and warnings-as-errors (gRPC's
grpc_cc_library and Envoy's envoy_cc_library do the same), and enforce the naming
and tagging rules: tests are `<x>_test` with a size, benchmarks are `<x>_benchmark`
tagged `benchmark` (so `bazel test //...` skips them), test doubles are testonly.

    load("//bazel:build_defs.bzl", "ioloop_cc_library", "ioloop_cc_test")
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")

# Warnings every target compiles with.
IOLOOP_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
]

# -Werror unless --//bazel:warnings_as_errors=false (a consumer on another compiler
# may need that: --@ioloop//bazel:warnings_as_errors=false).
_WERROR = select({
    "//bazel:warnings_as_errors_on": ["-Werror"],
    "//conditions:default": [],
})

def _copts(copts):
    return IOLOOP_COPTS + _WERROR + copts

def ioloop_cc_library(name, copts = [], **kwargs):
    """A cc_library with the project's copts."""
    cc_library(name = name, copts = _copts(copts), **kwargs)

def ioloop_cc_binary(name, copts = [], **kwargs):
    """A cc_binary with the project's copts."""
    cc_binary(name = name, copts = _copts(copts), **kwargs)

def ioloop_cc_test(name, size, copts = [], **kwargs):
    """A cc_test with the project's copts; named `<x>_test`, with an explicit size."""
    if not name.endswith("_test"):
        fail("ioloop_cc_test %s: test names end in _test" % name)
    cc_test(name = name, size = size, copts = _copts(copts), **kwargs)

def ioloop_sh_test(name, size, **kwargs):
    """An sh_test named `<x>_test`, with an explicit size."""
    if not name.endswith("_test"):
        fail("ioloop_sh_test %s: test names end in _test" % name)
    native.sh_test(name = name, size = size, **kwargs)

def ioloop_cc_benchmark(name, copts = [], tags = [], **kwargs):
    """A benchmark program: `<x>_benchmark`, testonly, tagged `benchmark`.

    `bazel test //...` skips it (.bazelrc filters the tag); bench/compare.sh runs it.
    """
    if not name.endswith("_benchmark"):
        fail("ioloop_cc_benchmark %s: benchmark names end in _benchmark" % name)
    cc_binary(
        name = name,
        testonly = True,
        copts = _copts(copts),
        tags = tags + ["benchmark"],
        **kwargs
    )

def ioloop_test_library(name, copts = [], **kwargs):
    """A test double or test helper library: always testonly."""
    cc_library(name = name, testonly = True, copts = _copts(copts), **kwargs)
