//! `provider()`, `provider_field()`, provider instances and Buck2's built-in providers.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::coerce::Coerce;
use starlark::collections::StarlarkHasher;
use starlark::environment::GlobalsBuilder;
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_complex_value;
use starlark::starlark_module;
use starlark::typing::Ty;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::{AllocList, ListRef};
use starlark::values::starlark_value;
use starlark::values::typing::TypeCompiled;
use starlark::values::{
    Freeze, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize, StarlarkValue, Trace, Tracer,
    Value, ValueLike,
};

use crate::cmd_args::CmdArgs;
use crate::util::sl_err;

static NEXT_ID: AtomicU64 = AtomicU64::new(1000);

/// The identity of a provider type: two `provider()` calls never share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderId {
    pub id: u64,
    pub name: String,
}

/// Built-in providers, whose constructors check more than field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Allocative)]
pub enum Builtin {
    DefaultInfo,
    RunInfo,
    ExternalRunnerTestInfo,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Allocative)]
enum BuiltinDefault {
    Required,
    None,
    List,
    Dict,
    False,
}

#[derive(Debug, Allocative)]
#[repr(C)]
pub struct FieldGen<V> {
    pub name: String,
    /// A type expression; `None` accepts anything.
    pub ty: Option<V>,
    /// `None` makes the field required.
    pub default: Option<V>,
}

#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct ProviderCallableGen<V> {
    pub id: u64,
    #[allocative(skip)]
    name: OnceLock<String>,
    pub fields: Vec<FieldGen<V>>,
    pub builtin: Builtin,
}

// SAFETY: `Value` and `FrozenValue` have the same representation; the struct is `repr(C)`.
unsafe impl<'v> Coerce<ProviderCallableGen<Value<'v>>> for ProviderCallableGen<FrozenValue> {}

starlark_complex_value!(pub ProviderCallable);

unsafe impl<'v> Trace<'v> for ProviderCallable<'v> {
    fn trace(&mut self, tracer: &Tracer<'v>) {
        for f in &mut self.fields {
            if let Some(t) = &mut f.ty {
                tracer.trace(t);
            }
            if let Some(d) = &mut f.default {
                tracer.trace(d);
            }
        }
    }
}

impl<'v> Freeze for ProviderCallable<'v> {
    type Frozen = FrozenProviderCallable;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<Self::Frozen> {
        let mut fields = Vec::new();
        for f in self.fields {
            fields.push(FieldGen {
                name: f.name,
                ty: f.ty.map(|t| t.freeze(freezer)).transpose()?,
                default: f.default.map(|d| d.freeze(freezer)).transpose()?,
            });
        }
        Ok(ProviderCallableGen {
            id: self.id,
            name: self.name,
            fields,
            builtin: self.builtin,
        })
    }
}

impl<V> fmt::Display for ProviderCallableGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            self.name.get().map_or("<unnamed provider>", String::as_str)
        )
    }
}

impl<V> ProviderCallableGen<V> {
    pub fn name(&self) -> &str {
        self.name.get().map_or("<unnamed provider>", String::as_str)
    }

    pub fn provider_id(&self) -> ProviderId {
        ProviderId {
            id: self.id,
            name: self.name().to_owned(),
        }
    }
}

