//! `attrs.*`: attribute types, their defaults, and coercion of values written in BUCK files.
//!
//! Coercion happens at load time, as in Buck2: a BUCK file with a wrong attribute type fails
//! to load, not to analyze. Coerced values are plain Rust data, so targets outlive the heaps
//! of the files that declared them.

use std::fmt;
use std::sync::Arc;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::none::NoneType;
use starlark::values::starlark_value;
use starlark::values::tuple::TupleRef;
use starlark::values::{NoSerialize, StarlarkValue, Value};

use crate::load::LoadCtx;
use crate::provider::{provider_id_of, ProviderId};
use crate::repo::{looks_like_label, parse_label, Cells, ProvidersLabel};
use crate::select::Selector;
use crate::util::sl_err;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepKind {
    Plain,
    Exec,
    Toolchain,
}

#[derive(Debug, Clone)]
pub enum AttrType {
    Any,
    Bool,
    Int,
    String,
    Enum(Vec<String>),
    List(Box<AttrType>),
    Tuple(Vec<AttrType>),
    Dict(Box<AttrType>, Box<AttrType>, bool),
    Option(Box<AttrType>),
    DefaultOnly(Box<AttrType>),
    OneOf(Vec<AttrType>),
    Source {
        allow_directory: bool,
    },
    Dep {
        kind: DepKind,
        providers: Vec<ProviderId>,
    },
    Label,
    Arg {
        json: bool,
    },
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrType::Any => write!(f, "any"),
            AttrType::Bool => write!(f, "bool"),
            AttrType::Int => write!(f, "int"),
            AttrType::String => write!(f, "str"),
            AttrType::Enum(v) => write!(f, "enum({})", v.join(", ")),
            AttrType::List(i) => write!(f, "list[{i}]"),
            AttrType::Tuple(v) => {
                write!(
                    f,
                    "tuple[{}]",
                    v.iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            AttrType::Dict(k, v, _) => write!(f, "dict[{k}, {v}]"),
            AttrType::Option(i) => write!(f, "None | {i}"),
            AttrType::DefaultOnly(i) => write!(f, "{i}"),
            AttrType::OneOf(v) => write!(
                f,
                "{}",
                v.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
            AttrType::Source { .. } => write!(f, "source"),
            AttrType::Dep {
                kind: DepKind::Plain,
                ..
            } => write!(f, "dependency"),
            AttrType::Dep {
                kind: DepKind::Exec,
                ..
            } => write!(f, "exec_dep"),
            AttrType::Dep {
                kind: DepKind::Toolchain,
                ..
            } => write!(f, "toolchain_dep"),
            AttrType::Label => write!(f, "label"),
            AttrType::Arg { .. } => write!(f, "arg"),
        }
    }
}

/// A source attribute's value: a file of the package, or a target whose default outputs count.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceRef {
    /// Project-relative path.
    File(String),
    Target(ProvidersLabel),
}

/// An attribute value after load-time coercion; `select()`s are still unresolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Coerced {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Coerced>),
    Tuple(Vec<Coerced>),
    Dict(Vec<(Coerced, Coerced)>),
    Dep(ProvidersLabel),
    Source(SourceRef),
    Label(ProvidersLabel),
    Json(serde_json::Value),
    /// `select()`: `None` key is `DEFAULT`.
    Select(Vec<(Option<ProvidersLabel>, Coerced)>),
    /// `select() + [...]` and friends.
    Concat(Vec<Coerced>),
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub ty: AttrType,
    pub default: Option<Coerced>,
    pub doc: String,
}

/// The value of `attrs.string()` and friends.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct StarlarkAttribute {
    #[allocative(skip)]
    pub attr: Arc<Attribute>,
}
starlark_simple_value!(StarlarkAttribute);

impl fmt::Display for StarlarkAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attrs.{}()", self.attr.ty)
    }
}

#[starlark_value(type = "attribute")]
impl<'v> StarlarkValue<'v> for StarlarkAttribute {}

/// Where a value is being coerced: labels are relative to this package.
pub struct CoercionCtx<'a> {
    pub cells: &'a Cells,
    pub cell: &'a str,
    /// `None` for attribute defaults, which have no package.
    pub package: Option<&'a str>,
}

fn type_error(ty: &AttrType, v: Value) -> anyhow::Error {
    anyhow::anyhow!(
        "Expected value of type `{ty}`, got value with type `{}` (value was `{}`)",
        v.get_type(),
        v.to_repr()
    )
}

fn list_items<'v>(v: Value<'v>) -> Option<Vec<Value<'v>>> {
    if let Some(l) = ListRef::from_value(v) {
        return Some(l.iter().collect());
    }
    TupleRef::from_value(v).map(|t| t.iter().collect())
}

