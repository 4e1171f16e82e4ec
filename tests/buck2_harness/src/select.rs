//! `select()` values, and their resolution against a configuration.

use std::collections::BTreeMap;
use std::fmt;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::coerce::Coerce;
use starlark::environment::GlobalsBuilder;
use starlark::starlark_complex_value;
use starlark::starlark_module;
use starlark::values::dict::DictRef;
use starlark::values::starlark_value;
use starlark::values::starlark_value_as_type::StarlarkValueAsType;
use starlark::values::{
    Freeze, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize, StarlarkValue, Trace, Tracer,
    Value, ValueLike,
};

use crate::attrs::Coerced;
use crate::repo::ProvidersLabel;
use crate::util::sl_err;

/// `select({...})`, possibly concatenated with plain values (`select(...) + [...]`).
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
#[repr(C)]
pub struct SelectorGen<V> {
    /// `(is_select, value)`: a select's dict, or a plain value concatenated to it.
    parts: Vec<(bool, V)>,
}

unsafe impl<'v> Coerce<SelectorGen<Value<'v>>> for SelectorGen<FrozenValue> {}

starlark_complex_value!(pub Selector);

unsafe impl<'v> Trace<'v> for Selector<'v> {
    fn trace(&mut self, tracer: &Tracer<'v>) {
        for (_, v) in &mut self.parts {
            tracer.trace(v);
        }
    }
}

impl<'v> Freeze for Selector<'v> {
    type Frozen = FrozenSelector;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<Self::Frozen> {
        Ok(SelectorGen {
            parts: self
                .parts
                .into_iter()
                .map(|(s, v)| Ok((s, v.freeze(freezer)?)))
                .collect::<FreezeResult<_>>()?,
        })
    }
}

impl<'v, V: ValueLike<'v>> fmt::Display for SelectorGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (s, v)) in self.parts.iter().enumerate() {
            if i > 0 {
                write!(f, " + ")?;
            }
            if *s {
                write!(f, "select({})", v.to_value().to_repr())?;
            } else {
                write!(f, "{}", v.to_value().to_repr())?;
            }
        }
        Ok(())
    }
}

impl<'v> Selector<'v> {
    pub fn parts(&self) -> impl Iterator<Item = (bool, Value<'v>)> + '_ {
        self.parts.iter().map(|(s, v)| (*s, *v))
    }
}

fn parts_of<'v>(v: Value<'v>) -> Vec<(bool, Value<'v>)> {
    match Selector::from_value(v) {
        Some(s) => s.parts().collect(),
        None => vec![(false, v)],
    }
}

#[starlark_value(type = "Select")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for SelectorGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    type Canonical = FrozenSelector;

    fn add(&self, rhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        let mut parts: Vec<(bool, Value<'v>)> =
            self.parts.iter().map(|(s, v)| (*s, v.to_value())).collect();
        parts.extend(parts_of(rhs));
        Some(Ok(heap.alloc(SelectorGen { parts })))
    }

    fn radd(&self, lhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        let mut parts = parts_of(lhs);
        parts.extend(self.parts.iter().map(|(s, v)| (*s, v.to_value())));
        Some(Ok(heap.alloc(SelectorGen { parts })))
    }
}

#[starlark_module]
pub fn select_globals(builder: &mut GlobalsBuilder) {
    /// The type of what `select()` returns, for annotations (`-> Select`), as Buck2 names it.
    const Select: StarlarkValueAsType<FrozenSelector> = StarlarkValueAsType::new();

    /// `select({key: value, "DEFAULT": value})`.
    fn select<'v>(#[starlark(require = pos)] d: Value<'v>) -> starlark::Result<Selector<'v>> {
        let dict = DictRef::from_value(d)
            .ok_or_else(|| sl_err(format!("select() expects a dict, got `{}`", d.get_type())))?;
        for k in dict.keys() {
            if k.unpack_str().is_none() {
                return Err(sl_err(format!(
                    "select() keys must be strings (labels or \"DEFAULT\"), got `{}`",
                    k.to_repr()
                )));
            }
        }
        Ok(SelectorGen {
            parts: vec![(true, d)],
        })
    }
}

/// What a `select()` key stands for: constraints (setting -> value) and buckconfig values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ConfigSettingData {
    pub constraints: BTreeMap<String, String>,
    pub values: BTreeMap<String, String>,
}

impl ConfigSettingData {
    /// Does `self` hold everything `other` holds (so is at least as specific)?
    pub fn refines(&self, other: &ConfigSettingData) -> bool {
        other
            .constraints
            .iter()
            .all(|(k, v)| self.constraints.get(k) == Some(v))
            && other
                .values
                .iter()
                .all(|(k, v)| self.values.get(k) == Some(v))
    }
}

