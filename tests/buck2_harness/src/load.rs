//! Loading the repository: each file parsed in its Buck2 dialect and evaluated with the
//! emulated globals and the implicit prelude.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use starlark::any::ProvidesStaticType;
use starlark::environment::{FrozenModule, Globals, GlobalsBuilder, LibraryExtension, Module};
use starlark::eval::{Evaluator, FileLoader};
use starlark::starlark_module;
use starlark::syntax::{AstModule, Dialect, DialectTypes};
use starlark::values::list::UnpackList;
use starlark::values::structs::{AllocStruct, StructRef};
use starlark::values::{FrozenHeapRef, Value};

use crate::repo::{parse_import, BuckConfig, CellPath, Cells};
use crate::rule::TargetNode;
use crate::util::sl_err;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Bzl,
    Buck,
    Package,
}

impl FileKind {
    /// Buck2's dialect per file kind (app/buck2_interpreter/src/file_type.rs).
    pub fn dialect(self) -> Dialect {
        let bzl = self == FileKind::Bzl;
        Dialect {
            enable_def: bzl,
            enable_lambda: true,
            enable_load: true,
            enable_keyword_only_arguments: bzl,
            enable_positional_only_arguments: bzl,
            enable_types: if bzl {
                DialectTypes::Enable
            } else {
                DialectTypes::Disable
            },
            enable_load_reexport: false,
            enable_top_level_stmt: bzl,
            enable_f_strings: false,
            ..Dialect::Standard
        }
    }
}

/// What the emulated globals know about the file being evaluated.
#[derive(ProvidesStaticType)]
pub struct LoadCtx {
    pub cells: Arc<Cells>,
    pub config: Arc<BuckConfig>,
    pub file: CellPath,
    pub kind: FileKind,
    /// The package a BUCK file defines (cell-relative), `None` for .bzl files.
    pub package: Option<String>,
    pub targets: RefCell<Vec<TargetNode>>,
}

impl LoadCtx {
    pub fn from_eval<'a>(eval: &'a Evaluator) -> starlark::Result<&'a LoadCtx> {
        eval.extra
            .and_then(|e| e.downcast_ref::<LoadCtx>())
            .ok_or_else(|| {
                sl_err(
                    "this function is only available while loading files, not during analysis"
                        .into(),
                )
            })
    }
}

/// Buck2 globals = the standard ones + these extensions (app/buck2_interpreter/src/interpreter/globals.rs).
pub fn build_globals() -> Globals {
    use LibraryExtension::*;
    GlobalsBuilder::extended_by(&[
        StructType,
        RecordType,
        EnumType,
        Map,
        Filter,
        Partial,
        Debug,
        Print,
        Json,
        Typing,
        SetType,
        NamespaceType,
    ])
    .with(crate::rule::rule_globals)
    .with(|b| b.namespace("attrs", crate::attrs::attrs_namespace))
    .with(crate::provider::provider_globals)
    .with(crate::provider::register_builtin_providers)
    .with(crate::select::select_globals)
    .with(crate::cmd_args::cmd_args_globals)
    .with(crate::tset::tset_globals)
    .with(crate::analysis::analysis_types)
    .with(load_time_globals)
    .build()
}

fn host_os_arch() -> (&'static str, &'static str) {
    (std::env::consts::OS, std::env::consts::ARCH)
}

