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

def _availability_impl(ctx: AnalysisContext) -> list[Provider]:
    if ctx.attrs.available:
        # No constraints: matches every platform.
        return [DefaultInfo(), ConfigurationInfo(constraints = {}, values = {})]

    # A constraint no platform has, keyed by this target: whatever requires it is
    # incompatible everywhere, and Buck2's message names this target.
    label = ctx.label.raw_target()
    value = ConstraintValueInfo(setting = ConstraintSettingInfo(label = label), label = label)
    return [DefaultInfo(), value, ConfigurationInfo(constraints = {label: value}, values = {})]

availability = rule(
    impl = _availability_impl,
    attrs = {
        "available": attrs.bool(doc = "True: matches every platform; false: matches none."),
    },
    is_configuration_rule = True,
    doc = "A `target_compatible_with` key that holds everywhere or nowhere: " +
          "`toolchains//:<tool>-pinned` says whether the pins file pins <tool> at all, so the " +
          "targets that need it are skipped by `buck2 build //...` instead of failing.",
)
