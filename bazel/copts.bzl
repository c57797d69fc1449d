"""Compiler options shared by every ioloop target (one place, not per BUILD file)."""

IOLOOP_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
]

# Tests and benchmarks use the same warnings; gtest macros trip -Wsign-compare on
# count comparisons, which the tests spell out with typed literals instead.
IOLOOP_TEST_COPTS = IOLOOP_COPTS