/// A view of a provider callable whichever heap it lives on.
pub fn callable_of(v: Value<'_>) -> Option<&ProviderCallable<'_>> {
    ProviderCallable::from_value(v)
}

pub fn provider_id_of(v: Value) -> Option<ProviderId> {
    callable_of(v).map(|c| c.provider_id())
}

#[starlark_value(type = "provider_callable")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for ProviderCallableGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    type Canonical = FrozenProviderCallable;

    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let _ = self.name.set(variable_name.to_owned());
        Ok(())
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(provider_id_of(other).is_some_and(|o| o.id == self.id))
    }

    fn write_hash(&self, hasher: &mut StarlarkHasher) -> starlark::Result<()> {
        std::hash::Hash::hash(&self.id, hasher);
        Ok(())
    }

    fn eval_type(&self) -> Option<Ty> {
        Some(Ty::starlark_value::<FrozenProviderInstance>())
    }

    fn invoke(
        &self,
        me: Value<'v>,
        args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let Some(name) = self.name.get() else {
            return Err(sl_err(
                "provider instances cannot be created before the provider is assigned to a global variable".into(),
            ));
        };
        let heap = eval.heap();
        if args.positions(heap)?.next().is_some() {
            return Err(sl_err(format!("`{name}` takes only named arguments")));
        }
        let mut given = args.names_map()?;
        let mut values = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let v = match given.shift_remove(f.name.as_str()) {
                Some(v) => v,
                None => match &f.default {
                    Some(d) => d.to_value(),
                    None => {
                        return Err(sl_err(format!(
                            "Missing parameter `{}` for call to `{name}`",
                            f.name
                        )))
                    }
                },
            };
            if let Some(ty) = &f.ty {
                let tc =
                    TypeCompiled::new(ty.to_value(), heap).map_err(starlark::Error::new_other)?;
                if !tc.matches(v) {
                    // Buck2's `UserProviderError::MismatchedType`.
                    return Err(sl_err(format!(
                        "Value for parameter `{}` mismatches type `{tc}`: `{}`",
                        f.name,
                        v.to_repr()
                    )));
                }
            }
            values.push(v);
        }
        if let Some((k, _)) = given.iter().next() {
            return Err(sl_err(format!(
                "Found `{}` extra named parameter(s) for call to `{name}`",
                k.as_str()
            )));
        }
        normalize_builtin(self.builtin, name, &mut values, heap)?;
        Ok(heap.alloc(ProviderInstance {
            callable: me,
            values,
        }))
    }
}

/// Buck2's extra checks and conversions for built-in providers.
fn normalize_builtin<'v>(
    b: Builtin,
    name: &str,
    values: &mut [Value<'v>],
    heap: Heap<'v>,
) -> starlark::Result<()> {
    match b {
        Builtin::DefaultInfo => {
            // Fields: default_output, default_outputs, other_outputs, sub_targets.
            let (single, many) = (values[0], values[1]);
            if !single.is_none() && !many.is_none() {
                return Err(sl_err(
                    "Cannot specify both `default_output` and `default_outputs` in `DefaultInfo`"
                        .into(),
                ));
            }
            let outputs: Vec<Value> = if !single.is_none() {
                vec![single]
            } else if many.is_none() {
                vec![]
            } else {
                ListRef::from_value(many)
                    .ok_or_else(|| sl_err("`default_outputs` must be a list of artifacts".into()))?
                    .iter()
                    .collect()
            };
            for o in outputs.iter().chain(
                ListRef::from_value(values[2])
                    .map(|l| l.content())
                    .unwrap_or(&[]),
            ) {
                if crate::artifact::Artifact::from_value(*o).is_none() {
                    return Err(sl_err(format!(
                        "`DefaultInfo` outputs must be artifacts, got `{}` of type `{}`",
                        o.to_repr(),
                        o.get_type()
                    )));
                }
            }
            values[1] = heap.alloc(AllocList(outputs));
            values[0] = Value::new_none();
            if let Some(d) = DictRef::from_value(values[3]) {
                for (k, sub) in d.iter() {
                    if ListRef::from_value(sub).is_none() {
                        return Err(sl_err(format!(
                            "`sub_targets` of `DefaultInfo` maps names to lists of providers; `{}` is `{}`",
                            k.to_str(),
                            sub.get_type()
                        )));
                    }
                }
            } else {
                return Err(sl_err(
                    "`sub_targets` of `DefaultInfo` must be a dict".into(),
                ));
            }
        }
        Builtin::RunInfo => {
            let args = CmdArgs::from_value_list(&[values[0]])
                .map_err(|e| sl_err(format!("`RunInfo(args)`: {e}")))?;
            values[0] = heap.alloc(args);
        }
        Builtin::ExternalRunnerTestInfo => {
            if values[0].unpack_str().is_none() {
                return Err(sl_err(format!("`{name}(type)` must be a string")));
            }
            if !values[1].is_none() {
                let c = ListRef::from_value(values[1]).ok_or_else(|| {
                    sl_err("`ExternalRunnerTestInfo(command)` must be a list".into())
                })?;
                let args = CmdArgs::from_value_list(c.content())
                    .map_err(|e| sl_err(format!("`{name}(command)`: {e}")))?;
                values[1] = heap.alloc(args);
            }
        }
        Builtin::Other => {}
    }
    Ok(())
}

