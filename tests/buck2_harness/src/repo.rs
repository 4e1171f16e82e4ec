//! The repository as Buck2 sees it: `.buckconfig`, cells, labels and `load()` paths.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// A parsed `.buckconfig`: `section.key -> value`, in file order of sections.
#[derive(Debug, Clone, Default)]
pub struct BuckConfig {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl BuckConfig {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        let mut last_key: Option<String> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            // An indented line continues the previous value, as in Buck2's INI dialect.
            if raw.starts_with([' ', '\t']) && !trimmed.starts_with('[') && !trimmed.contains('=') {
                if let (Some(s), Some(k)) = (&current, &last_key) {
                    let v = sections
                        .get_mut(s)
                        .and_then(|m| m.get_mut(k))
                        .expect("key exists");
                    v.push(' ');
                    v.push_str(trimmed);
                    continue;
                }
            }
            if let Some(rest) = trimmed.strip_prefix('[') {
                let name = rest.strip_suffix(']').with_context(|| {
                    format!(".buckconfig line {}: unterminated section `{line}`", n + 1)
                })?;
                current = Some(name.trim().to_owned());
                sections.entry(name.trim().to_owned()).or_default();
                last_key = None;
                continue;
            }
            let Some((k, v)) = trimmed.split_once('=') else {
                bail!(
                    ".buckconfig line {}: expected `key = value`, got `{line}`",
                    n + 1
                );
            };
            let Some(section) = &current else {
                bail!(
                    ".buckconfig line {}: `{}` is outside any section",
                    n + 1,
                    k.trim()
                );
            };
            let key = k.trim().to_owned();
            sections
                .get_mut(section)
                .expect("section exists")
                .insert(key.clone(), v.trim().to_owned());
            last_key = Some(key);
        }
        Ok(BuckConfig { sections })
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections.get(section)?.get(key).map(String::as_str)
    }

    pub fn section(&self, section: &str) -> impl Iterator<Item = (&str, &str)> {
        self.sections
            .get(section)
            .into_iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// The cells of a repository, from `[cells]` and `[cell_aliases]` of its root `.buckconfig`.
#[derive(Debug, Clone)]
pub struct Cells {
    /// Project root (absolute).
    pub root: PathBuf,
    /// Cell name -> directory relative to the project root ("" for the root cell).
    cells: BTreeMap<String, String>,
    aliases: BTreeMap<String, String>,
}

impl Cells {
    pub fn from_config(root: &Path, config: &BuckConfig) -> anyhow::Result<Self> {
        let mut cells = BTreeMap::new();
        for (name, dir) in config.section("cells") {
            let dir = dir.trim_start_matches("./").trim_end_matches('/');
            let dir = if dir == "." { "" } else { dir };
            cells.insert(name.to_owned(), dir.to_owned());
        }
        if !cells.values().any(|d| d.is_empty()) {
            bail!(
                "`.buckconfig` in `{}` has no `[cells]` entry for the project root (`root = .`)",
                root.display()
            );
        }
        let mut aliases = BTreeMap::new();
        for (alias, target) in config.section("cell_aliases") {
            aliases.insert(alias.to_owned(), target.to_owned());
        }
        Ok(Cells {
            root: root.to_owned(),
            cells,
            aliases,
        })
    }

    /// The name of the cell rooted at the project root.
    pub fn root_cell(&self) -> &str {
        self.cells
            .iter()
            .find(|(_, d)| d.is_empty())
            .map(|(n, _)| n.as_str())
            .expect("checked")
    }

    /// Resolve a cell alias as written in a label (`""` means the current cell).
    pub fn resolve(&self, alias: &str, current: &str) -> anyhow::Result<String> {
        if alias.is_empty() {
            return Ok(current.to_owned());
        }
        if self.cells.contains_key(alias) {
            return Ok(alias.to_owned());
        }
        if let Some(target) = self.aliases.get(alias) {
            if self.cells.contains_key(target) {
                return Ok(target.clone());
            }
        }
        bail!(
            "unknown cell alias: `{alias}`. In cell `{current}`, known aliases are: `{}`",
            self.cells
                .keys()
                .chain(self.aliases.keys())
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join("`, `")
        )
    }

    /// Directory of a cell, relative to the project root.
    pub fn cell_dir(&self, cell: &str) -> &str {
        self.cells.get(cell).map(String::as_str).unwrap_or("")
    }

    /// Project-relative path of `path` inside `cell`.
    pub fn project_path(&self, cell: &str, path: &str) -> String {
        join(self.cell_dir(cell), path)
    }

    /// Which cell holds a project-relative path (the longest cell directory prefix).
    pub fn cell_of(&self, project_path: &str) -> (String, String) {
        let mut best: Option<(&String, &String)> = None;
        for (name, dir) in &self.cells {
            let inside = dir.is_empty()
                || project_path == dir
                || project_path.starts_with(&format!("{dir}/"));
            if inside && best.is_none_or(|(_, d)| dir.len() > d.len()) {
                best = Some((name, dir));
            }
        }
        let (name, dir) = best.expect("the root cell holds every path");
        let rel = project_path
            .strip_prefix(dir.as_str())
            .unwrap_or(project_path)
            .trim_start_matches('/');
        (name.clone(), rel.to_owned())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.cells.keys().map(String::as_str)
    }
}

pub fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

/// A file in a cell, e.g. `prelude//proto:defs.bzl`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellPath {
    pub cell: String,
    pub path: String,
}