/// A platform's configuration: its constraint values, and a name for output paths.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Configuration {
    /// e.g. `linux-x86_64`, from the platform target's name.
    pub name: String,
    pub label: String,
    pub data: ConfigSettingData,
}

impl fmt::Display for Configuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.label)
    }
}

/// Resolves a select key label to the configuration it stands for.
pub trait KeyResolver {
    fn key(&mut self, label: &ProvidersLabel) -> anyhow::Result<ConfigSettingData>;
    fn buckconfig(&self, section_key: &str) -> Option<String>;
}

fn matches(cfg: &Configuration, key: &ConfigSettingData, r: &dyn KeyResolver) -> bool {
    key.constraints
        .iter()
        .all(|(s, v)| cfg.data.constraints.get(s) == Some(v))
        && key
            .values
            .iter()
            .all(|(k, v)| r.buckconfig(k).as_deref() == Some(v.as_str()))
}

/// Resolve every `select()` in a coerced value for `cfg`, with Buck2's rules: matching keys
/// are kept, the most specific wins, two matches of which neither refines the other are an
/// error when their values differ, and nothing matching falls to `DEFAULT` or fails.
pub fn resolve(
    value: &Coerced,
    cfg: &Configuration,
    r: &mut dyn KeyResolver,
) -> anyhow::Result<Coerced> {
    Ok(match value {
        Coerced::Select(entries) => {
            let mut best: Option<(&ProvidersLabel, ConfigSettingData, &Coerced)> = None;
            let mut default = None;
            let mut keys = Vec::new();
            for (k, v) in entries {
                let Some(k) = k else {
                    default = Some(v);
                    continue;
                };
                keys.push(k.to_string());
                let data = r.key(k)?;
                if !matches(cfg, &data, r) {
                    continue;
                }
                best = match best {
                    None => Some((k, data, v)),
                    Some((bk, bd, bv)) => {
                        if data.refines(&bd) && !bd.refines(&data) {
                            Some((k, data, v))
                        } else if (bd.refines(&data) && !data.refines(&bd)) || bv == v {
                            // The current best is more specific, or both agree on the value.
                            Some((bk, bd, bv))
                        } else {
                            anyhow::bail!(
                                "Both select keys `{bk}` and `{k}` match the configuration, but neither is more specific and they have different values"
                            );
                        }
                    }
                };
            }
            match (best, default) {
                (Some((_, _, v)), _) => resolve(v, cfg, r)?,
                (None, Some(d)) => resolve(d, cfg, r)?,
                (None, None) => anyhow::bail!(
                    "None of {} conditions matched configuration `{cfg}` and no default was set:\n{}",
                    keys.len(),
                    keys.iter().map(|k| format!("  {k}")).collect::<Vec<_>>().join("\n")
                ),
            }
        }
        Coerced::Concat(parts) => {
            let resolved = parts
                .iter()
                .map(|p| resolve(p, cfg, r))
                .collect::<anyhow::Result<Vec<_>>>()?;
            concat(resolved)?
        }
        Coerced::List(items) => Coerced::List(
            items
                .iter()
                .map(|i| resolve(i, cfg, r))
                .collect::<anyhow::Result<_>>()?,
        ),
        Coerced::Tuple(items) => Coerced::Tuple(
            items
                .iter()
                .map(|i| resolve(i, cfg, r))
                .collect::<anyhow::Result<_>>()?,
        ),
        Coerced::Dict(items) => Coerced::Dict(
            items
                .iter()
                .map(|(k, v)| Ok((resolve(k, cfg, r)?, resolve(v, cfg, r)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        other => other.clone(),
    })
}

fn concat(parts: Vec<Coerced>) -> anyhow::Result<Coerced> {
    let mut iter = parts.into_iter();
    let mut acc = iter
        .next()
        .ok_or_else(|| anyhow::anyhow!("concat with no items (internal error)"))?;
    for p in iter {
        acc = match (acc, p) {
            (Coerced::List(mut a), Coerced::List(b)) => {
                a.extend(b);
                Coerced::List(a)
            }
            (Coerced::Dict(mut a), Coerced::Dict(b)) => {
                for (k, v) in b {
                    if a.iter().any(|(ka, _)| *ka == k) {
                        anyhow::bail!(
                            "got same key in both sides of dictionary concat (key `{k:?}`)."
                        );
                    }
                    a.push((k, v));
                }
                Coerced::Dict(a)
            }
            (Coerced::Str(a), Coerced::Str(b)) => Coerced::Str(a + &b),
            (a, b) => anyhow::bail!("addition not supported for values `{a:?}` and `{b:?}`"),
        };
    }
    Ok(acc)
}