#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct ProviderInstanceGen<V> {
    pub callable: V,
    pub values: Vec<V>,
}

// SAFETY: as above.
unsafe impl<'v> Coerce<ProviderInstanceGen<Value<'v>>> for ProviderInstanceGen<FrozenValue> {}

starlark_complex_value!(pub ProviderInstance);

unsafe impl<'v> Trace<'v> for ProviderInstance<'v> {
    fn trace(&mut self, tracer: &Tracer<'v>) {
        tracer.trace(&mut self.callable);
        for v in &mut self.values {
            tracer.trace(v);
        }
    }
}

impl<'v> Freeze for ProviderInstance<'v> {
    type Frozen = FrozenProviderInstance;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<Self::Frozen> {
        Ok(ProviderInstanceGen {
            callable: self.callable.freeze(freezer)?,
            values: self
                .values
                .into_iter()
                .map(|v| v.freeze(freezer))
                .collect::<FreezeResult<_>>()?,
        })
    }
}

impl<'v, V: ValueLike<'v>> fmt::Display for ProviderInstanceGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = callable_of(self.callable.to_value()).expect("instance of a provider");
        write!(f, "{}(", c.name())?;
        for (i, (field, v)) in c.fields.iter().zip(&self.values).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}={}", field.name, v.to_value().to_repr())?;
        }
        write!(f, ")")
    }
}

impl<'v, V: ValueLike<'v>> ProviderInstanceGen<V> {
    pub fn callable(&self) -> &'v ProviderCallable<'v> {
        callable_of(self.callable.to_value()).expect("instance of a provider")
    }

    pub fn id(&self) -> ProviderId {
        self.callable().provider_id()
    }

    pub fn field(&self, name: &str) -> Option<Value<'v>> {
        let c = self.callable();
        c.fields
            .iter()
            .position(|f| f.name == name)
            .map(|i| self.values[i].to_value())
    }
}

#[starlark_value(type = "provider")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for ProviderInstanceGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    type Canonical = FrozenProviderInstance;

    fn get_attr(&self, attribute: &str, _heap: Heap<'v>) -> Option<Value<'v>> {
        self.field(attribute)
    }

    fn dir_attr(&self) -> Vec<String> {
        self.callable()
            .fields
            .iter()
            .map(|f| f.name.clone())
            .collect()
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        let Some(o) = ProviderInstance::from_value(other) else {
            return Ok(false);
        };
        if o.id() != self.id() {
            return Ok(false);
        }
        for (a, b) in self.values.iter().zip(&o.values) {
            if !a.to_value().equals(*b)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The value of `provider_field(ty, default = …)`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct ProviderFieldGen<V> {
    pub ty: V,
    pub default: Option<V>,
}

unsafe impl<'v> Coerce<ProviderFieldGen<Value<'v>>> for ProviderFieldGen<FrozenValue> {}

starlark_complex_value!(pub ProviderField);

unsafe impl<'v> Trace<'v> for ProviderField<'v> {
    fn trace(&mut self, tracer: &Tracer<'v>) {
        tracer.trace(&mut self.ty);
        if let Some(d) = &mut self.default {
            tracer.trace(d);
        }
    }
}

impl<'v> Freeze for ProviderField<'v> {
    type Frozen = FrozenProviderField;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<Self::Frozen> {
        Ok(ProviderFieldGen {
            ty: self.ty.freeze(freezer)?,
            default: self.default.map(|d| d.freeze(freezer)).transpose()?,
        })
    }
}

impl<V> fmt::Display for ProviderFieldGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "provider_field(...)")
    }
}

