"""The Abseil targets ioloop offers under their upstream labels, mapped to Debian's libraries.

Header-only components link nothing. Add a component here before depending on it.
"""

ABSEIL_COMPONENTS = {
    "absl/base": {
        "base": ["absl_base", "absl_raw_logging_internal", "absl_spinlock_wait"],
        "core_headers": [],
        "log_severity": ["absl_log_severity"],
    },
    "absl/cleanup": {"cleanup": []},
    "absl/container": {
        "fixed_array": [],
        "flat_hash_map": ["absl_raw_hash_set", "absl_hash"],
        "flat_hash_set": ["absl_raw_hash_set", "absl_hash"],
        "inlined_vector": [],
    },
    "absl/debugging": {
        "stacktrace": ["absl_stacktrace"],
        "symbolize": ["absl_symbolize"],
    },
    "absl/functional": {
        "any_invocable": [],
        "bind_front": [],
        "function_ref": [],
    },
    "absl/memory": {"memory": []},
    "absl/status": {
        "status": ["absl_status"],
        "statusor": ["absl_statusor", "absl_status"],
    },
    "absl/strings": {
        "str_format": ["absl_str_format_internal"],
        "strings": ["absl_strings"],
    },
    "absl/synchronization": {"synchronization": ["absl_synchronization"]},
    "absl/time": {"time": ["absl_time", "absl_time_zone", "absl_civil_time"]},
    "absl/types": {
        "optional": [],
        "span": [],
    },
}
