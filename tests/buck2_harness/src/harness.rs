//! Configure and analyze targets for a chosen target and execution platform.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use starlark::environment::{FrozenModule, Module};
use starlark::eval::Evaluator;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::{AllocList, ListRef};
use starlark::values::structs::AllocStruct;
use starlark::values::{Heap, OwnedFrozenValue, Value};

use crate::analysis::{
    Action, AnalysisActions, AnalysisContext, Dependency, Label, Registry, TargetLabelValue,
};
use crate::artifact::{Artifact, ArtifactPath};
use crate::attrs::{AttrType, Coerced, DepKind, SourceRef};
use crate::cmd_args::{to_cmd_args, CmdArgsData};
use crate::load::Loader;
use crate::provider::{
    ProviderInstance, CONFIGURATION_INFO_ID, DEFAULT_INFO_ID, EXECUTION_PLATFORM_INFO_ID,
    EXTERNAL_RUNNER_TEST_INFO_ID, PLATFORM_INFO_ID,
};
use crate::repo::{parse_label, ProvidersLabel, TargetLabel};
use crate::rule::{RuleKind, TargetNode};
use crate::select::{resolve, ConfigSettingData, Configuration, KeyResolver};

type Key = (TargetLabel, Option<Configuration>, Option<Configuration>);

/// The result of analyzing one configured target.
pub struct AnalysisResult {
    pub label: TargetLabel,
    /// Name of the target configuration (`unconfigured` for configuration rules).
    pub cfg: String,
    /// The configuration as Buck2 prints it after a configured label: the target platform's
    /// label (Buck2 adds `#<hash>`, which the harness does not compute), or `<unbound>`.
    pub cfg_label: String,
    pub rule_kind: RuleKind,
    pub actions: Vec<Action>,
    providers: OwnedFrozenValue,
    _module: FrozenModule,
}

impl AnalysisResult {
    /// `repr()` of each returned provider, in order.
    pub fn providers(&self) -> Vec<String> {
        let list = ListRef::from_value(self.providers.value()).expect("a list");
        list.iter().map(|p| p.to_repr()).collect()
    }

    /// `repr()` of one field of one provider, e.g. `("RunInfo", "args")`.
    pub fn provider_field(&self, provider: &str, field: &str) -> Option<String> {
        let list = ListRef::from_value(self.providers.value()).expect("a list");
        list.iter()
            .filter_map(ProviderInstance::from_value)
            .find(|p| p.id().name == provider)
            .and_then(|p| p.field(field))
            .map(|v| v.to_repr())
    }

    fn provider<'a>(&'a self, id: u64) -> Option<&'a ProviderInstance<'a>> {
        let list = ListRef::from_value(self.providers.value()).expect("a list");
        list.iter()
            .filter_map(ProviderInstance::from_value)
            .find(|p| p.id().id == id)
    }

    /// The command and environment of an `ExternalRunnerTestInfo`, if the target is a test.
    pub(crate) fn test_info(&self) -> anyhow::Result<Option<TestInfo>> {
        let Some(info) = self.provider(EXTERNAL_RUNNER_TEST_INFO_ID) else {
            return Ok(None);
        };
        // Both default to true in open-source Buck2; the harness renders project-relative
        // paths only, so it cannot run a test that asks for anything else.
        for flag in ["run_from_project_root", "use_project_relative_paths"] {
            if info.field(flag).and_then(|v| v.unpack_bool()) == Some(false) {
                anyhow::bail!("the harness runs tests only with `{flag} = True`");
            }
        }
        let command = match info.field("command") {
            Some(c) if !c.is_none() => to_cmd_args(c)?,
            _ => CmdArgsData::default(),
        };
        let mut env = Vec::new();
        if let Some(d) = info.field("env").and_then(DictRef::from_value) {
            for (k, v) in d.iter() {
                let k = k
                    .unpack_str()
                    .context("`ExternalRunnerTestInfo.env` keys must be strings")?;
                env.push((k.to_owned(), to_cmd_args(v)?));
            }
        }
        Ok(Some(TestInfo { command, env }))
    }

    /// Project-relative paths of `DefaultInfo`'s default outputs (and other outputs).
    pub fn default_outputs(&self, include_other: bool) -> Vec<Arc<ArtifactPath>> {
        let di = self
            .provider(DEFAULT_INFO_ID)
            .expect("DefaultInfo is checked at analysis");
        let mut out = Vec::new();
        let mut fields = vec!["default_outputs"];
        if include_other {
            fields.push("other_outputs");
        }
        for f in fields {
            if let Some(l) = di.field(f).and_then(ListRef::from_value) {
                out.extend(
                    l.iter()
                        .filter_map(Artifact::from_value)
                        .map(|a| a.path.clone()),
                );
            }
        }
        out
    }
}

