//! The analysis context: `ctx.label`, `ctx.attrs`, `ctx.actions`, dependencies, and the
//! action registry with Buck2's invariants.

use std::fmt;
use std::sync::{Arc, Mutex};

use allocative::Allocative;
use regex::Regex;
use starlark::any::ProvidesStaticType;
use starlark::collections::StarlarkHasher;
use starlark::environment::{GlobalsBuilder, Methods, MethodsBuilder, MethodsStatic};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::none::NoneOr;
use starlark::values::starlark_value;
use starlark::values::starlark_value_as_type::StarlarkValueAsType;
use starlark::values::structs::StructRef;
use starlark::values::tuple::TupleRef;
use starlark::values::{
    AllocValue, Freeze, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize, StarlarkValue,
    Trace, Tracer, Value,
};

use crate::artifact::{Artifact, ArtifactPath, OutputArtifact};
use crate::cmd_args::{to_cmd_args, CmdArgs};
use crate::provider::{callable_of, FrozenProviderInstance, ProviderInstance};
use crate::repo::{join, TargetLabel};
use crate::tset::{make_tset, TransitiveSet};
use crate::util::sl_err;

/// A configured label: `cell//pkg:name (cfg)`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Label {
    #[allocative(skip)]
    pub target: TargetLabel,
    pub cfg: String,
    pub sub: Vec<String>,
}
starlark_simple_value!(Label);

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target)?;
        for s in &self.sub {
            write!(f, "[{s}]")?;
        }
        write!(f, " ({})", self.cfg)
    }
}

#[starlark_value(type = "Label")]
impl<'v> StarlarkValue<'v> for Label {
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("label_methods", label_methods);
        Some(RES.methods())
    }
    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(Label::from_value(other)
            .is_some_and(|o| o.target == self.target && o.cfg == self.cfg && o.sub == self.sub))
    }
    fn write_hash(&self, hasher: &mut StarlarkHasher) -> starlark::Result<()> {
        std::hash::Hash::hash(&self.to_string(), hasher);
        Ok(())
    }
}

#[starlark_module]
fn label_methods(builder: &mut MethodsBuilder) {
    #[starlark(attribute)]
    fn name(this: &Label) -> starlark::Result<String> {
        Ok(this.target.name.clone())
    }
    #[starlark(attribute)]
    fn package(this: &Label) -> starlark::Result<String> {
        Ok(this.target.package.clone())
    }
    #[starlark(attribute)]
    fn cell(this: &Label) -> starlark::Result<String> {
        Ok(this.target.cell.clone())
    }
    #[starlark(attribute)]
    fn path(this: &Label) -> starlark::Result<String> {
        Ok(format!("{}//{}", this.target.cell, this.target.package))
    }
    #[starlark(attribute)]
    fn sub_target(this: &Label) -> starlark::Result<NoneOr<Vec<String>>> {
        Ok(if this.sub.is_empty() {
            NoneOr::None
        } else {
            NoneOr::Other(this.sub.clone())
        })
    }
    fn raw_target(this: &Label) -> starlark::Result<TargetLabelValue> {
        Ok(TargetLabelValue {
            target: this.target.clone(),
        })
    }
    fn configured_target(this: &Label) -> starlark::Result<Label> {
        Ok(Label {
            target: this.target.clone(),
            cfg: this.cfg.clone(),
            sub: vec![],
        })
    }
}

/// An unconfigured target label, `cell//pkg:name`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct TargetLabelValue {
    #[allocative(skip)]
    pub target: TargetLabel,
}
starlark_simple_value!(TargetLabelValue);

impl fmt::Display for TargetLabelValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target)
    }
}

#[starlark_value(type = "TargetLabel")]
impl<'v> StarlarkValue<'v> for TargetLabelValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        Some(match attribute {
            "name" => heap.alloc(self.target.name.as_str()),
            "package" => heap.alloc(self.target.package.as_str()),
            "cell" => heap.alloc(self.target.cell.as_str()),
            "path" => heap.alloc(format!("{}//{}", self.target.cell, self.target.package)),
            _ => return None,
        })
    }
    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(TargetLabelValue::from_value(other).is_some_and(|o| o.target == self.target))
    }
    fn write_hash(&self, hasher: &mut StarlarkHasher) -> starlark::Result<()> {
        std::hash::Hash::hash(&self.target, hasher);
        Ok(())
    }
}

