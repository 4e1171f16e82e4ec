"""A select() key made of other select() keys, using only Buck2 builtins.

`protobuf_toolchains` needs one key per canonical platform (an os and a cpu at once). It
cannot call the prelude's `config_setting`: loaded from a `protobuf` cell beside Meta's
prelude, these files see only builtins. This rule is the same idea in a few lines, and works
with either prelude's `prelude//os:*` and `prelude//cpu:*` (constraint values or config
settings alike, since both carry a ConfigurationInfo).
"""

def _platform_setting_impl(ctx: AnalysisContext) -> list[Provider]:
    constraints = {}
    values = {}
    for setting in ctx.attrs.settings:
        info = setting[ConfigurationInfo]
        constraints.update(info.constraints)
        values.update(info.values)
    return [DefaultInfo(), ConfigurationInfo(constraints = constraints, values = values)]

platform_setting = rule(
    impl = _platform_setting_impl,
    attrs = {
        "settings": attrs.list(
            attrs.dep(providers = [ConfigurationInfo]),
            doc = "Keys that must all match, e.g. `prelude//os:linux` and `prelude//cpu:x86_64`.",
        ),
    },
    is_configuration_rule = True,
    doc = "Matches when every one of `settings` matches.",
)