#[starlark_value(type = "ProviderField")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for ProviderFieldGen<V> where
    Self: ProvidesStaticType<'v>
{
}

fn builtin_callable(
    name: &str,
    id: u64,
    builtin: Builtin,
    fields: &[(&str, BuiltinDefault)],
    heap: &starlark::values::FrozenHeap,
) -> FrozenProviderCallable {
    let fields = fields
        .iter()
        .map(|(n, d)| FieldGen {
            name: (*n).to_owned(),
            ty: None,
            default: match d {
                BuiltinDefault::Required => None,
                BuiltinDefault::None => Some(FrozenValue::new_none()),
                BuiltinDefault::False => Some(FrozenValue::new_bool(false)),
                BuiltinDefault::List => Some(heap.alloc(AllocList::EMPTY)),
                BuiltinDefault::Dict => Some(heap.alloc(AllocDict::EMPTY)),
            },
        })
        .collect();
    let name_cell = OnceLock::new();
    let _ = name_cell.set(name.to_owned());
    ProviderCallableGen {
        id,
        name: name_cell,
        fields,
        builtin,
    }
}

/// Fixed ids of the built-in providers the harness looks for by identity.
pub const DEFAULT_INFO_ID: u64 = 1;
pub const RUN_INFO_ID: u64 = 2;
pub const EXTERNAL_RUNNER_TEST_INFO_ID: u64 = 3;
pub const CONSTRAINT_SETTING_INFO_ID: u64 = 4;
pub const CONSTRAINT_VALUE_INFO_ID: u64 = 5;
pub const CONFIGURATION_INFO_ID: u64 = 6;
pub const PLATFORM_INFO_ID: u64 = 7;
pub const EXECUTION_PLATFORM_INFO_ID: u64 = 8;
pub const EXECUTION_PLATFORM_REGISTRATION_INFO_ID: u64 = 9;
pub const COMMAND_EXECUTOR_CONFIG_ID: u64 = 10;

pub fn register_builtin_providers(globals: &mut GlobalsBuilder) {
    use BuiltinDefault::*;
    type Def<'a> = (&'a str, u64, Builtin, &'a [(&'a str, BuiltinDefault)]);
    let defs: &[Def] = &[
        (
            "DefaultInfo",
            DEFAULT_INFO_ID,
            Builtin::DefaultInfo,
            &[
                ("default_output", None),
                ("default_outputs", None),
                ("other_outputs", List),
                ("sub_targets", Dict),
            ],
        ),
        ("RunInfo", RUN_INFO_ID, Builtin::RunInfo, &[("args", List)]),
        (
            "ExternalRunnerTestInfo",
            EXTERNAL_RUNNER_TEST_INFO_ID,
            Builtin::ExternalRunnerTestInfo,
            &[
                ("type", Required),
                ("command", None),
                ("env", None),
                ("labels", None),
                ("contacts", None),
                ("use_project_relative_paths", None),
                ("run_from_project_root", None),
                ("default_executor", None),
                ("executor_overrides", None),
                ("local_resources", None),
                ("required_local_resources", None),
                ("worker", None),
            ],
        ),
        (
            "ConstraintSettingInfo",
            CONSTRAINT_SETTING_INFO_ID,
            Builtin::Other,
            &[("label", Required)],
        ),
        (
            "ConstraintValueInfo",
            CONSTRAINT_VALUE_INFO_ID,
            Builtin::Other,
            &[("setting", Required), ("label", Required)],
        ),
        (
            "ConfigurationInfo",
            CONFIGURATION_INFO_ID,
            Builtin::Other,
            &[("constraints", Required), ("values", Required)],
        ),
        (
            "PlatformInfo",
            PLATFORM_INFO_ID,
            Builtin::Other,
            &[("label", Required), ("configuration", Required)],
        ),
        (
            "ExecutionPlatformInfo",
            EXECUTION_PLATFORM_INFO_ID,
            Builtin::Other,
            &[
                ("label", Required),
                ("configuration", Required),
                ("executor_config", Required),
            ],
        ),
        (
            "ExecutionPlatformRegistrationInfo",
            EXECUTION_PLATFORM_REGISTRATION_INFO_ID,
            Builtin::Other,
            &[
                ("platforms", Required),
                ("fallback", None),
                ("exec_marker_constraint", None),
            ],
        ),
        (
            "CommandExecutorConfig",
            COMMAND_EXECUTOR_CONFIG_ID,
            Builtin::Other,
            &[
                ("local_enabled", Required),
                ("remote_enabled", Required),
                ("remote_cache_enabled", None),
                ("remote_execution_properties", None),
                ("remote_execution_action_key", None),
                ("remote_execution_max_input_files_mebibytes", None),
                ("remote_execution_queue_time_threshold_s", None),
                ("remote_execution_use_case", None),
                ("use_limited_hybrid", None),
                ("allow_limited_hybrid_fallbacks", None),
                ("allow_hybrid_fallbacks_on_failure", None),
                ("use_windows_path_separators", False),
                ("use_persistent_workers", None),
                ("allow_cache_uploads", None),
                ("max_cache_upload_mebibytes", None),
                ("experimental_low_pass_filter", None),
                ("remote_output_paths", None),
                ("remote_execution_resource_units", None),
                ("remote_dep_file_cache_enabled", None),
            ],
        ),
    ];
    for (name, id, b, fields) in defs {
        let c = builtin_callable(name, *id, *b, fields, globals.frozen_heap());
        globals.set(name, c);
    }
}