/// A dependency: its label and the providers its analysis returned (a frozen list).
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct Dependency {
    #[allocative(skip)]
    pub target: TargetLabel,
    pub cfg: String,
    #[allocative(skip)]
    pub providers: FrozenValue,
}
starlark_simple_value!(Dependency);

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<dependency {} ({})>", self.target, self.cfg)
    }
}

impl Dependency {
    fn find<'v>(&self, index: Value<'v>) -> starlark::Result<Option<Value<'v>>> {
        let want = callable_of(index)
            .ok_or_else(|| sl_err(format!("provider collection operation [] parameter type must be a provider type, got `{}`", index.get_type())))?
            .provider_id();
        let list = ListRef::from_value(self.providers.to_value()).expect("providers are a list");
        Ok(list
            .iter()
            .find(|p| ProviderInstance::from_value(*p).is_some_and(|i| i.id().id == want.id)))
    }

    pub fn provider_names(&self) -> Vec<String> {
        let list = ListRef::from_value(self.providers.to_value()).expect("providers are a list");
        list.iter()
            .filter_map(|p| ProviderInstance::from_value(p).map(|i| i.id().name))
            .collect()
    }
}

#[starlark_value(type = "Dependency")]
impl<'v> StarlarkValue<'v> for Dependency {
    fn at(&self, index: Value<'v>, _heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        match self.find(index)? {
            Some(v) => Ok(v),
            None => Err(sl_err(format!(
                "provider collection does not have a key `{}`, available keys are: [{}]",
                index.to_str(),
                self.provider_names()
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
    fn is_in(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(self.find(other)?.is_some())
    }
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("dependency_methods", dependency_methods);
        Some(RES.methods())
    }
}

#[starlark_module]
fn dependency_methods(builder: &mut MethodsBuilder) {
    fn get<'v>(
        this: &Dependency,
        #[starlark(require = pos)] index: Value<'v>,
    ) -> starlark::Result<Value<'v>> {
        Ok(this.find(index)?.unwrap_or(Value::new_none()))
    }
    #[starlark(attribute)]
    fn label(this: &Dependency) -> starlark::Result<Label> {
        Ok(Label {
            target: this.target.clone(),
            cfg: this.cfg.clone(),
            sub: vec![],
        })
    }
    #[starlark(attribute)]
    fn providers<'v>(this: &Dependency) -> starlark::Result<Value<'v>> {
        Ok(this.providers.to_value())
    }
}

/// One registered action, with its command line already rendered (project-relative paths).
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    Run {
        argv: Vec<String>,
        env: Vec<(String, String)>,
        local_only: bool,
    },
    Write {
        content: String,
        executable: bool,
    },
    Copy {
        src: Arc<ArtifactPath>,
        symlink: bool,
    },
    Dir {
        entries: Vec<(String, Arc<ArtifactPath>)>,
        symlink: bool,
    },
    Download {
        url: String,
        sha1: Option<String>,
        sha256: Option<String>,
        size: Option<u64>,
        executable: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub category: String,
    pub identifier: Option<String>,
    pub kind: ActionKind,
    pub inputs: Vec<Arc<ArtifactPath>>,
    pub outputs: Vec<Arc<ArtifactPath>>,
}

#[derive(Debug)]
struct Declared {
    path: Arc<ArtifactPath>,
    bound: bool,
}

/// The actions of one analysis (Buck2's `ActionsRegistry`).
#[derive(Debug)]
pub struct Registry {
    owner: String,
    out_dir: String,
    declared: Vec<Declared>,
    pub actions: Vec<Action>,
}

impl Registry {
    pub fn new(owner: String, out_dir: String) -> Self {
        Registry {
            owner,
            out_dir,
            declared: Vec::new(),
            actions: Vec::new(),
        }
    }