impl fmt::Display for CellPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Buck2 prints a load path as `cell//dir/file.bzl`.
        write!(f, "{}//{}", self.cell, self.path)
    }
}

impl CellPath {
    pub fn dir(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(d, _)| d)
    }
}

#[derive(Debug)]
pub enum ImportError {
    MatchFailed(String),
    EmptyFileName(String),
    NotAFileName(String),
}

impl std::error::Error for ImportError {}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Texts of Buck2's `ImportParseError` (app/buck2_interpreter/src/parse_import.rs).
        match self {
            ImportError::MatchFailed(s) => write!(
                f,
                "Unable to parse import spec. Expected format `(@<cell>)//package/name:filename.bzl` or `:filename.bzl`. Got `{s}`"
            ),
            ImportError::EmptyFileName(s) => write!(
                f,
                "Unable to parse import spec. Expected format `(@<cell>)//package/name:filename.bzl` or `:filename.bzl`, but got an empty filename. Got `{s}`"
            ),
            ImportError::NotAFileName(s) => write!(
                f,
                "Unable to parse import spec. Expected format `(@<cell>)//package/name:filename.bzl` or `:filename.bzl`, but got a path. Got `{s}`"
            ),
        }
    }
}

/// Split `(@cell)//dir` into alias and cell-relative dir; `None` if the form does not match
/// (in particular `cell//dir` without `@`, which `load()` refuses).
fn import_cell_parts(path: &str) -> Option<(&str, &str)> {
    let (alias, rel) = path.split_once("//")?;
    if alias.is_empty() {
        Some(("", rel))
    } else {
        alias.strip_prefix('@').map(|a| (a, rel))
    }
}

/// Resolve the string of a `load()` the way Buck2 does, relative to the loading file.
pub fn parse_import(cells: &Cells, current: &CellPath, import: &str) -> anyhow::Result<CellPath> {
    match import.split_once(':') {
        None => match import_cell_parts(import) {
            None => {
                if import.starts_with('/')
                    || import
                        .split('/')
                        .any(|c| c == ".." || c == "." || c.is_empty())
                {
                    bail!("Invalid path `{import}` for file relative import path. Should be a forward relative path.");
                }
                Ok(CellPath {
                    cell: current.cell.clone(),
                    path: join(current.dir(), import),
                })
            }
            Some((alias, rel)) => Ok(CellPath {
                cell: cells.resolve(alias, &current.cell)?,
                path: rel.to_owned(),
            }),
        },
        Some((dir, file)) => {
            if file.is_empty() {
                return Err(ImportError::EmptyFileName(import.to_owned()).into());
            }
            if file.contains('/') {
                return Err(ImportError::NotAFileName(import.to_owned()).into());
            }
            if dir.is_empty() {
                return Ok(CellPath {
                    cell: current.cell.clone(),
                    path: join(current.dir(), file),
                });
            }
            let (alias, rel) = import_cell_parts(dir)
                .ok_or_else(|| ImportError::MatchFailed(import.to_owned()))?;
            Ok(CellPath {
                cell: cells.resolve(alias, &current.cell)?,
                path: join(rel, file),
            })
        }
    }
}

/// An unconfigured target label, `cell//package:name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetLabel {
    pub cell: String,
    pub package: String,
    pub name: String,
}

impl fmt::Display for TargetLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}//{}:{}", self.cell, self.package, self.name)
    }
}

/// A target label with an optional sub-target, `cell//pkg:name[sub]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProvidersLabel {
    pub target: TargetLabel,
    pub sub: Vec<String>,
}

impl fmt::Display for ProvidersLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.target)?;
        for s in &self.sub {
            write!(f, "[{s}]")?;
        }
        Ok(())
    }
}

/// Is this attribute string a target label rather than a file path?
pub fn looks_like_label(s: &str) -> bool {
    s.starts_with(':') || s.contains("//")
}

/// Parse a target label relative to a package, as attribute values and `select()` keys are.
pub fn parse_label(
    cells: &Cells,
    cell: &str,
    package: &str,
    s: &str,
) -> anyhow::Result<ProvidersLabel> {
    let (base, sub) = match s.find('[') {
        Some(i) => {
            let subs = &s[i..];
            let mut out = Vec::new();
            for part in subs.split('[').skip(1) {
                let p = part
                    .strip_suffix(']')
                    .with_context(|| format!("Invalid label `{s}`: unbalanced `[`"))?;
                out.push(p.to_owned());
            }
            (&s[..i], out)
        }
        None => (s, Vec::new()),
    };
    let target = if let Some(name) = base.strip_prefix(':') {
        TargetLabel {
            cell: cell.to_owned(),
            package: package.to_owned(),
            name: name.to_owned(),
        }
    } else if let Some((alias, rest)) = base.split_once("//") {
        let alias = alias.strip_prefix('@').unwrap_or(alias);
        let cell = cells.resolve(alias, cell)?;
        let (pkg, name) = match rest.split_once(':') {
            Some((p, n)) => (p.to_owned(), n.to_owned()),
            None => (
                rest.to_owned(),
                rest.rsplit('/').next().unwrap_or(rest).to_owned(),
            ),
        };
        TargetLabel {
            cell,
            package: pkg,
            name,
        }
    } else {
        bail!("Invalid absolute target pattern `{s}` is not allowed: expected `:name`, `//package:name` or `cell//package:name`");
    };
    if target.name.is_empty() || target.name.contains('/') || target.package.ends_with('/') {
        bail!("Invalid target label `{s}`");
    }
    Ok(ProvidersLabel { target, sub })
}