#[starlark_module]
fn load_time_globals(builder: &mut GlobalsBuilder) {
    fn read_config<'v>(
        #[starlark(require = pos)] section: &str,
        #[starlark(require = pos)] key: &str,
        #[starlark(require = pos)] default: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let ctx = LoadCtx::from_eval(eval)?;
        Ok(match ctx.config.get(section, key) {
            Some(v) => eval.heap().alloc(v),
            None => default.unwrap_or(Value::new_none()),
        })
    }

    fn read_root_config<'v>(
        #[starlark(require = pos)] section: &str,
        #[starlark(require = pos)] key: &str,
        #[starlark(require = pos)] default: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        // The harness has one .buckconfig: the root cell's, which both read.
        let ctx = LoadCtx::from_eval(eval)?;
        Ok(match ctx.config.get(section, key) {
            Some(v) => eval.heap().alloc(v),
            None => default.unwrap_or(Value::new_none()),
        })
    }

    fn host_info<'v>(eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<Value<'v>> {
        let (os, arch) = host_os_arch();
        let heap = eval.heap();
        let os_s = heap.alloc(AllocStruct([
            ("is_linux", os == "linux"),
            ("is_macos", os == "macos"),
            ("is_windows", os == "windows"),
            ("is_freebsd", os == "freebsd"),
            (
                "is_unknown",
                !["linux", "macos", "windows", "freebsd"].contains(&os),
            ),
        ]));
        let arch_s = heap.alloc(AllocStruct([
            ("is_aarch64", arch == "aarch64"),
            ("is_arm", arch == "arm"),
            ("is_armeb", false),
            ("is_i386", arch == "x86"),
            ("is_mips", false),
            ("is_mips64", false),
            ("is_mipsel", false),
            ("is_mipsel64", false),
            ("is_powerpc", arch == "powerpc"),
            ("is_ppc64", arch == "powerpc64"),
            ("is_riscv64", arch == "riscv64"),
            (
                "is_unknown",
                !["aarch64", "x86_64", "arm", "x86"].contains(&arch),
            ),
            ("is_x86_64", arch == "x86_64"),
        ]));
        Ok(heap.alloc(AllocStruct([("os", os_s), ("arch", arch_s)])))
    }

    fn package_name(eval: &mut Evaluator) -> starlark::Result<String> {
        let ctx = LoadCtx::from_eval(eval)?;
        ctx.package.clone().ok_or_else(|| {
            sl_err("`package_name()` can only be called from a BUCK file or its macros".into())
        })
    }

    fn glob<'v>(
        #[starlark(require = pos)] include: UnpackList<String>,
        #[starlark(require = named, default = UnpackList::default())] exclude: UnpackList<String>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Vec<String>> {
        let ctx = LoadCtx::from_eval(eval)?;
        let Some(pkg) = ctx.package.as_deref() else {
            return Err(sl_err(
                "`glob()` can only be called from a BUCK file or its macros".into(),
            ));
        };
        let dir = ctx
            .cells
            .root
            .join(ctx.cells.project_path(&ctx.file.cell, pkg));
        let mut files = Vec::new();
        list_package_files(&dir, "", &mut files).map_err(starlark::Error::new_other)?;
        let mut out: Vec<String> = files
            .into_iter()
            .filter(|f| {
                include.items.iter().any(|p| glob_match(p, f))
                    && !exclude.items.iter().any(|p| glob_match(p, f))
            })
            .collect();
        out.sort();
        Ok(out)
    }
}

/// Files of a package, not descending into sub-packages (directories with a BUCK file).
fn list_package_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to list `{}`", dir.display()))?;
    for e in entries {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = crate::repo::join(prefix, &name);
        let ft = e.file_type()?;
        if ft.is_dir() {
            if e.path().join("BUCK").exists() || e.path().join("BUCK.v2").exists() {
                continue;
            }
            list_package_files(&e.path(), &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// Buck2 glob patterns: `*` within a component, `**` across components, `?` one character.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    fn comp(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => comp(&p[1..], s) || (!s.is_empty() && comp(p, &s[1..])),
            (Some(b'?'), Some(_)) => comp(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => comp(&p[1..], &s[1..]),
            _ => false,
        }
    }
    fn parts(p: &[&str], s: &[&str]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(&"**"), _) => parts(&p[1..], s) || (!s.is_empty() && parts(p, &s[1..])),
            (Some(a), Some(b)) => comp(a.as_bytes(), b.as_bytes()) && parts(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    parts(&p, &s)
}

/// A loaded BUCK file.
#[derive(Debug, Clone)]
pub struct Package {
    pub targets: Vec<TargetNode>,
}

/// Loads and caches modules and packages of one repository.
pub struct Loader {
    pub cells: Arc<Cells>,
    pub config: Arc<BuckConfig>,
    pub globals: Globals,
    modules: RefCell<HashMap<CellPath, FrozenModule>>,
    in_progress: RefCell<HashSet<CellPath>>,
    packages: RefCell<BTreeMap<(String, String), Arc<Package>>>,
}

struct FileLoaderFor<'a> {
    loader: &'a Loader,
    current: CellPath,
}

impl FileLoader for FileLoaderFor<'_> {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        let target = parse_import(&self.loader.cells, &self.current, path)
            .map_err(starlark::Error::new_other)?;
        self.loader
            .load_bzl(&target)
            .map_err(starlark::Error::new_other)
    }
}