/// What `buck2 test` runs for a test target.
pub(crate) struct TestInfo {
    pub command: CmdArgsData,
    pub env: Vec<(String, CmdArgsData)>,
}

/// A repository opened for analysis.
pub struct Harness {
    pub(crate) loader: Loader,
    results: RefCell<HashMap<Key, Arc<AnalysisResult>>>,
    in_progress: RefCell<HashSet<Key>>,
    pub(crate) url_rewrites: Vec<(String, String)>,
}

fn json_to_value<'v>(j: &serde_json::Value, heap: Heap<'v>) -> Value<'v> {
    use serde_json::Value as J;
    match j {
        J::Null => Value::new_none(),
        J::Bool(b) => Value::new_bool(*b),
        J::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
            Some(i) => heap.alloc(i),
            None => heap.alloc(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => heap.alloc(s.as_str()),
        J::Array(a) => heap.alloc(AllocList(a.iter().map(|x| json_to_value(x, heap)))),
        J::Object(o) => heap
            .alloc(AllocDict(o.iter().map(|(k, v)| {
                (heap.alloc(k.as_str()), json_to_value(v, heap))
            }))),
    }
}

fn has_select(c: &Coerced) -> bool {
    match c {
        Coerced::Select(_) | Coerced::Concat(_) => true,
        Coerced::List(v) | Coerced::Tuple(v) => v.iter().any(has_select),
        Coerced::Dict(v) => v.iter().any(|(k, x)| has_select(k) || has_select(x)),
        _ => false,
    }
}

/// Dependencies of a resolved attribute value, with how each is configured.
fn collect_deps(ty: &AttrType, c: &Coerced, out: &mut Vec<(ProvidersLabel, DepKind)>) {
    match (ty, c) {
        (AttrType::Dep { kind, .. }, Coerced::Dep(l)) => out.push((l.clone(), *kind)),
        (AttrType::Source { .. }, Coerced::Source(SourceRef::Target(l))) => {
            out.push((l.clone(), DepKind::Plain))
        }
        (AttrType::List(i), Coerced::List(v)) => v.iter().for_each(|x| collect_deps(i, x, out)),
        (AttrType::Tuple(ts), Coerced::Tuple(v)) => {
            ts.iter().zip(v).for_each(|(t, x)| collect_deps(t, x, out))
        }
        (AttrType::Dict(k, t, _), Coerced::Dict(v)) => v.iter().for_each(|(a, b)| {
            collect_deps(k, a, out);
            collect_deps(t, b, out)
        }),
        (AttrType::Option(i) | AttrType::DefaultOnly(i), x) => collect_deps(i, x, out),
        (AttrType::OneOf(ts), x) => {
            // The value was coerced by the first type that accepted it; deps look the same.
            for t in ts {
                let before = out.len();
                collect_deps(t, x, out);
                if out.len() > before {
                    break;
                }
            }
        }
        _ => {}
    }
}

struct Resolver<'a> {
    h: &'a Harness,
}

impl KeyResolver for Resolver<'_> {
    fn key(&mut self, label: &ProvidersLabel) -> anyhow::Result<ConfigSettingData> {
        let r = self.h.analyze_key(&(label.target.clone(), None, None))?;
        let ci = r.provider(CONFIGURATION_INFO_ID).with_context(|| {
            format!("select() key `{label}` does not provide `ConfigurationInfo`")
        })?;
        config_data(ci)
    }

    fn buckconfig(&self, section_key: &str) -> Option<String> {
        let (s, k) = section_key.split_once('.')?;
        self.h.loader.config.get(s, k).map(str::to_owned)
    }
}

/// Read a `ConfigurationInfo` instance into constraint setting -> value labels and values.
fn config_data(ci: &ProviderInstance) -> anyhow::Result<ConfigSettingData> {
    let mut data = ConfigSettingData::default();
    let constraints = ci
        .field("constraints")
        .and_then(DictRef::from_value)
        .context("`ConfigurationInfo.constraints` must be a dict")?;
    for (k, v) in constraints.iter() {
        let value = ProviderInstance::from_value(v)
            .and_then(|p| p.field("label"))
            .context("`ConfigurationInfo.constraints` values must be `ConstraintValueInfo`")?;
        data.constraints.insert(k.to_str(), value.to_str());
    }
    let values = ci
        .field("values")
        .and_then(DictRef::from_value)
        .context("`ConfigurationInfo.values` must be a dict")?;
    for (k, v) in values.iter() {
        data.values.insert(k.to_str(), v.to_str());
    }
    Ok(data)
}

