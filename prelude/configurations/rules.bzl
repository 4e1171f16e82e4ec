"""The configuration rules Buck2 leaves to the prelude.

Buck2 has no built-in `constraint_setting`, `constraint_value`, `config_setting` or
`platform`: a repository that ships its own prelude must define them, or `select()` has no
keys and `prelude//os:linux` does not exist. These follow the attribute names of Meta's
prelude so that BUCK files written for either prelude read the same:

```python
constraint_setting(name = "os")
constraint_value(name = "linux", constraint_setting = ":os")
config_setting(name = "linux-x86_64", constraint_values = ["//os:linux", "//cpu:x86_64"])
platform(name = "linux-x86_64", constraint_values = ["//os:linux", "//cpu:x86_64"])
```
"""

def configuration_union(infos: list) -> ConfigurationInfo:
    """Merges configurations; a later constraint for the same setting wins, as in `platform`."""
    constraints = {}
    values = {}
    for info in infos:
        constraints.update(info.constraints)
        values.update(info.values)
    return ConfigurationInfo(constraints = constraints, values = values)

def _constraint_setting_impl(ctx: AnalysisContext) -> list[Provider]:
    return [DefaultInfo(), ConstraintSettingInfo(label = ctx.label.raw_target())]

constraint_setting = rule(
    impl = _constraint_setting_impl,
    attrs = {},
    is_configuration_rule = True,
    doc = "A dimension of configuration, such as the operating system or the CPU.",
)

def _constraint_value_impl(ctx: AnalysisContext) -> list[Provider]:
    value = ConstraintValueInfo(
        setting = ctx.attrs.constraint_setting[ConstraintSettingInfo],
        label = ctx.label.raw_target(),
    )
    return [
        DefaultInfo(),
        value,
        # A constraint value is also a configuration, so that it can be a select() key.
        ConfigurationInfo(constraints = {value.setting.label: value}, values = {}),
    ]

constraint_value = rule(
    impl = _constraint_value_impl,
    attrs = {
        "constraint_setting": attrs.dep(
            providers = [ConstraintSettingInfo],
            doc = "The `constraint_setting` this value is one choice of.",
        ),
    },
    is_configuration_rule = True,
    doc = "One choice of a `constraint_setting`, such as `linux` for `os`.",
)

def _config_setting_impl(ctx: AnalysisContext) -> list[Provider]:
    infos = [dep[ConfigurationInfo] for dep in ctx.attrs.constraint_values]
    infos.append(ConfigurationInfo(constraints = {}, values = ctx.attrs.values))
    return [DefaultInfo(), configuration_union(infos)]

config_setting = rule(
    impl = _config_setting_impl,
    attrs = {
        "constraint_values": attrs.list(
            attrs.dep(providers = [ConfigurationInfo]),
            default = [],
            doc = "Constraint values (or other config settings) that must all hold.",
        ),
        "values": attrs.dict(
            attrs.string(),
            attrs.string(),
            default = {},
            doc = "`section.key` buckconfig values that must match.",
        ),
    },
    is_configuration_rule = True,
    doc = "A select() key: matches when every listed constraint and value holds.",
)

def _platform_impl(ctx: AnalysisContext) -> list[Provider]:
    infos = [dep[PlatformInfo].configuration for dep in ctx.attrs.deps]
    infos.extend([dep[ConfigurationInfo] for dep in ctx.attrs.constraint_values])
    return [
        DefaultInfo(),
        PlatformInfo(label = str(ctx.label.raw_target()), configuration = configuration_union(infos)),
    ]

platform = rule(
    impl = _platform_impl,
    attrs = {
        "constraint_values": attrs.list(
            attrs.dep(providers = [ConfigurationInfo]),
            default = [],
            doc = "The constraint values this platform has; later ones override `deps`.",
        ),
        "deps": attrs.list(
            attrs.dep(providers = [PlatformInfo]),
            default = [],
            doc = "Platforms whose constraints this one starts from.",
        ),
    },
    is_configuration_rule = True,
    doc = "A target platform: a named set of constraint values to configure targets with.",
)