impl Loader {
    pub fn new(root: &Path) -> anyhow::Result<Loader> {
        let root = root
            .canonicalize()
            .with_context(|| format!("failed to open repository `{}`", root.display()))?;
        let cfg_path = root.join(".buckconfig");
        let text = std::fs::read_to_string(&cfg_path)
            .with_context(|| format!("failed to read `{}`", cfg_path.display()))?;
        let config = BuckConfig::parse(&text)?;
        let cells = Cells::from_config(&root, &config)?;
        Ok(Loader {
            cells: Arc::new(cells),
            config: Arc::new(config),
            globals: build_globals(),
            modules: RefCell::new(HashMap::new()),
            in_progress: RefCell::new(HashSet::new()),
            packages: RefCell::new(BTreeMap::new()),
        })
    }

    /// Every frozen heap loaded so far, so analysis can keep their values alive.
    pub fn heaps(&self) -> Vec<FrozenHeapRef> {
        self.modules
            .borrow()
            .values()
            .map(|m| m.frozen_heap().clone())
            .collect()
    }

    fn prelude_path(&self) -> Option<CellPath> {
        let p = CellPath {
            cell: "prelude".into(),
            path: "prelude.bzl".into(),
        };
        self.cells
            .names()
            .any(|c| c == "prelude")
            .then_some(p)
            .filter(|p| self.file_path(p).exists())
    }

    pub fn file_path(&self, p: &CellPath) -> std::path::PathBuf {
        self.cells
            .root
            .join(self.cells.project_path(&p.cell, &p.path))
    }

    /// Load a `.bzl` file (cached).
    pub fn load_bzl(&self, path: &CellPath) -> anyhow::Result<FrozenModule> {
        if let Some(m) = self.modules.borrow().get(path) {
            return Ok(m.clone());
        }
        if !path.path.ends_with(".bzl") {
            anyhow::bail!("`load()` of `{path}`: only `.bzl` files can be loaded");
        }
        if !self.in_progress.borrow_mut().insert(path.clone()) {
            anyhow::bail!(
                "Load cycle detected: `{path}` loads itself (directly or through other files)"
            );
        }
        let res = self.eval_file(path, FileKind::Bzl, None);
        self.in_progress.borrow_mut().remove(path);
        let (m, _) = res?;
        self.modules.borrow_mut().insert(path.clone(), m.clone());
        Ok(m)
    }

    /// Load the package `cell//package` from its BUCK file (cached).
    pub fn load_package(&self, cell: &str, package: &str) -> anyhow::Result<Arc<Package>> {
        let key = (cell.to_owned(), package.to_owned());
        if let Some(p) = self.packages.borrow().get(&key) {
            return Ok(p.clone());
        }
        let mut file = None;
        for name in ["BUCK.v2", "BUCK"] {
            let p = CellPath {
                cell: cell.to_owned(),
                path: crate::repo::join(package, name),
            };
            if self.file_path(&p).exists() {
                file = Some(p);
                break;
            }
        }
        let file = file.with_context(|| {
            format!("No build file (`BUCK.v2` or `BUCK`) in package `{cell}//{package}`")
        })?;
        let (_, targets) = self.eval_file(&file, FileKind::Buck, Some(package))?;
        let pkg = Arc::new(Package { targets });
        self.packages.borrow_mut().insert(key, pkg.clone());
        Ok(pkg)
    }