impl Harness {
    /// Open the repository rooted at `root` (the directory holding `.buckconfig`).
    pub fn open(root: impl AsRef<Path>) -> anyhow::Result<Harness> {
        Ok(Harness {
            loader: Loader::new(root.as_ref())?,
            results: RefCell::new(HashMap::new()),
            in_progress: RefCell::new(HashSet::new()),
            url_rewrites: Vec::new(),
        })
    }

    /// Serve `download_file` URLs starting with `from` from `to` instead (e.g. a loopback server).
    pub fn rewrite_url(&mut self, from: &str, to: &str) {
        self.url_rewrites.push((from.to_owned(), to.to_owned()));
    }

    pub fn loader(&self) -> &Loader {
        &self.loader
    }

    fn parse(&self, label: &str) -> anyhow::Result<TargetLabel> {
        Ok(self.parse_providers(label)?.target)
    }

    /// `label` with its sub-targets (`cell//pkg:name[sub]`).
    pub(crate) fn parse_providers(&self, label: &str) -> anyhow::Result<ProvidersLabel> {
        let root = self.loader.cells.root_cell().to_owned();
        parse_label(&self.loader.cells, &root, "", label)
    }

    /// The configuration a platform target stands for (its `PlatformInfo` or `ExecutionPlatformInfo`).
    pub fn configuration(&self, platform: &str) -> anyhow::Result<Configuration> {
        let label = self.parse(platform)?;
        let r = self.analyze_key(&(label.clone(), None, None))?;
        let info = r
            .provider(PLATFORM_INFO_ID)
            .or_else(|| r.provider(EXECUTION_PLATFORM_INFO_ID))
            .with_context(|| {
                format!("`{label}` provides neither `PlatformInfo` nor `ExecutionPlatformInfo`")
            })?;
        let ci = info
            .field("configuration")
            .and_then(ProviderInstance::from_value)
            .context("platform `configuration` must be a `ConfigurationInfo`")?;
        Ok(Configuration {
            name: label.name.clone(),
            label: label.to_string(),
            data: config_data(ci)?,
        })
    }

    /// Analyze `target` for a target platform and an execution platform (platform target labels).
    pub fn analyze(
        &self,
        target: &str,
        target_platform: &str,
        exec_platform: &str,
    ) -> anyhow::Result<Arc<AnalysisResult>> {
        let t = self.parse(target)?;
        let tp = self.configuration(target_platform)?;
        let ep = self.configuration(exec_platform)?;
        self.analyze_key(&(t, Some(tp), Some(ep)))
    }

    /// Every analysis done so far (the action graph to execute).
    pub(crate) fn all_results(&self) -> Vec<Arc<AnalysisResult>> {
        self.results.borrow().values().cloned().collect()
    }

    fn node(&self, label: &TargetLabel) -> anyhow::Result<TargetNode> {
        let pkg = self.loader.load_package(&label.cell, &label.package)?;
        pkg.targets.iter().find(|t| t.label == *label).cloned().with_context(|| {
            format!(
                "Unknown target `{}` from package `{}//{}`. Did you mean one of the {} targets in {}//{}?",
                label.name,
                label.cell,
                label.package,
                pkg.targets.len(),
                label.cell,
                label.package
            )
        })
    }

    pub(crate) fn analyze_key(&self, key: &Key) -> anyhow::Result<Arc<AnalysisResult>> {
        if let Some(r) = self.results.borrow().get(key) {
            return Ok(r.clone());
        }
        if !self.in_progress.borrow_mut().insert(key.clone()) {
            anyhow::bail!("Cycle detected when analyzing `{}`", key.0);
        }
        let res = self
            .analyze_uncached(key)
            .with_context(|| format!("Error running analysis for `{}`", key.0));
        self.in_progress.borrow_mut().remove(key);
        let r = Arc::new(res?);
        self.results.borrow_mut().insert(key.clone(), r.clone());
        Ok(r)
    }