    fn declare(&mut self, short: &str) -> anyhow::Result<Arc<ArtifactPath>> {
        if short.is_empty() {
            anyhow::bail!("Output path for artifact or metadata file cannot be empty.");
        }
        if short.starts_with('/')
            || short
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            anyhow::bail!("output path `{short}` must be a normalized relative path");
        }
        for d in &self.declared {
            let other = &d.path.short_path;
            if other == short {
                anyhow::bail!("Multiple artifacts and/or metadata files are declared at the same output location `{short}` declared at `<unknown>`.");
            }
            if other.starts_with(&format!("{short}/")) || short.starts_with(&format!("{other}/")) {
                anyhow::bail!(
                    "Multiple artifacts and/or metadata files are declared at conflicting output locations. Output path `{short}` conflicts with the following output paths: [\"{other} declared at <unknown>\"]."
                );
            }
        }
        let p = Arc::new(ArtifactPath {
            path: join(&self.out_dir, short),
            short_path: short.to_owned(),
            owner: Some(self.owner.clone()),
        });
        self.declared.push(Declared {
            path: p.clone(),
            bound: false,
        });
        Ok(p)
    }

    fn bind(&mut self, out: &Arc<ArtifactPath>) -> anyhow::Result<()> {
        match self.declared.iter_mut().find(|d| d.path == *out) {
            None => anyhow::bail!("Artifact `{}` was not declared by this rule's analysis (`{}`), so it cannot be an output here", out.short_path, self.owner),
            Some(d) if d.bound => anyhow::bail!("Attempted to bind an artifact which was already bound\n  Artifact: {}", out.short_path),
            Some(d) => {
                d.bound = true;
                Ok(())
            }
        }
    }

    fn register(&mut self, mut action: Action) -> anyhow::Result<()> {
        action.outputs.dedup();
        for o in action.outputs.clone() {
            self.bind(&o)?;
        }
        self.actions.push(action);
        Ok(())
    }

    /// Buck2's end-of-analysis checks: every declared output bound, categories unique.
    pub fn finalize(&self) -> anyhow::Result<()> {
        for d in &self.declared {
            if !d.bound {
                anyhow::bail!(
                    "Artifact must be bound by now. If you are intending to use this artifact as the output of `run`, are you missing an `.as_output()` call?\n  Artifact: ({})/{}",
                    self.owner,
                    d.path.short_path
                );
            }
        }
        let mut seen: std::collections::HashMap<&str, std::collections::HashSet<&str>> =
            Default::default();
        for a in &self.actions {
            match &a.identifier {
                Some(id) => {
                    if !seen.entry(&a.category).or_default().insert(id) {
                        anyhow::bail!(
                            "Action category `{}` contains duplicate identifier `{id}`; category-identifier pairs must be unique within a rule",
                            a.category
                        );
                    }
                }
                None => {
                    if seen.insert(&a.category, Default::default()).is_some() {
                        anyhow::bail!(
                            "Analysis produced multiple actions with category `{}` and at least one of them had no identifier. Add an identifier to these actions to disambiguate them",
                            a.category
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// `ctx.actions`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct AnalysisActions {
    #[allocative(skip)]
    pub reg: Arc<Mutex<Registry>>,
}
starlark_simple_value!(AnalysisActions);

impl fmt::Display for AnalysisActions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<ctx.actions>")
    }
}

#[starlark_value(type = "AnalysisActions")]
impl<'v> StarlarkValue<'v> for AnalysisActions {
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("actions_methods", actions_methods);
        Some(RES.methods())
    }
}

fn category_regex() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new("^[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*$").expect("valid regex"))
}

impl AnalysisActions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.reg.lock().expect("not poisoned")
    }

    /// An action's output argument: a new name, or a declared artifact (or its `as_output()`).
    fn output(&self, v: Value) -> starlark::Result<Arc<ArtifactPath>> {
        if let Some(s) = v.unpack_str() {
            return self.lock().declare(s).map_err(starlark::Error::new_other);
        }
        if let Some(a) = Artifact::from_value(v) {
            return Ok(a.path.clone());
        }
        if let Some(o) = OutputArtifact::from_value(v) {
            return Ok(o.path.clone());
        }
        Err(sl_err(format!(
            "Expected an output name, artifact or output artifact, got `{}` of type `{}`",
            v.to_repr(),
            v.get_type()
        )))
    }

    fn input(v: Value) -> starlark::Result<Arc<ArtifactPath>> {
        Artifact::from_value(v)
            .map(|a| a.path.clone())
            .ok_or_else(|| {
                sl_err(format!(
                    "Expected an artifact, got `{}` of type `{}`",
                    v.to_repr(),
                    v.get_type()
                ))
            })
    }

    fn register(&self, action: Action) -> starlark::Result<()> {
        self.lock()
            .register(action)
            .map_err(starlark::Error::new_other)
    }
}

