//! `rule()`: rule definitions and the targets their calls in BUCK files record.

use std::fmt;
use std::sync::{Arc, OnceLock};

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::GlobalsBuilder;
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_module;
use starlark::values::dict::DictRef;
use starlark::values::none::NoneType;
use starlark::values::starlark_value;
use starlark::values::{
    AllocValue, Freeze, FreezeError, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize,
    StarlarkValue, Trace, Tracer, Value,
};

use crate::attrs::{
    implicit_attributes, AttrType, Attribute, Coerced, CoercionCtx, StarlarkAttribute,
};
use crate::load::{FileKind, LoadCtx};
use crate::repo::{CellPath, TargetLabel};
use crate::util::sl_err;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Normal,
    Configuration,
    Toolchain,
}

/// A frozen rule: everything needed to configure and analyze its targets.
#[derive(Debug)]
pub struct RuleSpec {
    pub name: String,
    pub bzl: CellPath,
    pub kind: RuleKind,
    /// User attributes (sorted, as Buck2 sorts them) followed by the implicit ones.
    pub attrs: Vec<(String, Attribute)>,
    pub implementation: FrozenValue,
}

/// A target recorded by a rule call in a BUCK file; values are coerced, selects unresolved.
#[derive(Debug, Clone)]
pub struct TargetNode {
    pub label: TargetLabel,
    pub rule: Arc<RuleSpec>,
    pub attrs: Vec<(String, Coerced)>,
}

#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct RuleCallable<'v> {
    implementation: Value<'v>,
    #[allocative(skip)]
    name: OnceLock<String>,
    #[allocative(skip)]
    bzl: CellPath,
    #[allocative(skip)]
    kind: RuleKind,
    #[allocative(skip)]
    attrs: Vec<(String, Attribute)>,
}

unsafe impl<'v> Trace<'v> for RuleCallable<'v> {
    fn trace(&mut self, tracer: &Tracer<'v>) {
        tracer.trace(&mut self.implementation);
    }
}

impl fmt::Display for RuleCallable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name.get() {
            Some(n) => write!(f, "{n}()"),
            None => write!(f, "<unbound rule>"),
        }
    }
}

impl<'v> AllocValue<'v> for RuleCallable<'v> {
    fn alloc_value(self, heap: Heap<'v>) -> Value<'v> {
        heap.alloc_complex(self)
    }
}

impl<'v> Freeze for RuleCallable<'v> {
    type Frozen = FrozenRuleCallable;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<Self::Frozen> {
        let Some(name) = self.name.get().cloned() else {
            // Buck2's `RuleError::RuleNotAssigned`.
            return Err(FreezeError::new(format!(
                "Rule defined in `{}` must be assigned to a variable, e.g. `my_rule = rule(...)`",
                self.bzl
            )));
        };
        Ok(FrozenRuleCallable {
            rule: Arc::new(RuleSpec {
                name,
                bzl: self.bzl,
                kind: self.kind,
                attrs: self.attrs,
                implementation: self.implementation.freeze(freezer)?,
            }),
        })
    }
}

#[starlark_value(type = "rule")]
impl<'v> StarlarkValue<'v> for RuleCallable<'v> {
    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let _ = self.name.set(variable_name.to_owned());
        Ok(())
    }

    fn invoke(
        &self,
        _me: Value<'v>,
        _args: &Arguments<'v, '_>,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        Err(sl_err(
            "The output of rule() may only be called after the module is loaded".into(),
        ))
    }
}

#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct FrozenRuleCallable {
    #[allocative(skip)]
    pub rule: Arc<RuleSpec>,
}
starlark::starlark_simple_value!(FrozenRuleCallable);

impl fmt::Display for FrozenRuleCallable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}()", self.rule.name)
    }
}

#[starlark_value(type = "rule")]
impl<'v> StarlarkValue<'v> for FrozenRuleCallable {
    type Canonical = RuleCallable<'v>;