    fn analyze_uncached(&self, key: &Key) -> anyhow::Result<AnalysisResult> {
        let (label, tcfg, ecfg) = key;
        let node = self.node(label)?;
        let rule = node.rule.clone();
        if rule.kind == RuleKind::Configuration && tcfg.is_some() {
            // Configuration rules are analyzed unconfigured.
            return self
                .analyze_key(&(label.clone(), None, None))
                .map(|r| AnalysisResult {
                    label: r.label.clone(),
                    cfg: r.cfg.clone(),
                    cfg_label: r.cfg_label.clone(),
                    rule_kind: r.rule_kind,
                    actions: r.actions.clone(),
                    providers: r.providers.clone(),
                    _module: r._module.clone(),
                });
        }
        let cfg_name = tcfg
            .as_ref()
            .map_or("unconfigured".to_owned(), |c| c.name.clone());
        let cfg_label = tcfg
            .as_ref()
            .map_or("<unbound>".to_owned(), |c| c.label.clone());

        // Resolve selects and collect dependencies.
        let mut resolved = Vec::new();
        for ((name, coerced), (_, attr)) in node.attrs.iter().zip(&rule.attrs) {
            let v = match tcfg {
                Some(c) => resolve(coerced, c, &mut Resolver { h: self })
                    .with_context(|| format!("resolving attribute `{name}` of `{label}`"))?,
                None => {
                    if has_select(coerced) {
                        anyhow::bail!("select() cannot be used in non-configurable attribute `{name}` of configuration rule `{label}`");
                    }
                    coerced.clone()
                }
            };
            resolved.push((name.clone(), attr.ty.clone(), v));
        }
        let mut deps = Vec::new();
        for (_, ty, v) in &resolved {
            collect_deps(ty, v, &mut deps);
        }
        let mut dep_results: HashMap<(ProvidersLabel, DepKind), Arc<AnalysisResult>> =
            HashMap::new();
        for (dl, kind) in deps {
            let dnode = self.node(&dl.target)?;
            match (kind, dnode.rule.kind) {
                (DepKind::Toolchain, RuleKind::Toolchain)
                | (DepKind::Plain | DepKind::Exec, RuleKind::Normal | RuleKind::Configuration) => {}
                (DepKind::Toolchain, _) => {
                    anyhow::bail!(
                        "Target `{}` was used as a toolchain_dep, but is not a toolchain rule",
                        dl.target
                    )
                }
                (_, RuleKind::Toolchain)
                    if rule.kind != RuleKind::Toolchain || kind != DepKind::Exec =>
                {
                    anyhow::bail!(
                        "Target `{}` was used not as a toolchain_dep, but is a toolchain rule",
                        dl.target
                    )
                }
                _ => {}
            }
            let dkey: Key = match (kind, tcfg, ecfg) {
                (_, None, _) | (_, _, None) => (dl.target.clone(), None, None),
                (DepKind::Exec, Some(_), Some(e)) => {
                    (dl.target.clone(), Some(e.clone()), Some(e.clone()))
                }
                (_, Some(t), Some(e)) => (dl.target.clone(), Some(t.clone()), Some(e.clone())),
            };
            let r = self.analyze_key(&dkey)?;
            dep_results.insert((dl, kind), r);
        }

        let owner = format!("{label} ({cfg_label})");
        let out_dir = format!(
            "buck-out/v2/gen/{}/{}/{}/__{}__",
            label.cell, cfg_name, label.package, label.name
        )
        .replace("//", "/");
        let reg = Arc::new(Mutex::new(Registry::new(owner, out_dir)));
        let heaps = self.loader.heaps();
        let cells = self.loader.cells.clone();

        let module = Module::with_temp_heap(|module| -> anyhow::Result<FrozenModule> {
            for h in &heaps {
                module.frozen_heap().add_reference(h);
            }
            for r in dep_results.values() {
                module.frozen_heap().add_reference(r.providers.owner());
            }
            let heap = module.heap();
            let conv = AttrValues {
                deps: &dep_results,
                cells: &cells,
                cfg: &cfg_name,
                package_dir: cells.project_path(&label.cell, &label.package),
            };
            let mut fields: Vec<(String, Value)> =
                vec![("name".into(), heap.alloc(label.name.as_str()))];
            for (name, ty, v) in &resolved {
                let val = conv
                    .to_value(ty, v, heap)
                    .with_context(|| format!("attribute `{name}` of `{label}`"))?;
                fields.push((name.clone(), val));
            }
            let attrs = heap.alloc(AllocStruct(fields));
            let ctx = heap.alloc(AnalysisContext {
                attrs,
                actions: heap.alloc(AnalysisActions { reg: reg.clone() }),
                label: heap.alloc(Label {
                    target: label.clone(),
                    cfg: cfg_name.clone(),
                    sub: vec![],
                }),
            });
            let result = {
                let mut eval = Evaluator::new(&module);
                eval.eval_function(rule.implementation.to_value(), &[ctx], &[])
                    .map_err(|e| anyhow::anyhow!("{e}"))?
            };
            check_providers(result)?;
            module.set("__providers__", result);
            module.freeze().map_err(anyhow::Error::from)
        })?;
        let registry = reg.lock().expect("not poisoned");
        registry.finalize()?;
        let providers = module.get("__providers__")?;
        Ok(AnalysisResult {
            label: label.clone(),
            cfg: cfg_name,
            cfg_label,
            rule_kind: rule.kind,
            actions: registry.actions.clone(),
            providers,
            _module: module,
        })
    }
}