fn json_of<'v>(v: Value<'v>) -> starlark::Result<serde_json::Value> {
    use serde_json::Value as J;
    Ok(if v.is_none() {
        J::Null
    } else if let Some(b) = v.unpack_bool() {
        J::Bool(b)
    } else if let Some(i) = v.unpack_i32() {
        J::from(i)
    } else if let Some(s) = v.unpack_str() {
        J::String(s.to_owned())
    } else if let Some(a) = Artifact::from_value(v) {
        J::String(a.path.path.clone())
    } else if let Some(o) = OutputArtifact::from_value(v) {
        J::String(o.path.path.clone())
    } else if let Some(c) = CmdArgs::from_value(v) {
        J::Array(c.data().render().into_iter().map(J::String).collect())
    } else if let Some(l) = ListRef::from_value(v) {
        J::Array(l.iter().map(json_of).collect::<starlark::Result<_>>()?)
    } else if let Some(t) = TupleRef::from_value(v) {
        J::Array(t.iter().map(json_of).collect::<starlark::Result<_>>()?)
    } else if let Some(d) = DictRef::from_value(v) {
        let mut m = serde_json::Map::new();
        for (k, x) in d.iter() {
            let k = k.unpack_str().ok_or_else(|| {
                sl_err(format!(
                    "write_json: dict keys must be strings, got `{}`",
                    k.get_type()
                ))
            })?;
            m.insert(k.to_owned(), json_of(x)?);
        }
        J::Object(m)
    } else if let Some(s) = StructRef::from_value(v) {
        let mut m = serde_json::Map::new();
        for (k, x) in s.iter() {
            m.insert(k.as_str().to_owned(), json_of(x)?);
        }
        J::Object(m)
    } else if let Some(l) = Label::from_value(v) {
        J::String(l.to_string())
    } else if let Some(l) = TargetLabelValue::from_value(v) {
        J::String(l.to_string())
    } else {
        return Err(sl_err(format!(
            "write_json cannot write a value of type `{}`",
            v.get_type()
        )));
    })
}

/// Buck2's `DownloadFileError` checks of a digest: its length, then its characters.
fn check_hex(name: &str, v: &str, len: usize) -> starlark::Result<()> {
    if v.len() != len {
        return Err(sl_err(format!(
            "Invalid digest for `{name}` argument, expected length of {len} but got {}, digest `{v}`",
            v.len()
        )));
    }
    if let Some(bad) = v.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(sl_err(format!(
            "Invalid digest for `{name}` argument, expected 0-9 a-z hex characters, but got `{bad}`, digest `{v}`"
        )));
    }
    Ok(())
}

/// `ctx.actions.artifact_tag()`: what marks a dep file and the inputs it covers. Dep files
/// only let Buck2 skip a run; the emulation always runs, so tagging changes nothing.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct ArtifactTag;
starlark_simple_value!(ArtifactTag);

impl fmt::Display for ArtifactTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArtifactTag")
    }
}

#[starlark_value(type = "ArtifactTag")]
impl<'v> StarlarkValue<'v> for ArtifactTag {
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic =
            MethodsStatic::new("artifact_tag_methods", artifact_tag_methods);
        Some(RES.methods())
    }
}

#[starlark_module]
fn artifact_tag_methods(builder: &mut MethodsBuilder) {
    /// The value, as the command line it stands in (Buck2 wraps it, tagged).
    fn tag_artifacts<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = pos)] arg: Value<'v>,
    ) -> starlark::Result<Value<'v>> {
        Ok(arg)
    }
}

