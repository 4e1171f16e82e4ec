//! `cmd_args`: command lines as Buck2 builds them, rendered with project-relative paths.

use std::fmt;
use std::sync::{Arc, Mutex};

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::{GlobalsBuilder, Methods, MethodsBuilder, MethodsStatic};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::list::ListRef;
use starlark::values::starlark_value;
use starlark::values::tuple::TupleRef;
use starlark::values::{NoSerialize, StarlarkValue, Value};

use crate::artifact::{Artifact, ArtifactPath, OutputArtifact};
use crate::provider::{ProviderInstance, RUN_INFO_ID};
use crate::util::sl_err;

#[derive(Debug, Clone)]
pub enum ArgItem {
    Str(String),
    Input(Arc<ArtifactPath>),
    Output(Arc<ArtifactPath>),
    Nested(Arc<CmdArgsData>),
}

#[derive(Debug, Clone, Default)]
pub struct CmdArgsData {
    pub items: Vec<ArgItem>,
    pub hidden: Vec<ArgItem>,
    pub delimiter: Option<String>,
    pub format: Option<String>,
    pub prepend: Option<String>,
    pub quote_shell: bool,
    pub relative_to: Option<(Arc<ArtifactPath>, usize)>,
    pub absolute_prefix: Option<String>,
    pub absolute_suffix: Option<String>,
    pub ignore_artifacts: bool,
}

/// Relative path from directory `from` to `to` (both project-relative).
fn relative(from: &str, to: &str) -> String {
    let f: Vec<&str> = from.split('/').filter(|c| !c.is_empty()).collect();
    let t: Vec<&str> = to.split('/').filter(|c| !c.is_empty()).collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = std::iter::repeat_n("..", f.len() - common).collect();
    parts.extend(&t[common..]);
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

impl CmdArgsData {
    fn render_item(&self, item: &ArgItem, out: &mut Vec<String>) {
        let path = |p: &ArtifactPath| -> String {
            let mut s = match &self.relative_to {
                Some((base, parent)) => {
                    let mut dir = base.path.as_str();
                    for _ in 0..*parent {
                        dir = dir.rsplit_once('/').map_or("", |(d, _)| d);
                    }
                    relative(dir, &p.path)
                }
                None => p.path.clone(),
            };
            if let Some(pre) = &self.absolute_prefix {
                s = format!("{pre}{s}");
            }
            if let Some(suf) = &self.absolute_suffix {
                s.push_str(suf);
            }
            s
        };
        match item {
            ArgItem::Str(s) => out.push(s.clone()),
            ArgItem::Input(p) | ArgItem::Output(p) => {
                if !self.ignore_artifacts {
                    out.push(path(p))
                }
            }
            ArgItem::Nested(n) => out.extend(n.render()),
        }
    }

    /// The command line: each item formatted, quoted, prepended, then joined by the delimiter.
    pub fn render(&self) -> Vec<String> {
        let mut raw = Vec::new();
        for i in &self.items {
            self.render_item(i, &mut raw);
        }
        let mut out = Vec::new();
        for mut s in raw {
            if let Some(f) = &self.format {
                s = f.replace("{}", &s);
            }
            if self.quote_shell {
                s = shell_quote(&s);
            }
            if let Some(p) = &self.prepend {
                out.push(p.clone());
            }
            out.push(s);
        }
        match &self.delimiter {
            Some(d) if !out.is_empty() => vec![out.join(d)],
            _ => out,
        }
    }

    /// Every artifact the command line reads and writes, hidden ones included.
    pub fn artifacts(
        &self,
        inputs: &mut Vec<Arc<ArtifactPath>>,
        outputs: &mut Vec<Arc<ArtifactPath>>,
    ) {
        for i in self.items.iter().chain(&self.hidden) {
            match i {
                ArgItem::Str(_) => {}
                ArgItem::Input(p) => inputs.push(p.clone()),
                ArgItem::Output(p) => outputs.push(p.clone()),
                ArgItem::Nested(n) => n.artifacts(inputs, outputs),
            }
        }
    }

    fn push_value(items: &mut Vec<ArgItem>, v: Value) -> anyhow::Result<()> {
        if let Some(s) = v.unpack_str() {
            items.push(ArgItem::Str(s.to_owned()));
        } else if let Some(a) = Artifact::from_value(v) {
            items.push(ArgItem::Input(a.path.clone()));
        } else if let Some(o) = OutputArtifact::from_value(v) {
            items.push(ArgItem::Output(o.path.clone()));
        } else if let Some(c) = CmdArgs::from_value(v) {
            items.push(ArgItem::Nested(Arc::new(c.data())));
        } else if let Some(l) = ListRef::from_value(v) {
            for x in l.iter() {
                Self::push_value(items, x)?;
            }
        } else if let Some(t) = TupleRef::from_value(v) {
            for x in t.iter() {
                Self::push_value(items, x)?;
            }
        } else if let Some(p) = ProviderInstance::from_value(v).filter(|p| p.id().id == RUN_INFO_ID)
        {
            Self::push_value(items, p.field("args").expect("RunInfo has args"))?;
        } else if let Some(l) = crate::analysis::Label::from_value(v) {
            items.push(ArgItem::Str(l.to_string()));
        } else if let Some(l) = crate::analysis::TargetLabelValue::from_value(v) {
            items.push(ArgItem::Str(l.to_string()));
        } else {
            anyhow::bail!(
                "Expected a command line item (str, Artifact, OutputArtifact, cmd_args, RunInfo or a list of them), got `{}` of type `{}`",
                v.to_repr(),
                v.get_type()
            );
        }
        Ok(())
    }
}

/// A mutable command line; `.add()` appends, as in Buck2.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct CmdArgs {
    #[allocative(skip)]
    data: Mutex<CmdArgsData>,
}
starlark_simple_value!(CmdArgs);