impl<'a> CoercionCtx<'a> {
    fn label(&self, s: &str) -> anyhow::Result<ProvidersLabel> {
        match self.package {
            Some(p) => parse_label(self.cells, self.cell, p, s),
            None => {
                if s.starts_with(':') {
                    anyhow::bail!("Attribute default `{s}` must be an absolute label (`cell//package:name`), as it has no package");
                }
                parse_label(self.cells, self.cell, "", s)
            }
        }
    }

    /// Coerce a value as written in a BUCK file (or a default), selects included.
    pub fn coerce<'v>(&self, ty: &AttrType, v: Value<'v>) -> anyhow::Result<Coerced> {
        if let Some(sel) = Selector::from_value(v) {
            let mut parts = Vec::new();
            for (is_select, part) in sel.parts() {
                if is_select {
                    let dict = DictRef::from_value(part).expect("select holds a dict");
                    let mut entries = Vec::new();
                    for (k, val) in dict.iter() {
                        let key = k.unpack_str().expect("select keys are checked strings");
                        let key = if key == "DEFAULT" {
                            None
                        } else {
                            Some(self.label(key)?)
                        };
                        entries.push((key, self.coerce(ty, val)?));
                    }
                    parts.push(Coerced::Select(entries));
                } else {
                    parts.push(self.coerce(ty, part)?);
                }
            }
            return Ok(if parts.len() == 1 {
                parts.pop().unwrap()
            } else {
                Coerced::Concat(parts)
            });
        }
        self.coerce_plain(ty, v)
    }

    fn coerce_plain<'v>(&self, ty: &AttrType, v: Value<'v>) -> anyhow::Result<Coerced> {
        Ok(match ty {
            AttrType::Any => Coerced::Json(v.to_json_value().map_err(|_| type_error(ty, v))?),
            AttrType::Bool => Coerced::Bool(v.unpack_bool().ok_or_else(|| type_error(ty, v))?),
            AttrType::Int => Coerced::Int(v.unpack_i32().ok_or_else(|| type_error(ty, v))? as i64),
            AttrType::String | AttrType::Arg { .. } => {
                Coerced::Str(v.unpack_str().ok_or_else(|| type_error(ty, v))?.to_owned())
            }
            AttrType::Enum(variants) => {
                let s = v.unpack_str().ok_or_else(|| type_error(ty, v))?;
                let lower = s.to_lowercase();
                if !variants.contains(&lower) {
                    anyhow::bail!(
                        "Invalid enum value `{s}`, expected one of: `{}`",
                        variants.join("`, `")
                    );
                }
                Coerced::Str(lower)
            }
            AttrType::List(inner) => {
                let items = list_items(v).ok_or_else(|| type_error(ty, v))?;
                Coerced::List(
                    items
                        .into_iter()
                        .map(|x| self.coerce(inner, x))
                        .collect::<anyhow::Result<_>>()?,
                )
            }
            AttrType::Tuple(inners) => {
                let items = list_items(v).ok_or_else(|| type_error(ty, v))?;
                if items.len() != inners.len() {
                    return Err(type_error(ty, v));
                }
                Coerced::Tuple(
                    inners
                        .iter()
                        .zip(items)
                        .map(|(t, x)| self.coerce(t, x))
                        .collect::<anyhow::Result<_>>()?,
                )
            }
            AttrType::Dict(kt, vt, sorted) => {
                let d = DictRef::from_value(v).ok_or_else(|| type_error(ty, v))?;
                let mut entries = Vec::new();
                for (k, x) in d.iter() {
                    entries.push((self.coerce(kt, k)?, self.coerce(vt, x)?));
                }
                if *sorted {
                    entries.sort_by_key(|(k, _)| format!("{k:?}"));
                }
                Coerced::Dict(entries)
            }
            AttrType::Option(inner) => {
                if v.is_none() {
                    Coerced::None
                } else {
                    self.coerce(inner, v)?
                }
            }
            AttrType::DefaultOnly(inner) => self.coerce(inner, v)?,
            AttrType::OneOf(types) => {
                let mut last = None;
                for t in types {
                    match self.coerce(t, v) {
                        Ok(c) => return Ok(c),
                        Err(e) => last = Some(e),
                    }
                }
                return Err(last.unwrap_or_else(|| type_error(ty, v)));
            }
            AttrType::Source { .. } => {
                let s = v.unpack_str().ok_or_else(|| type_error(ty, v))?;
                if looks_like_label(s) {
                    Coerced::Source(SourceRef::Target(self.label(s)?))
                } else {
                    let Some(pkg) = self.package else {
                        anyhow::bail!("Source default `{s}` must be a target label, as a default has no package");
                    };
                    if s.is_empty()
                        || s.starts_with('/')
                        || s.split('/').any(|c| c == ".." || c.is_empty())
                    {
                        anyhow::bail!("Source path `{s}` must be a normalized path relative to package `{}//{pkg}`", self.cell);
                    }
                    let project = self
                        .cells
                        .project_path(self.cell, &crate::repo::join(pkg, s));
                    if !self.cells.root.join(&project).exists() {
                        anyhow::bail!(
                            "Source file `{s}` does not exist as a member of package `{}//{pkg}`",
                            self.cell
                        );
                    }
                    Coerced::Source(SourceRef::File(project))
                }
            }
            AttrType::Dep { .. } => {
                let s = v.unpack_str().ok_or_else(|| type_error(ty, v))?;
                Coerced::Dep(self.label(s)?)
            }
            AttrType::Label => {
                let s = v.unpack_str().ok_or_else(|| type_error(ty, v))?;
                Coerced::Label(self.label(s)?)
            }
        })
    }
}