/// Buck2's `ProviderCollection` checks on what `impl` returned.
fn check_providers(v: Value) -> anyhow::Result<()> {
    let list = ListRef::from_value(v)
        .with_context(|| format!("expected a list of Provider objects, got {}", v.to_repr()))?;
    let mut seen: Vec<(u64, Value)> = Vec::new();
    for p in list.iter() {
        let inst = ProviderInstance::from_value(p)
            .with_context(|| format!("expected a Provider object, got {}", p.to_repr()))?;
        let id = inst.id();
        if let Some((_, prev)) = seen.iter().find(|(i, _)| *i == id.id) {
            anyhow::bail!(
                "provider of type `{}` specified twice ({} and {})",
                id.name,
                prev.to_repr(),
                p.to_repr()
            );
        }
        seen.push((id.id, p));
    }
    if !seen.iter().any(|(i, _)| *i == DEFAULT_INFO_ID) {
        anyhow::bail!(
            "collection {} did not receive a `DefaultInfo` provider",
            v.to_repr()
        );
    }
    Ok(())
}

/// The `DefaultInfo` in a list of providers (analysis checked there is one).
fn default_info<'a>(providers: Value<'a>) -> &'a ProviderInstance<'a> {
    ListRef::from_value(providers)
        .and_then(|l| {
            l.iter()
                .filter_map(ProviderInstance::from_value)
                .find(|p| p.id().id == DEFAULT_INFO_ID)
        })
        .expect("checked")
}

/// The providers of the sub-target `l` names (`target[sub]`), or of the target itself.
fn sub_target_providers<'a>(
    l: &ProvidersLabel,
    r: &'a AnalysisResult,
) -> anyhow::Result<Value<'a>> {
    let mut providers = r.providers.value();
    for sub in &l.sub {
        let di = default_info(providers);
        let subs = di
            .field("sub_targets")
            .and_then(DictRef::from_value)
            .expect("checked");
        providers = subs.get_str(sub).with_context(|| {
            format!(
                "requested sub target named `{sub}` of target `{}` is not available",
                l.target
            )
        })?;
    }
    Ok(providers)
}

/// The default outputs of the sub-target `l` names (`target[sub]`), as Buck2 gives a source.
pub(crate) fn sub_target_outputs(
    l: &ProvidersLabel,
    r: &AnalysisResult,
) -> anyhow::Result<Vec<Arc<ArtifactPath>>> {
    let providers = sub_target_providers(l, r)?;
    let di = default_info(providers);
    Ok(di
        .field("default_outputs")
        .and_then(ListRef::from_value)
        .map(|l| {
            l.iter()
                .filter_map(Artifact::from_value)
                .map(|a| a.path.clone())
                .collect()
        })
        .unwrap_or_default())
}

fn dependency<'v>(
    l: &ProvidersLabel,
    r: &AnalysisResult,
    required: &[crate::provider::ProviderId],
    heap: Heap<'v>,
) -> anyhow::Result<Value<'v>> {
    let providers = sub_target_providers(l, r)?;
    let dep = Dependency {
        target: l.target.clone(),
        cfg: r.cfg.clone(),
        providers: providers
            .unpack_frozen()
            .expect("analysis results are frozen"),
    };
    let names = dep.provider_names();
    for req in required {
        if !ListRef::from_value(providers)
            .expect("a list")
            .iter()
            .filter_map(ProviderInstance::from_value)
            .any(|p| p.id().id == req.id)
        {
            // Buck2's `ResolutionError::MissingRequiredProvider`.
            anyhow::bail!(
                "Attribute requires a dep that provides `{}`, but it was not found on `{l} ({})`. Found these providers: {}",
                req.name,
                r.cfg_label,
                names.join(", ")
            );
        }
    }
    Ok(heap.alloc(dep))
}