#[starlark_module]
pub fn provider_globals(builder: &mut GlobalsBuilder) {
    /// `provider(doc = "", fields = [...] | {...})`.
    fn provider<'v>(
        #[starlark(require = named, default = "")] doc: &str,
        #[starlark(require = named)] fields: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<ProviderCallable<'v>> {
        let _ = doc;
        let mut out = Vec::new();
        if let Some(list) = ListRef::from_value(fields) {
            for f in list.iter() {
                let n = f
                    .unpack_str()
                    .ok_or_else(|| sl_err("provider field names must be strings".into()))?;
                out.push(FieldGen {
                    name: n.to_owned(),
                    ty: None,
                    default: Some(Value::new_none()),
                });
            }
        } else if let Some(d) = DictRef::from_value(fields) {
            for (k, v) in d.iter() {
                let n = k
                    .unpack_str()
                    .ok_or_else(|| sl_err("provider field names must be strings".into()))?;
                if let Some(pf) = ProviderField::from_value(v) {
                    out.push(FieldGen {
                        name: n.to_owned(),
                        ty: Some(pf.ty),
                        default: pf.default,
                    });
                } else {
                    // A bare type: a required field of that type. Check it is a type now.
                    TypeCompiled::new(v, eval.heap()).map_err(starlark::Error::new_other)?;
                    out.push(FieldGen {
                        name: n.to_owned(),
                        ty: Some(v),
                        default: None,
                    });
                }
            }
        } else {
            return Err(sl_err(
                "`provider(fields=)` must be a list of names or a dict of fields".into(),
            ));
        }
        for (i, f) in out.iter().enumerate() {
            if out[..i].iter().any(|g| g.name == f.name) {
                return Err(sl_err(format!(
                    "provider field `{}` is declared twice",
                    f.name
                )));
            }
        }
        Ok(ProviderCallableGen {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: OnceLock::new(),
            fields: out,
            builtin: Builtin::Other,
        })
    }

    /// `provider_field(ty, /, *, default = …)`.
    fn provider_field<'v>(
        #[starlark(require = pos)] ty: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<ProviderField<'v>> {
        let tc = TypeCompiled::new(ty, eval.heap()).map_err(starlark::Error::new_other)?;
        if let Some(d) = default {
            if !tc.matches(d) {
                return Err(sl_err(format!(
                    "Default value `{}` of `provider_field` does not match its type `{tc}`",
                    d.to_repr()
                )));
            }
        }
        Ok(ProviderFieldGen { ty, default })
    }
}
