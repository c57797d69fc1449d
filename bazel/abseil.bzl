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
    "absl/flags": {
        "flag": [
            "absl_flags_internal",
            "absl_flags_marshalling",
            "absl_flags_reflection",
            "absl_flags_config",
            "absl_flags_program_name",
            "absl_flags_private_handle_accessor",
            "absl_flags_commandlineflag",
            "absl_flags_commandlineflag_internal",
            "absl_synchronization",
        ],
        "parse": [
            "absl_flags_parse",
            "absl_flags_usage",
            "absl_flags_usage_internal",
            "absl_flags_internal",
            "absl_flags_reflection",
        ],
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
        "cord": [
            "absl_cord",
            "absl_cord_internal",
            "absl_cordz_info",
            "absl_cordz_handle",
            "absl_cordz_functions",
            "absl_strings",
        ],
        "str_format": ["absl_str_format_internal"],
        "strings": ["absl_strings", "absl_throw_delegate"],
    },
    "absl/synchronization": {"synchronization": ["absl_synchronization"]},
    "absl/time": {"time": ["absl_time", "absl_time_zone", "absl_civil_time"]},
    "absl/types": {
        "optional": [],
        "span": [],
    },
}