    fn invoke(
        &self,
        _me: Value<'v>,
        args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let rule = &self.rule;
        let ctx = LoadCtx::from_eval(eval)?;
        let Some(package) = ctx.package.as_deref() else {
            return Err(sl_err(format!(
                "`{}()` declares a target, which only a BUCK file (or a macro it calls) can do",
                rule.name
            )));
        };
        if args.positions(eval.heap())?.next().is_some() {
            return Err(sl_err(format!(
                "`{}()` takes only named arguments",
                rule.name
            )));
        }
        let mut given = args.names_map()?;
        let name = match given.shift_remove("name") {
            Some(v) => v
                .unpack_str()
                .ok_or_else(|| sl_err(format!("`name` of `{}()` must be a string", rule.name)))?
                .to_owned(),
            None => {
                return Err(sl_err(format!(
                    "Missing parameter `name` for call to `{}`",
                    rule.name
                )))
            }
        };
        let label = TargetLabel {
            cell: ctx.file.cell.clone(),
            package: package.to_owned(),
            name,
        };
        let cx = CoercionCtx {
            cells: &ctx.cells,
            cell: &ctx.file.cell,
            package: Some(package),
        };
        let mut attrs = Vec::with_capacity(rule.attrs.len());
        for (attr_name, attr) in &rule.attrs {
            let value = given
                .shift_remove(attr_name.as_str())
                .filter(|v| !v.is_none());
            let coerced = match (value, &attr.default) {
                (Some(_), _) if matches!(attr.ty, AttrType::DefaultOnly(_)) => {
                    return Err(sl_err(format!(
                        "Attribute `{attr_name}` of `{}` is `attrs.default_only` and cannot be set",
                        rule.name
                    )))
                }
                (Some(v), _) => cx.coerce(&attr.ty, v).map_err(|e| {
                    sl_err(format!(
                        "Error coercing attribute `{attr_name}` of `{label}`: {e}"
                    ))
                })?,
                (None, Some(d)) => d.clone(),
                (None, None) => {
                    return Err(sl_err(format!(
                        "Missing parameter `{attr_name}` for call to `{}`",
                        rule.name
                    )))
                }
            };
            attrs.push((attr_name.clone(), coerced));
        }
        if let Some((k, _)) = given.iter().next() {
            return Err(sl_err(format!(
                "Found `{}` extra named parameter(s) for call to `{}`",
                k.as_str(),
                rule.name
            )));
        }
        let mut targets = ctx.targets.borrow_mut();
        if targets.iter().any(|t| t.label == label) {
            return Err(sl_err(format!(
                "Attempted to register target `{label}` twice"
            )));
        }
        targets.push(TargetNode {
            label,
            rule: rule.clone(),
            attrs,
        });
        Ok(Value::new_none())
    }
}

#[allow(clippy::too_many_arguments)]
#[starlark_module]
pub fn rule_globals(builder: &mut GlobalsBuilder) {
    /// `rule(*, impl, attrs, cfg=None, doc="", is_configuration_rule=False, is_toolchain_rule=False, uses_plugins=[])`.
    fn rule<'v>(
        #[starlark(require = named)] r#impl: Value<'v>,
        #[starlark(require = named)] attrs: Value<'v>,
        #[starlark(require = named)] cfg: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        #[starlark(require = named, default = false)] is_configuration_rule: bool,
        #[starlark(require = named, default = false)] is_toolchain_rule: bool,
        #[starlark(require = named)] uses_plugins: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<RuleCallable<'v>> {
        let _ = (doc, uses_plugins);
        let ctx = LoadCtx::from_eval(eval)?;
        if ctx.kind != FileKind::Bzl {
            return Err(sl_err("`rule` can only be declared in bzl files".into()));
        }
        if cfg.is_some_and(|c| !c.is_none()) {
            return Err(sl_err("`rule(cfg = ...)` (transitions) is not emulated by the harness; only real Buck2 can check it".into()));
        }
        if r#impl.get_type() != "function" {
            return Err(sl_err(format!(
                "`impl` must be a function, got `{}`",
                r#impl.get_type()
            )));
        }
        let kind = match (is_configuration_rule, is_toolchain_rule) {
            (false, false) => RuleKind::Normal,
            (true, false) => RuleKind::Configuration,
            (false, true) => RuleKind::Toolchain,
            (true, true) => {
                return Err(sl_err(
                    "Rule defined with both `is_configuration_rule` and `is_toolchain_rule`, these options are mutually exclusive".into(),
                ))
            }
        };
        let dict = DictRef::from_value(attrs)
            .ok_or_else(|| sl_err("`attrs` must be a dict of `attrs.*()`".into()))?;
        let mut user: Vec<(String, Attribute)> = Vec::new();
        for (k, v) in dict.iter() {
            let n = k
                .unpack_str()
                .ok_or_else(|| sl_err("attribute names must be strings".into()))?;
            if n == "name" {
                return Err(sl_err("`name` is not a valid attribute name".into()));
            }
            let a = StarlarkAttribute::from_value(v).ok_or_else(|| {
                sl_err(format!(
                    "attribute `{n}` must be an `attrs.*()` value, got `{}`",
                    v.get_type()
                ))
            })?;
            user.push((n.to_owned(), (*a.attr).clone()));
        }
        user.sort_by(|a, b| a.0.cmp(&b.0));
        for (n, a) in implicit_attributes() {
            if user.iter().any(|(u, _)| *u == n) {
                return Err(sl_err(format!(
                    "`{n}` is an implicit attribute of every rule and cannot be redefined"
                )));
            }
            user.push((n, a));
        }
        let _ = NoneType;
        Ok(RuleCallable {
            implementation: r#impl,
            name: OnceLock::new(),
            bzl: ctx.file.clone(),
            kind,
            attrs: user,
        })
    }
}