fn make<'v>(
    eval: &Evaluator<'v, '_, '_>,
    ty: AttrType,
    default: Option<Value<'v>>,
    doc: &str,
) -> starlark::Result<StarlarkAttribute> {
    let ctx = LoadCtx::from_eval(eval)?;
    let default = match default {
        None => None,
        Some(d) => {
            let cells = &ctx.cells;
            let cx = CoercionCtx {
                cells,
                cell: &ctx.file.cell,
                package: None,
            };
            Some(
                cx.coerce(&ty, d)
                    .map_err(|e| sl_err(format!("Invalid default for `attrs.{ty}`: {e}")))?,
            )
        }
    };
    Ok(StarlarkAttribute {
        attr: Arc::new(Attribute {
            ty,
            default,
            doc: doc.to_owned(),
        }),
    })
}

fn inner_of(v: Value) -> starlark::Result<Arc<Attribute>> {
    StarlarkAttribute::from_value(v)
        .map(|a| a.attr.clone())
        .ok_or_else(|| {
            sl_err(format!(
                "Expected an attribute (`attrs.*()`), got `{}`",
                v.to_repr()
            ))
        })
}

fn providers_list<'v>(v: Option<Value<'v>>) -> starlark::Result<Vec<ProviderId>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let items = list_items(v)
        .ok_or_else(|| sl_err("`providers` must be a list of provider types".to_owned()))?;
    items
        .into_iter()
        .map(|p| {
            provider_id_of(p).ok_or_else(|| {
                sl_err(format!(
                    "`providers` expects provider types, got `{}`",
                    p.to_repr()
                ))
            })
        })
        .collect()
}