    /// Parse, lint and evaluate one file.
    pub fn eval_file(
        &self,
        path: &CellPath,
        kind: FileKind,
        package: Option<&str>,
    ) -> anyhow::Result<(FrozenModule, Vec<TargetNode>)> {
        let fs_path = self.file_path(path);
        let src = std::fs::read_to_string(&fs_path)
            .with_context(|| format!("failed to read `{}`", fs_path.display()))?;
        // Buck2's `StarlarkTabsError`: a tab anywhere in the file, not only in indentation.
        // A build file is named as Buck2 names it, `cell//package:BUCK`.
        if src.contains('\t') {
            let shown = match (kind, package) {
                (FileKind::Buck, Some(pkg)) => {
                    let file = path.path.rsplit('/').next().unwrap_or(&path.path);
                    format!("{}//{pkg}:{file}", path.cell)
                }
                _ => path.to_string(),
            };
            anyhow::bail!("Tabs are not allowed in Buck files: `{shown}`");
        }
        let ast = AstModule::parse(&path.to_string(), src, &kind.dialect())
            .map_err(|e| anyhow::anyhow!("{e}"))?;

        // The implicit prelude applies to every build file, and to .bzl files outside the
        // prelude cell (the prelude's own .bzl files would otherwise load themselves).
        let prelude = match self.prelude_path() {
            Some(p) if kind != FileKind::Bzl || path.cell != "prelude" => Some(self.load_bzl(&p)?),
            _ => None,
        };
        // Undefined names are refused before the module runs, as in Buck2: starlark's compiler
        // resolves every name against the globals, the prelude's public symbols and (in build
        // files) the fields of its `native` struct, which are all in scope below.
        let mut native_fields: Vec<(String, starlark::values::OwnedFrozenValue)> = Vec::new();
        if let Some(p) = &prelude {
            if kind == FileKind::Buck {
                if let Some(native) = p.get_option("native")? {
                    if StructRef::from_value(native.value()).is_none() {
                        anyhow::bail!(
                            "`native` in `prelude//prelude.bzl` must be a struct, got `{}`",
                            native.value().get_type()
                        );
                    }
                    native_fields.push(("native".into(), native));
                }
            }
        }

        let ctx = LoadCtx {
            cells: self.cells.clone(),
            config: self.config.clone(),
            file: path.clone(),
            kind,
            package: package.map(str::to_owned),
            targets: RefCell::new(Vec::new()),
        };
        let file_loader = FileLoaderFor {
            loader: self,
            current: path.clone(),
        };
        let module = Module::with_temp_heap(|module| -> anyhow::Result<FrozenModule> {
            if let Some(p) = &prelude {
                module.import_public_symbols(p);
            }
            for (_, native) in &native_fields {
                // SAFETY: the call adds the prelude's heap to this module's heap, so the
                // value lives as long as the module does.
                let fv = unsafe { native.owned_frozen_value(module.frozen_heap()) };
                let s =
                    starlark::values::structs::FrozenStructRef::from_value(fv).expect("checked");
                for (k, v) in s.iter() {
                    module.set(k.as_str(), v.to_value());
                }
            }
            {
                let mut eval = Evaluator::new(&module);
                eval.set_loader(&file_loader);
                eval.extra = Some(&ctx);
                eval.eval_module(ast, &self.globals)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            module
                .freeze()
                .map_err(|e| anyhow::anyhow!("{path}: {:#}", anyhow::Error::from(e)))
        })?;
        Ok((module, ctx.targets.into_inner()))
    }
}
