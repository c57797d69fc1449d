"""ioloop_deps(): every external repository ioloop needs, answered from this machine.

The repositories keep their upstream names and labels (@com_google_absl//absl/time,
@com_google_googletest//:gtest, ...), so a workspace with network access can declare the
real archives first and these declarations step aside: each one is made only if no
repository of that name exists yet.

Nothing here downloads. The libraries come from Debian packages (see
bazel/debian-packages.txt; ./bazelw installs them), and the repositories that Bazel
4.2.3's built-in WORKSPACE suffix would otherwise fetch (rules_cc, rules_java,
remote_coverage_tools, platforms) are answered locally.
"""

load(":abseil.bzl", "ABSEIL_COMPONENTS")
load(":system_libs.bzl", "system_library_repository")

_NATIVE_CC = """# Hands on Bazel's native C++ rules; stands in for rules_cc offline.
cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
fdo_prefetch_hints = native.fdo_prefetch_hints
fdo_profile = native.fdo_profile
objc_import = native.objc_import
objc_library = native.objc_library
"""

_NATIVE_JAVA = """# Hands on Bazel's native Java rules; stands in for rules_java offline.
java_binary = native.java_binary
java_import = native.java_import
java_library = native.java_library
java_plugin = native.java_plugin
java_runtime = native.java_runtime
java_test = native.java_test
java_toolchain = native.java_toolchain
java_package_configuration = native.java_package_configuration
"""

def _native_rules_impl(ctx):
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)
    ctx.file("BUILD", "")
    ctx.file(ctx.attr.package + "/BUILD", "")
    ctx.file(ctx.attr.package + "/defs.bzl", ctx.attr.defs)

_native_rules = repository_rule(
    implementation = _native_rules_impl,
    attrs = {"package": attr.string(), "defs": attr.string()},
    doc = "A rules_cc/rules_java stand-in whose defs.bzl re-exports the native rules.",
)

def _coverage_tools_impl(ctx):
    ctx.file("WORKSPACE", "workspace(name = \"remote_coverage_tools\")\n")
    ctx.file("BUILD", """# Coverage is unavailable offline; these let `bazel test` resolve the labels.
filegroup(name = "coverage_report_generator", visibility = ["//visibility:public"])
filegroup(name = "lcov_merger", visibility = ["//visibility:public"])
""")

_coverage_tools = repository_rule(implementation = _coverage_tools_impl)

def _googletest_impl(ctx):
    root = ctx.attr.source_dir
    if not ctx.path(root + "/googletest/src/gtest-all.cc").exists:
        fail("GoogleTest sources not found in %s: install the Debian package `googletest` (./bazelw does)." % root)
    for d in ["googletest", "googlemock"]:
        ctx.symlink(root + "/" + d, d)
    ctx.file("WORKSPACE", "workspace(name = \"com_google_googletest\")\n")
    ctx.file("BUILD", """# GoogleTest and gMock built from Debian's sources (package `googletest`).
cc_library(
    name = "gtest",
    srcs = [
        "googletest/src/gtest-all.cc",
        "googlemock/src/gmock-all.cc",
    ],
    hdrs = glob([
        "googletest/include/**/*.h",
        "googlemock/include/**/*.h",
    ]),
    textual_hdrs = glob([
        "googletest/src/*.cc",
        "googletest/src/*.h",
        "googlemock/src/*.cc",
    ], exclude = [
        "googletest/src/gtest-all.cc",
        "googlemock/src/gmock-all.cc",
        "googletest/src/gtest_main.cc",
        "googlemock/src/gmock_main.cc",
    ]),
    copts = ["-w"],
    includes = [
        "googlemock",
        "googlemock/include",
        "googletest",
        "googletest/include",
    ],
    linkopts = ["-pthread"],
    visibility = ["//visibility:public"],
)

cc_library(
    name = "gtest_main",
    srcs = ["googlemock/src/gmock_main.cc"],
    copts = ["-w"],
    deps = [":gtest"],
    visibility = ["//visibility:public"],
)
""")

_googletest = repository_rule(
    implementation = _googletest_impl,
    attrs = {"source_dir": attr.string(default = "/usr/src/googletest")},
)

def _maybe(rule, name, **kwargs):
    if name not in native.existing_rules():
        rule(name = name, **kwargs)

def ioloop_deps():
    """Declares every repository ioloop needs that is not declared already."""
    _maybe(_native_rules, "rules_cc", package = "cc", defs = _NATIVE_CC)
    _maybe(_native_rules, "rules_java", package = "java", defs = _NATIVE_JAVA)
    _maybe(_coverage_tools, "remote_coverage_tools")
    _maybe(
        native.local_repository,
        "platforms",
        path = "/usr/share/bazel/platforms",
    )
    _maybe(
        system_library_repository,
        "com_google_absl",
        probe = "/usr/include/absl/base/config.h",
        package_hint = "libabsl-dev",
        packages = ABSEIL_COMPONENTS,
    )
    _maybe(_googletest, "com_google_googletest")
    _maybe(
        system_library_repository,
        "com_github_google_benchmark",
        probe = "/usr/include/benchmark/benchmark.h",
        package_hint = "libbenchmark-dev",
        packages = {
            "": {
                "benchmark": ["benchmark"],
                "benchmark_main": ["benchmark_main", "benchmark"],
            },
        },
    )
    _maybe(
        system_library_repository,
        "com_github_libevent_libevent",
        probe = "/usr/include/event2/event.h",
        package_hint = "libevent-dev",
        packages = {"": {
            "libevent": ["event"],
            "libevent_pthreads": ["event_pthreads", "event"],
        }},
    )
    _maybe(
        system_library_repository,
        "liburing",
        probe = "/usr/include/liburing.h",
        package_hint = "liburing-dev",
        packages = {"": {"liburing": ["uring"]}},
        only_on = "linux",
    )
    _maybe(
        system_library_repository,
        "com_github_libuv_libuv",
        probe = "/usr/include/uv.h",
        package_hint = "libuv1-dev",
        packages = {"": {"libuv": ["uv"]}},
    )