/// `attrs`, following the signatures of Buck2's `attrs` namespace.
#[starlark_module]
pub fn attrs_namespace(builder: &mut GlobalsBuilder) {
    fn string<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        #[starlark(require = named)] validate: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        let _ = validate;
        make(eval, AttrType::String, default, doc)
    }

    fn bool<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        make(eval, AttrType::Bool, default, doc)
    }

    fn int<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        make(eval, AttrType::Int, default, doc)
    }

    fn any<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        make(eval, AttrType::Any, default, doc)
    }

    fn label<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        make(eval, AttrType::Label, default, doc)
    }

    fn arg<'v>(
        #[starlark(require = named, default = false)] json: bool,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        #[starlark(require = named, default = false)] anon_target_compatible: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        let _ = anon_target_compatible;
        make(eval, AttrType::Arg { json }, default, doc)
    }

    fn r#enum<'v>(
        #[starlark(require = pos)] variants: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        let items = list_items(variants)
            .ok_or_else(|| sl_err("`attrs.enum` expects a list of strings".to_owned()))?;
        let mut out: Vec<String> = Vec::new();
        for i in items {
            let s = i
                .unpack_str()
                .ok_or_else(|| sl_err("`attrs.enum` variants must be strings".to_owned()))?;
            let l = s.to_lowercase();
            if out.contains(&l) {
                return Err(sl_err(format!(
                    "`attrs.enum` has the variant `{s}` twice (variants are case-insensitive)"
                )));
            }
            out.push(l);
        }
        make(eval, AttrType::Enum(out), default, doc)
    }

    fn list<'v>(
        #[starlark(require = pos)] inner: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        let i = inner_of(inner)?;
        make(eval, AttrType::List(Box::new(i.ty.clone())), default, doc)
    }

    fn tuple<'v>(
        #[starlark(args)] inners: starlark::values::tuple::UnpackTuple<Value<'v>>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        let tys = inners
            .into_iter()
            .map(|v| inner_of(v).map(|a| a.ty.clone()))
            .collect::<starlark::Result<_>>()?;
        make(eval, AttrType::Tuple(tys), default, doc)
    }

    fn one_of<'v>(
        #[starlark(args)] inners: starlark::values::tuple::UnpackTuple<Value<'v>>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        let tys = inners
            .into_iter()
            .map(|v| inner_of(v).map(|a| a.ty.clone()))
            .collect::<starlark::Result<_>>()?;
        make(eval, AttrType::OneOf(tys), default, doc)
    }

    fn dict<'v>(
        #[starlark(require = pos)] key: Value<'v>,
        #[starlark(require = pos)] value: Value<'v>,
        #[starlark(require = named, default = false)] sorted: bool,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        let k = inner_of(key)?;
        let v = inner_of(value)?;
        make(
            eval,
            AttrType::Dict(Box::new(k.ty.clone()), Box::new(v.ty.clone()), sorted),
            default,
            doc,
        )
    }

    fn option<'v>(
        #[starlark(require = pos)] inner: Value<'v>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        let i = inner_of(inner)?;
        if let Some(d) = default {
            if !d.is_none() {
                // Buck2's `AttrError::OptionDefaultNone`.
                return Err(sl_err(format!(
                    "`attrs.option` `default` parameter must be `None` or absent, got `{}`.\n`None` as an attribute value always picks the default. For `attrs.option`, if the default isn't `None`, there is no way to express `None`.",
                    d.to_repr()
                )));
            }
        }
        let none = eval.heap().alloc(NoneType);
        make(
            eval,
            AttrType::Option(Box::new(i.ty.clone())),
            Some(default.unwrap_or(none)),
            doc,
        )
    }

    fn default_only<'v>(
        #[starlark(require = pos)] inner: Value<'v>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> starlark::Result<StarlarkAttribute> {
        let i = inner_of(inner)?;
        let Some(d) = &i.default else {
            return Err(sl_err(
                "`attrs.default_only` argument must have a default".to_owned(),
            ));
        };
        Ok(StarlarkAttribute {
            attr: Arc::new(Attribute {
                ty: AttrType::DefaultOnly(Box::new(i.ty.clone())),
                default: Some(d.clone()),
                doc: doc.to_owned(),
            }),
        })
    }

    fn source<'v>(
        #[starlark(require = named, default = false)] allow_directory: bool,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        make(eval, AttrType::Source { allow_directory }, default, doc)
    }

    fn dep<'v>(
        #[starlark(require = named)] providers: Option<Value<'v>>,
        #[starlark(require = named)] pulls_plugins: Option<Value<'v>>,
        #[starlark(require = named)] pulls_and_pushes_plugins: Option<Value<'v>>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        let _ = (pulls_plugins, pulls_and_pushes_plugins);
        let providers = providers_list(providers)?;
        make(
            eval,
            AttrType::Dep {
                kind: DepKind::Plain,
                providers,
            },
            default,
            doc,
        )
    }

    fn exec_dep<'v>(
        #[starlark(require = named)] providers: Option<Value<'v>>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        let providers = providers_list(providers)?;
        make(
            eval,
            AttrType::Dep {
                kind: DepKind::Exec,
                providers,
            },
            default,
            doc,
        )
    }

    fn toolchain_dep<'v>(
        #[starlark(require = named)] providers: Option<Value<'v>>,
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<StarlarkAttribute> {
        let providers = providers_list(providers)?;
        make(
            eval,
            AttrType::Dep {
                kind: DepKind::Toolchain,
                providers,
            },
            default,
            doc,
        )
    }
}

/// The attributes every rule has (Buck2's "internal" attributes), with their defaults.
pub fn implicit_attributes() -> Vec<(String, Attribute)> {
    let list = |t: AttrType| AttrType::List(Box::new(t));
    let a = |ty, default| Attribute {
        ty,
        default: Some(default),
        doc: String::new(),
    };
    vec![
        (
            "compatible_with".into(),
            a(list(AttrType::Label), Coerced::List(vec![])),
        ),
        (
            "default_target_platform".into(),
            a(AttrType::Option(Box::new(AttrType::Label)), Coerced::None),
        ),
        (
            "exec_compatible_with".into(),
            a(list(AttrType::Label), Coerced::List(vec![])),
        ),
        (
            "metadata".into(),
            a(
                AttrType::Dict(Box::new(AttrType::String), Box::new(AttrType::Any), false),
                Coerced::Dict(vec![]),
            ),
        ),
        (
            "modifiers".into(),
            a(list(AttrType::Any), Coerced::List(vec![])),
        ),
        (
            "target_compatible_with".into(),
            a(list(AttrType::Label), Coerced::List(vec![])),
        ),
        (
            "tests".into(),
            a(list(AttrType::Label), Coerced::List(vec![])),
        ),
        (
            "visibility".into(),
            a(list(AttrType::String), Coerced::List(vec![])),
        ),
        (
            "within_view".into(),
            a(list(AttrType::String), Coerced::List(vec![])),
        ),
    ]
}