// Buck2's signatures have many named parameters; the macro turns each into an argument.
#[allow(clippy::too_many_arguments)]
#[starlark_module]
fn actions_methods(builder: &mut MethodsBuilder) {
    fn artifact_tag(#[starlark(this)] _this: &AnalysisActions) -> starlark::Result<ArtifactTag> {
        Ok(ArtifactTag)
    }

    fn declare_output<'v>(
        this: &AnalysisActions,
        #[starlark(require = pos)] prefix: &str,
        #[starlark(require = pos)] filename: Option<&str>,
        #[starlark(require = named, default = false)] dir: bool,
        #[starlark(require = named)] has_content_based_path: Option<bool>,
        #[starlark(require = named)] uses_experimental_content_based_path_hashing: Option<bool>,
    ) -> starlark::Result<Artifact> {
        let _ = (
            dir,
            has_content_based_path,
            uses_experimental_content_based_path_hashing,
        );
        let short = match filename {
            Some(f) => join(prefix, f),
            None => prefix.to_owned(),
        };
        Ok(Artifact {
            path: this
                .lock()
                .declare(&short)
                .map_err(starlark::Error::new_other)?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn run<'v>(
        this: &AnalysisActions,
        #[starlark(require = pos)] arguments: Value<'v>,
        #[starlark(require = named)] category: &str,
        #[starlark(require = named)] identifier: Option<&str>,
        #[starlark(require = named)] env: Option<Value<'v>>,
        #[starlark(require = named, default = false)] local_only: bool,
        #[starlark(require = named, default = false)] prefer_local: bool,
        #[starlark(require = named, default = false)] prefer_remote: bool,
        #[starlark(require = named, default = false)] always_print_stderr: bool,
        #[starlark(require = named)] weight: Option<i32>,
        #[starlark(require = named)] weight_percentage: Option<i32>,
        #[starlark(require = named)] dep_files: Option<Value<'v>>,
        #[starlark(require = named)] metadata_env_var: Option<&str>,
        #[starlark(require = named)] metadata_path: Option<&str>,
        #[starlark(require = named, default = false)] no_outputs_cleanup: bool,
        #[starlark(require = named)] allow_cache_upload: Option<bool>,
        #[starlark(require = named, default = false)] allow_offline_output_cache: bool,
        #[starlark(require = named, default = false)] force_full_hybrid_if_capable: bool,
        #[starlark(require = named)] exe: Option<Value<'v>>,
        #[starlark(require = named, default = false)] unique_input_inodes: bool,
        #[starlark(require = named)] error_handler: Option<Value<'v>>,
        #[starlark(require = named)] remote_execution_dependencies: Option<Value<'v>>,
        #[starlark(require = named)] timeout_seconds: Option<Value<'v>>,
        #[starlark(require = named)] outputs_for_error_handler: Option<Value<'v>>,
    ) -> starlark::Result<NoneOr<bool>> {
        let _ = (
            always_print_stderr,
            dep_files,
            metadata_env_var,
            metadata_path,
            no_outputs_cleanup,
            allow_cache_upload,
        );
        let _ = (
            allow_offline_output_cache,
            force_full_hybrid_if_capable,
            unique_input_inodes,
            error_handler,
        );
        let _ = (
            remote_execution_dependencies,
            timeout_seconds,
            outputs_for_error_handler,
        );
        if !category_regex().is_match(category) {
            return Err(sl_err(format!(
                "Invalid category `{category}`. Must be a snake_cased identifier consisting of lowercase alphanumeric characters, e.g. `cxx_compile`. Each section of the snake_cased identifier must begin with a lowercase letter (not a number)."
            )));
        }
        if [local_only, prefer_local, prefer_remote]
            .iter()
            .filter(|b| **b)
            .count()
            > 1
        {
            return Err(sl_err(
                "Only one of `local_only`, `prefer_local` and `prefer_remote` may be set".into(),
            ));
        }
        if weight.is_some() && weight_percentage.is_some() {
            return Err(sl_err(
                "`weight` and `weight_percentage` cannot both be passed".into(),
            ));
        }
        if let Some(w) = weight {
            if w < 1 {
                return Err(sl_err(format!(
                    "`weight` must be a positive integer, got `{w}`"
                )));
            }
        }
        let mut cmd = to_cmd_args(arguments).map_err(starlark::Error::new_other)?;
        if let Some(e) = exe {
            let mut exe_args = to_cmd_args(e).map_err(starlark::Error::new_other)?;
            exe_args
                .items
                .push(crate::cmd_args::ArgItem::Nested(Arc::new(cmd)));
            cmd = exe_args;
        }
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        cmd.artifacts(&mut inputs, &mut outputs);
        let mut env_pairs = Vec::new();
        if let Some(e) = env {
            let d = DictRef::from_value(e).ok_or_else(|| sl_err("`env` must be a dict".into()))?;
            for (k, v) in d.iter() {
                let k = k
                    .unpack_str()
                    .ok_or_else(|| sl_err("`env` keys must be strings".into()))?;
                let c = to_cmd_args(v).map_err(starlark::Error::new_other)?;
                c.artifacts(&mut inputs, &mut outputs);
                env_pairs.push((k.to_owned(), c.render().join(" ")));
            }
        }
        if outputs.is_empty() {
            return Err(sl_err(
                "expected at least one output artifact, did not get any".into(),
            ));
        }
        let argv = cmd.render();
        this.register(Action {
            category: category.to_owned(),
            identifier: identifier.map(str::to_owned),
            kind: ActionKind::Run {
                argv,
                env: env_pairs,
                local_only,
            },
            inputs,
            outputs,
        })?;
        Ok(NoneOr::None)
    }

    fn write<'v>(
        this: &AnalysisActions,
        #[starlark(require = pos)] output: Value<'v>,
        #[starlark(require = pos)] content: Value<'v>,
        #[starlark(require = named, default = false)] is_executable: bool,
        #[starlark(require = named, default = false)] allow_args: bool,
        #[starlark(require = named, default = false)] with_inputs: bool,
        #[starlark(require = named)] absolute: Option<bool>,
        heap: Heap<'v>,
    ) -> starlark::Result<Value<'v>> {
        let _ = absolute;
        let out = this.output(output)?;
        let c = to_cmd_args(content).map_err(starlark::Error::new_other)?;
        let (mut inputs, mut outs) = (Vec::new(), Vec::new());
        c.artifacts(&mut inputs, &mut outs);
        if !outs.is_empty() {
            return Err(sl_err(
                "`write` content cannot contain output artifacts".into(),
            ));
        }
        let text = if content.unpack_str().is_some() {
            c.render().concat()
        } else {
            c.render().join("\n") + "\n"
        };
        this.register(Action {
            category: "write".into(),
            identifier: Some(out.short_path.clone()),
            kind: ActionKind::Write {
                content: text,
                executable: is_executable,
            },
            inputs: if with_inputs { inputs } else { vec![] },
            outputs: vec![out.clone()],
        })?;
        let art = heap.alloc(Artifact { path: out });
        Ok(if allow_args {
            heap.alloc((art, heap.alloc(starlark::values::list::AllocList::EMPTY)))
        } else {
            art
        })
    }

    fn write_json<'v>(
        this: &AnalysisActions,
        #[starlark(require = pos)] output: Value<'v>,
        #[starlark(require = pos)] content: Value<'v>,
        #[starlark(require = named, default = false)] pretty: bool,
        #[starlark(require = named, default = false)] with_inputs: bool,
        #[starlark(require = named)] absolute: Option<bool>,
    ) -> starlark::Result<Artifact> {
        let _ = (with_inputs, absolute);
        let out = this.output(output)?;
        let j = json_of(content)?;
        let text = if pretty {
            serde_json::to_string_pretty(&j)
        } else {
            serde_json::to_string(&j)
        }
        .map_err(starlark::Error::new_other)?;
        this.register(Action {
            category: "write_json".into(),
            identifier: Some(out.short_path.clone()),
            kind: ActionKind::Write {
                content: text,
                executable: false,
            },
            inputs: vec![],
            outputs: vec![out.clone()],
        })?;
        Ok(Artifact { path: out })
    }

    fn copy_file<'v>(
        this: &AnalysisActions,
        #[starlark(require = pos)] dest: Value<'v>,
        #[starlark(require = pos)] src: Value<'v>,
    ) -> starlark::Result<Artifact> {
        copy_action(this, dest, src, "copy", false)
    }

    fn symlink_file<'v>(
        this: &AnalysisActions,
        #[starlark(require = pos)] dest: Value<'v>,
        #[starlark(require = pos)] src: Value<'v>,
    ) -> starlark::Result<Artifact> {
        copy_action(this, dest, src, "symlink", true)
    }

    fn copy_dir<'v>(
        this: &AnalysisActions,
        #[starlark(require = pos)] dest: Value<'v>,
        #[starlark(require = pos)] src: Value<'v>,
    ) -> starlark::Result<Artifact> {
        copy_action(this, dest, src, "copy", false)
    }

    fn symlinked_dir<'v>(
        this: &AnalysisActions,
        #[starlark(require = pos)] output: Value<'v>,
        #[starlark(require = pos)] srcs: Value<'v>,
    ) -> starlark::Result<Artifact> {
        dir_action(this, output, srcs, true)
    }

    fn copied_dir<'v>(
        this: &AnalysisActions,
        #[starlark(require = pos)] output: Value<'v>,
        #[starlark(require = pos)] srcs: Value<'v>,
    ) -> starlark::Result<Artifact> {
        dir_action(this, output, srcs, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn download_file<'v>(
        this: &AnalysisActions,
        #[starlark(require = pos)] output: Value<'v>,
        #[starlark(require = pos)] url: &str,
        #[starlark(require = named)] vpnless_url: Option<&str>,
        #[starlark(require = named)] sha1: Option<&str>,
        #[starlark(require = named)] sha256: Option<&str>,
        #[starlark(require = named, default = false)] is_executable: bool,
        #[starlark(require = named)] size_bytes: Option<i32>,
        #[starlark(require = named)] has_content_based_path: Option<bool>,
    ) -> starlark::Result<Artifact> {
        let _ = (vpnless_url, has_content_based_path);
        if sha1.is_none() && sha256.is_none() {
            return Err(sl_err(
                "Must pass in at least one checksum (e.g. `sha1 = ...`)".into(),
            ));
        }
        if let Some(s) = sha1 {
            check_hex("sha1", s, 40)?;
        }
        if let Some(s) = sha256 {
            check_hex("sha256", s, 64)?;
        }
        if let Some(n) = size_bytes {
            if n < 0 {
                return Err(sl_err(format!(
                    "`size_bytes` must not be negative, got `{n}`"
                )));
            }
        }
        let out = this.output(output)?;
        this.register(Action {
            category: "download_file".into(),
            identifier: Some(out.short_path.clone()),
            kind: ActionKind::Download {
                url: url.to_owned(),
                sha1: sha1.map(str::to_owned),
                sha256: sha256.map(str::to_owned),
                size: size_bytes.map(|n| n as u64),
                executable: is_executable,
            },
            inputs: vec![],
            outputs: vec![out.clone()],
        })?;
        Ok(Artifact { path: out })
    }

    fn tset<'v>(
        this: &AnalysisActions,
        #[starlark(require = pos)] definition: Value<'v>,
        #[starlark(require = named)] value: Option<Value<'v>>,
        #[starlark(require = named)] children: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<TransitiveSet<'v>> {
        let _ = this;
        let children: Vec<Value> = match children {
            None => vec![],
            Some(c) => ListRef::from_value(c)
                .map(|l| l.iter().collect())
                .or_else(|| TupleRef::from_value(c).map(|t| t.iter().collect()))
                .ok_or_else(|| sl_err("`children` must be a list of tsets".into()))?,
        };
        make_tset(definition, value, children, eval)
    }

    fn anon_target<'v>(
        this: &AnalysisActions,
        #[starlark(args)] args: starlark::values::tuple::UnpackTuple<Value<'v>>,
    ) -> starlark::Result<Value<'v>> {
        let _ = (this, args);
        Err(sl_err(
            "anonymous targets are not emulated by the harness".into(),
        ))
    }

    fn dynamic_output<'v>(
        this: &AnalysisActions,
        #[starlark(kwargs)] kwargs: Value<'v>,
    ) -> starlark::Result<Value<'v>> {
        let _ = (this, kwargs);
        Err(sl_err(
            "`dynamic_output` is not emulated by the harness".into(),
        ))
    }
}