impl CmdArgs {
    pub fn new(data: CmdArgsData) -> Self {
        CmdArgs {
            data: Mutex::new(data),
        }
    }

    pub fn data(&self) -> CmdArgsData {
        self.data.lock().expect("not poisoned").clone()
    }

    pub fn from_value_list(values: &[Value]) -> anyhow::Result<CmdArgs> {
        let mut d = CmdArgsData::default();
        for v in values {
            CmdArgsData::push_value(&mut d.items, *v)?;
        }
        Ok(CmdArgs::new(d))
    }
}

/// Convert anything accepted on a command line into its data.
pub fn to_cmd_args(v: Value) -> anyhow::Result<CmdArgsData> {
    match CmdArgs::from_value(v) {
        Some(c) => Ok(c.data()),
        None => Ok(CmdArgs::from_value_list(&[v])?.data()),
    }
}

impl fmt::Display for CmdArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cmd_args({})", self.data().render().join(" "))
    }
}

#[starlark_value(type = "cmd_args")]
impl<'v> StarlarkValue<'v> for CmdArgs {
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("cmd_args_methods", cmd_args_methods);
        Some(RES.methods())
    }
}

#[starlark_module]
fn cmd_args_methods(builder: &mut MethodsBuilder) {
    fn add<'v>(
        this: Value<'v>,
        #[starlark(args)] args: starlark::values::tuple::UnpackTuple<Value<'v>>,
    ) -> starlark::Result<Value<'v>> {
        let c = CmdArgs::from_value(this).ok_or_else(|| sl_err("not a cmd_args".into()))?;
        let mut items = Vec::new();
        for a in args {
            CmdArgsData::push_value(&mut items, a).map_err(starlark::Error::new_other)?;
        }
        c.data.lock().expect("not poisoned").items.extend(items);
        Ok(this)
    }

    // No `hidden()` method: Buck2 removed it (hidden inputs are passed to the constructor),
    // so a call fails as any missing attribute does.

    fn inputs<'v>(this: &CmdArgs) -> starlark::Result<Vec<Artifact>> {
        let (mut i, mut o) = (Vec::new(), Vec::new());
        this.data().artifacts(&mut i, &mut o);
        Ok(i.into_iter().map(|path| Artifact { path }).collect())
    }
}

#[starlark_module]
pub fn cmd_args_globals(builder: &mut GlobalsBuilder) {
    /// Also the type of its values, as in Buck2 (`def f() -> cmd_args`).
    #[starlark(as_type = CmdArgs)]
    #[allow(clippy::too_many_arguments)]
    fn cmd_args<'v>(
        #[starlark(args)] args: starlark::values::tuple::UnpackTuple<Value<'v>>,
        #[starlark(require = named)] hidden: Option<Value<'v>>,
        #[starlark(require = named)] delimiter: Option<&str>,
        #[starlark(require = named)] format: Option<&str>,
        #[starlark(require = named)] prepend: Option<&str>,
        #[starlark(require = named)] quote: Option<&str>,
        #[starlark(require = named)] ignore_artifacts: Option<bool>,
        #[starlark(require = named)] absolute_prefix: Option<&str>,
        #[starlark(require = named)] absolute_suffix: Option<&str>,
        #[starlark(require = named)] parent: Option<i32>,
        #[starlark(require = named)] relative_to: Option<Value<'v>>,
        #[starlark(require = named)] replace_regex: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<CmdArgs> {
        let _ = eval;
        if parent.is_some() || replace_regex.is_some() {
            return Err(sl_err(
                "`parent` and `replace_regex` of cmd_args are not emulated by the harness".into(),
            ));
        }
        let mut d = CmdArgsData::default();
        for a in args {
            CmdArgsData::push_value(&mut d.items, a).map_err(starlark::Error::new_other)?;
        }
        if let Some(h) = hidden {
            CmdArgsData::push_value(&mut d.hidden, h).map_err(starlark::Error::new_other)?;
        }
        d.delimiter = delimiter.map(str::to_owned);
        d.format = format.map(str::to_owned);
        d.prepend = prepend.map(str::to_owned);
        d.quote_shell = match quote {
            None => false,
            Some("shell") => true,
            Some(q) => {
                return Err(sl_err(format!(
                    "Unknown quoting style `{q}`, expected `shell`"
                )))
            }
        };
        d.ignore_artifacts = ignore_artifacts.unwrap_or(false);
        d.absolute_prefix = absolute_prefix.map(str::to_owned);
        d.absolute_suffix = absolute_suffix.map(str::to_owned);
        if let Some(r) = relative_to {
            let (art, parent) = if let Some(t) = TupleRef::from_value(r) {
                let c = t.content();
                if c.len() != 2 {
                    return Err(sl_err(
                        "`relative_to` takes an artifact or `(artifact, parent)`".into(),
                    ));
                }
                (c[0], c[1].unpack_i32().unwrap_or(0).max(0) as usize)
            } else {
                (r, 0)
            };
            let a = Artifact::from_value(art).ok_or_else(|| {
                sl_err(format!(
                    "`relative_to` expects an artifact, got `{}`",
                    art.get_type()
                ))
            })?;
            d.relative_to = Some((a.path.clone(), parent));
        }
        Ok(CmdArgs::new(d))
    }
}