/// What turning a resolved attribute into its analysis-time value needs.
struct AttrValues<'a> {
    deps: &'a HashMap<(ProvidersLabel, DepKind), Arc<AnalysisResult>>,
    cells: &'a crate::repo::Cells,
    cfg: &'a str,
    /// Project-relative directory of the package being analyzed.
    package_dir: String,
}

impl AttrValues<'_> {
    fn to_value<'v>(
        &self,
        ty: &AttrType,
        c: &Coerced,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let (deps, cells, cfg) = (self.deps, self.cells, self.cfg);
        Ok(match (ty, c) {
            (_, Coerced::None) => Value::new_none(),
            (_, Coerced::Bool(b)) => Value::new_bool(*b),
            (_, Coerced::Int(i)) => heap.alloc(*i as i32),
            (_, Coerced::Str(s)) => heap.alloc(s.as_str()),
            (_, Coerced::Json(j)) => json_to_value(j, heap),
            (AttrType::Option(i) | AttrType::DefaultOnly(i), x) => self.to_value(i, x, heap)?,
            (AttrType::List(i), Coerced::List(v)) => {
                let items = v
                    .iter()
                    .map(|x| self.to_value(i, x, heap))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                heap.alloc(AllocList(items))
            }
            (AttrType::Tuple(ts), Coerced::Tuple(v)) => {
                let items = ts
                    .iter()
                    .zip(v)
                    .map(|(t, x)| self.to_value(t, x, heap))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                heap.alloc(starlark::values::tuple::AllocTuple(items))
            }
            (AttrType::Dict(kt, vt, _), Coerced::Dict(v)) => {
                let mut items = Vec::new();
                for (k, x) in v {
                    items.push((self.to_value(kt, k, heap)?, self.to_value(vt, x, heap)?));
                }
                heap.alloc(AllocDict(items))
            }
            (AttrType::OneOf(ts), x) => {
                let mut last = None;
                for t in ts {
                    match self.to_value(t, x, heap) {
                        Ok(v) => return Ok(v),
                        Err(e) => last = Some(e),
                    }
                }
                return Err(last.unwrap_or_else(|| anyhow::anyhow!("no type of one_of matched")));
            }
            (AttrType::Dep { kind, providers }, Coerced::Dep(l)) => {
                let r = deps.get(&(l.clone(), *kind)).expect("deps analyzed first");
                dependency(l, r, providers, heap)?
            }
            (AttrType::Source { allow_directory }, Coerced::Source(SourceRef::File(p))) => {
                if !allow_directory && cells.root.join(p).is_dir() {
                    anyhow::bail!(
                        "Source `{p}` is a directory; use `attrs.source(allow_directory = True)`"
                    );
                }
                // Buck2's `short_path` of a source file is relative to its package (the
                // package is part of the full path only: `ArtifactPath::with_short_path`).
                let short_path = if self.package_dir.is_empty() {
                    p.clone()
                } else {
                    p.strip_prefix(&format!("{}/", self.package_dir))
                        .with_context(|| {
                            format!(
                                "internal error: source `{p}` is outside its package `{}`",
                                self.package_dir
                            )
                        })?
                        .to_owned()
                };
                heap.alloc(Artifact {
                    path: Arc::new(ArtifactPath {
                        path: p.clone(),
                        short_path,
                        owner: None,
                    }),
                })
            }
            (AttrType::Source { .. }, Coerced::Source(SourceRef::Target(l))) => {
                let r = deps
                    .get(&(l.clone(), DepKind::Plain))
                    .expect("deps analyzed first");
                let outs = if l.sub.is_empty() {
                    r.default_outputs(false)
                } else {
                    sub_target_outputs(l, r)?
                };
                if outs.len() != 1 {
                    anyhow::bail!(
                        "Expected a single artifact from `{l}`, but it returned {} artifacts",
                        outs.len()
                    );
                }
                heap.alloc(Artifact {
                    path: outs[0].clone(),
                })
            }
            (AttrType::Label, Coerced::Label(l)) => heap.alloc(Label {
                target: l.target.clone(),
                cfg: cfg.to_owned(),
                sub: l.sub.clone(),
            }),
            (_, Coerced::Label(l)) => heap.alloc(TargetLabelValue {
                target: l.target.clone(),
            }),
            (t, x) => {
                anyhow::bail!("internal error: value `{x:?}` does not fit attribute type `{t}`")
            }
        })
    }
}