/// `copy_file`, `symlink_file` and `copy_dir`: one input copied (or linked) to one output.
fn copy_action<'v>(
    this: &AnalysisActions,
    dest: Value<'v>,
    src: Value<'v>,
    category: &str,
    symlink: bool,
) -> starlark::Result<Artifact> {
    let out = this.output(dest)?;
    let src = AnalysisActions::input(src)?;
    this.register(Action {
        category: category.into(),
        identifier: Some(out.short_path.clone()),
        kind: ActionKind::Copy {
            src: src.clone(),
            symlink,
        },
        inputs: vec![src],
        outputs: vec![out.clone()],
    })?;
    Ok(Artifact { path: out })
}

fn dir_action<'v>(
    this: &AnalysisActions,
    output: Value<'v>,
    srcs: Value<'v>,
    symlink: bool,
) -> starlark::Result<Artifact> {
    let out = this.output(output)?;
    let d = DictRef::from_value(srcs)
        .ok_or_else(|| sl_err("`srcs` must be a dict of path to artifact".into()))?;
    let mut entries = Vec::new();
    for (k, v) in d.iter() {
        let k = k
            .unpack_str()
            .ok_or_else(|| sl_err("`srcs` keys must be strings".into()))?;
        entries.push((k.to_owned(), AnalysisActions::input(v)?));
    }
    let inputs = entries.iter().map(|(_, a)| a.clone()).collect();
    this.register(Action {
        category: if symlink {
            "symlinked_dir".into()
        } else {
            "copied_dir".into()
        },
        identifier: Some(out.short_path.clone()),
        kind: ActionKind::Dir { entries, symlink },
        inputs,
        outputs: vec![out.clone()],
    })?;
    Ok(Artifact { path: out })
}

