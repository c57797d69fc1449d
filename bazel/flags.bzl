"""Build settings (Bazel 4.2.3 has no built-in Starlark flags and this workspace has
no Skylib)."""

def _bool_flag_impl(_ctx):
    return []

bool_flag = rule(
    implementation = _bool_flag_impl,
    build_setting = config.bool(flag = True),
    doc = "A boolean command-line flag, matched by config_setting's flag_values.",
)