/// `ctx`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct AnalysisContext<'v> {
    pub attrs: Value<'v>,
    pub actions: Value<'v>,
    pub label: Value<'v>,
}

unsafe impl<'v> Trace<'v> for AnalysisContext<'v> {
    fn trace(&mut self, tracer: &Tracer<'v>) {
        tracer.trace(&mut self.attrs);
        tracer.trace(&mut self.actions);
        tracer.trace(&mut self.label);
    }
}

impl<'v> AllocValue<'v> for AnalysisContext<'v> {
    fn alloc_value(self, heap: Heap<'v>) -> Value<'v> {
        heap.alloc_complex(self)
    }
}

#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative)]
pub struct FrozenAnalysisContext {
    attrs: FrozenValue,
    actions: FrozenValue,
    label: FrozenValue,
}
starlark_simple_value!(FrozenAnalysisContext);

impl fmt::Display for FrozenAnalysisContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<ctx>")
    }
}

#[starlark_value(type = "AnalysisContext")]
impl<'v> StarlarkValue<'v> for FrozenAnalysisContext {
    type Canonical = AnalysisContext<'v>;
}

impl<'v> Freeze for AnalysisContext<'v> {
    type Frozen = FrozenAnalysisContext;
    fn freeze(self, f: &Freezer) -> FreezeResult<Self::Frozen> {
        Ok(FrozenAnalysisContext {
            attrs: self.attrs.freeze(f)?,
            actions: self.actions.freeze(f)?,
            label: self.label.freeze(f)?,
        })
    }
}

impl fmt::Display for AnalysisContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<ctx>")
    }
}

#[starlark_value(type = "AnalysisContext")]
impl<'v> StarlarkValue<'v> for AnalysisContext<'v> {
    fn get_attr(&self, attribute: &str, _heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "attrs" => Some(self.attrs),
            "actions" => Some(self.actions),
            "label" => Some(self.label),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        vec!["actions".into(), "attrs".into(), "label".into()]
    }
}

#[starlark_module]
pub fn analysis_types(builder: &mut GlobalsBuilder) {
    const AnalysisContext: StarlarkValueAsType<AnalysisContext<'static>> =
        StarlarkValueAsType::new();
    const Artifact: StarlarkValueAsType<Artifact> = StarlarkValueAsType::new();
    const OutputArtifact: StarlarkValueAsType<OutputArtifact> = StarlarkValueAsType::new();
    const Provider: StarlarkValueAsType<FrozenProviderInstance> = StarlarkValueAsType::new();
    const Dependency: StarlarkValueAsType<Dependency> = StarlarkValueAsType::new();
    const Label: StarlarkValueAsType<Label> = StarlarkValueAsType::new();
    const TargetLabel: StarlarkValueAsType<TargetLabelValue> = StarlarkValueAsType::new();
    const AnalysisActions: StarlarkValueAsType<AnalysisActions> = StarlarkValueAsType::new();
    const TransitiveSet: StarlarkValueAsType<crate::tset::FrozenTransitiveSet> =
        StarlarkValueAsType::new();
}
