//! The tool catalogue: for each tool a build can fetch, where upstream releases it, how its
//! assets are named per platform, how its archive is laid out, where it lives in the
//! registry, and how to ask a binary its version. It is data, `toolchains/tools.bzl`: a
//! Starlark file Buck2 loads for the layout and protoreg reads for everything else, so a user
//! declares a new plugin there without rebuilding protoreg. This binary embeds the
//! repository's own copy, used when no catalogue file is in reach.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::maintain::starlark_lit::{self, Value};
use crate::pipeline::extract::Format;
use crate::platform::{self, Platform};

pub const ENV_CATALOGUE: &str = "PROTOREG_CATALOGUE";
/// Beside the pins file: `toolchains/tools.bzl`.
pub const FILE_NAME: &str = "tools.bzl";
const BUILT_IN: &str = include_str!("../../toolchains/tools.bzl");
const BUILT_IN_NAME: &str = "<protoreg's built-in toolchains/tools.bzl>";

/// Where a tool's releases come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The GitHub releases of `Tool::github_repo`, tagged by `Tool::tag`.
    GitHub,
    /// A static host: `url` gives one platform's asset (`{asset}` is its name), and
    /// `checksum_url`, if any, a file with its sha256.
    Url {
        url: String,
        checksum_url: Option<String>,
    },
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something that runs: per-platform binaries.
    Tool,
    /// An archive of .proto sources (googleapis at a commit): one for every platform
    /// ([`platform::ANY`]), the library of its `srcs`.
    Protos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub name: String,
    pub kind: Kind,
    /// `Kind::Protos`: the .proto files of the archive the library holds, by import path.
    pub srcs: Vec<String>,
    pub origin: Origin,
    /// `owner/repo` on GitHub (empty for a URL origin).
    pub github_repo: String,
    /// Release tag for a version: `{version}` is replaced.
    pub tag: String,
    /// Asset name template (see [`PLATFORM_PLACEHOLDERS`]). A name ending in none of `.zip`,
    /// `.tar.gz`/`.tgz`, `.tar.xz`/`.txz` is a raw single binary (only the first of `binaries`
    /// then exists); see [`Format::of_file_name`].
    pub asset: String,
    /// Per-platform asset templates, for upstreams that spell one platform apart.
    pub assets: BTreeMap<String, String>,
    /// Platforms upstream ships (canonical names).
    pub platforms: Vec<String>,
    pub strip_prefix: String,
    /// Binaries in the tree, without the platform's exe suffix.
    pub binaries: Vec<String>,
    /// Per-platform `binaries`, for archives laid out apart on one platform (Node.js's
    /// Windows zip holds `node.exe` at its top, not in `bin/`).
    pub platform_binaries: BTreeMap<String, Vec<String>>,
    /// Directories of the tree the rules expose (protoc's `include`).
    pub directories: Vec<String>,
    /// Repository under the registry namespace.
    pub oci_repository: String,
    /// A per-release checksum file upstream publishes (`sha256sum` format; `{version}`).
    pub checksum_file: Option<String>,
    /// What `<binary> --version` prints, `{version}` replaced; None if it cannot tell.
    pub version_output: Option<String>,
    /// The protoc plugin name (`--NAME_out`) when it is not the `protoc-gen-NAME` of its name.
    pub plugin_name: Option<String>,
}

/// Placeholders of asset templates, and what each platform spells them.
pub const PLATFORM_PLACEHOLDERS: &[&str] = &[
    "version",
    "platform",
    "protoc",
    "buf",
    "goos",
    "goarch",
    "cpu",
    "exe",
    "archive",
    "tgz_or_exe",
];

/// The catalogue in use and the file it came from.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub file: PathBuf,
    pub tools: Vec<Tool>,
}

static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
/// (--catalogue, --pins) of this invocation, set before the catalogue is first needed.
static WHERE: Mutex<(Option<PathBuf>, Option<PathBuf>)> = Mutex::new((None, None));

/// Say where this invocation's catalogue is: `flag` (`--catalogue`, `PROTOREG_CATALOGUE`),
/// else `tools.bzl` beside the pins file (`pins` is the command's `--pins`), else the
/// built-in copy. Read once, on first use: commands that need no tool never read it.
pub fn configure(flag: Option<&Path>, pins: Option<&Path>) {
    if let Ok(mut w) = WHERE.lock() {
        *w = (flag.map(Path::to_path_buf), pins.map(Path::to_path_buf));
    }
}

/// The catalogue file in reach, if any (None: the built-in one).
pub fn locate() -> Option<PathBuf> {
    let (flag, pins) = WHERE.lock().map(|w| w.clone()).unwrap_or_default();
    if let Some(f) = flag {
        return Some(f);
    }
    if let Some(p) = std::env::var_os(ENV_CATALOGUE).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let beside = crate::maintain::pins::locate(pins.as_deref())
        .ok()?
        .with_file_name(FILE_NAME);
    beside.is_file().then_some(beside)
}

/// The catalogue of this invocation (see [`configure`]).
pub fn catalogue() -> Result<&'static Catalogue> {
    if let Some(c) = CATALOGUE.get() {
        return Ok(c);
    }
    let loaded = match locate() {
        Some(file) => {
            let text = crate::textfile::read_text(
                &file,
                "the tool catalogue",
                &format!("pass an existing --catalogue FILE (or {ENV_CATALOGUE}), or put {FILE_NAME} beside the pins file"),
            )?;
            Catalogue::parse(&text, &file)?
        }
        None => Catalogue::parse(BUILT_IN, Path::new(BUILT_IN_NAME))?,
    };
    Ok(CATALOGUE.get_or_init(|| loaded))
}

/// Every tool of the catalogue, in name order.
pub fn all() -> Result<&'static [Tool]> {
    Ok(&catalogue()?.tools)
}

pub fn by_name(name: &str) -> Result<&'static Tool> {
    let c = catalogue()?;
    c.tools.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<_> = c.tools.iter().map(|t| t.name.as_str()).collect();
        Error::input(
            format!("unknown tool `{name}`"),
            format!(
                "use one of: {} (or declare it in {})",
                names.join(", "),
                c.file.display()
            ),
        )
    })
}

const FIELDS: &[&str] = &[
    "kind",
    "srcs",
    "upstream",
    "repository",
    "tag",
    "url",
    "checksum_url",
    "asset",
    "assets",
    "platforms",
    "strip_prefix",
    "binaries",
    "platform_binaries",
    "directories",
    "oci_repository",
    "checksum_file",
    "version_output",
    "plugin_name",
];

impl Catalogue {
    /// Read and check a catalogue: every error names the file, the line and the key.
    pub fn parse(text: &str, file: &Path) -> Result<Catalogue> {
        let bad = |line: usize, key: &str, what: String, hint: &str| Error::Config {
            file: file.to_path_buf(),
            line,
            key: key.to_string(),
            what,
            hint: hint.to_string(),
        };
        let top = starlark_lit::parse(text).map_err(|e| {
            bad(
                e.line,
                "TOOLS",
                e.message,
                "the catalogue is Starlark literals: a dict of dicts, strings and lists",
            )
        })?;
        let (line, table) = top.get("TOOLS").ok_or_else(|| {
            bad(
                1,
                "TOOLS",
                "missing".into(),
                "assign the catalogue to `TOOLS = {…}`",
            )
        })?;
        let entries = table.dict_entries().ok_or_else(|| {
            bad(
                *line,
                "TOOLS",
                "must be a dict of tool name -> fields".into(),
                "see the comment at the top of toolchains/tools.bzl",
            )
        })?;
        let mut tools = Vec::new();
        for (line, name, spec) in entries {
            let Some(name) = name.as_str() else {
                return Err(bad(
                    line,
                    "TOOLS",
                    "tool names must be strings".into(),
                    "quote the name",
                ));
            };
            let tool = Tool::from_value(name, spec, line).map_err(|(line, key, what, hint)| {
                bad(line, &format!("TOOLS[\"{name}\"]{key}"), what, &hint)
            })?;
            if tools.iter().any(|t: &Tool| t.name == tool.name) {
                return Err(bad(
                    line,
                    &format!("TOOLS[\"{name}\"]"),
                    "declared twice".into(),
                    "keep one entry per tool",
                ));
            }
            tools.push(tool);
        }
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Catalogue {
            file: file.to_path_buf(),
            tools,
        })
    }
}

/// (line, key suffix, what, hint) of a bad declaration.
type Bad = (usize, String, String, String);

impl Tool {
    fn from_value(name: &str, spec: &Value, line: usize) -> std::result::Result<Tool, Bad> {
        let here = |l: usize, key: &str, what: String, hint: &str| -> Bad {
            (l, key.to_string(), what, hint.to_string())
        };
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
            && name.starts_with(|c: char| c.is_ascii_alphanumeric());
        if !name_ok {
            return Err(here(
                line,
                "",
                format!("`{name}` is not a tool name"),
                "lowercase letters, digits, `-`, `_`, `.`; at most 64",
            ));
        }
        let entries: Vec<_> = spec
            .dict_entries()
            .ok_or_else(|| {
                here(
                    line,
                    "",
                    "must be a dict of fields".into(),
                    "see the comment at the top of toolchains/tools.bzl",
                )
            })?
            .collect();
        let mut fields: BTreeMap<&str, (usize, &Value)> = BTreeMap::new();
        for (l, k, v) in entries {
            let k = k.as_str().unwrap_or("");
            if !FIELDS.contains(&k) {
                return Err(here(
                    l,
                    &format!("[\"{k}\"]"),
                    "unknown field".into(),
                    &format!("the fields are: {}", FIELDS.join(", ")),
                ));
            }
            fields.insert(k, (l, v));
        }
        let key = |k: &str| format!("[\"{k}\"]");
        let string = |k: &str, required: bool| -> std::result::Result<Option<String>, Bad> {
            match fields.get(k) {
                Some((_, Value::Str(s))) => Ok(Some(s.clone())),
                Some((_, Value::None)) if !required => Ok(None),
                Some((l, _)) => Err(here(*l, &key(k), "must be a string".into(), "quote it")),
                None if required => Err(here(
                    line,
                    &key(k),
                    "missing".into(),
                    "every tool needs upstream, asset, platforms, binaries and oci_repository",
                )),
                None => Ok(None),
            }
        };
        let list = |k: &str, required: bool| -> std::result::Result<Vec<String>, Bad> {
            match fields.get(k) {
                Some((l, Value::List(items))) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            here(
                                *l,
                                &key(k),
                                "must be a list of strings".into(),
                                "quote each item",
                            )
                        })
                    })
                    .collect(),
                Some((l, _)) => Err(here(
                    *l,
                    &key(k),
                    "must be a list of strings".into(),
                    "write [\"…\", …]",
                )),
                None if required => Err(here(
                    line,
                    &key(k),
                    "missing".into(),
                    "every tool needs upstream, asset, platforms, binaries and oci_repository",
                )),
                None => Ok(Vec::new()),
            }
        };
        let at = |k: &str| fields.get(k).map(|(l, _)| *l).unwrap_or(line);
        // A template field: only `allowed` placeholders, braces balanced.
        let template = |k: &str, value: &str, allowed: &[&str]| {
            check_template(value, allowed).map_err(|w| {
                here(
                    at(k),
                    &key(k),
                    w,
                    &format!("placeholders: {}", braced(allowed)),
                )
            })
        };
        let upstream = string("upstream", true)?.unwrap_or_default();
        let (origin, github_repo, tag) = match upstream.as_str() {
            "github" => {
                let repo = string("repository", true)?.unwrap_or_default();
                let parts: Vec<&str> = repo.split('/').collect();
                if parts.len() != 2 || !parts.iter().all(|p| plain_name(p)) {
                    return Err(here(
                        at("repository"),
                        &key("repository"),
                        format!("`{repo}` is not OWNER/REPO"),
                        "as in \"protocolbuffers/protobuf\"",
                    ));
                }
                let tag = string("tag", true)?.unwrap_or_default();
                template("tag", &tag, &["version"])?;
                if !tag.contains("{version}") {
                    return Err(here(
                        at("tag"),
                        &key("tag"),
                        "has no {version}".into(),
                        "as in \"v{version}\"",
                    ));
                }
                // In the releases API's and the downloads' URL paths.
                if !relative_path(&tag.replace("{version}", SAMPLE_VERSION)) {
                    return Err(here(
                        at("tag"),
                        &key("tag"),
                        format!("`{tag}` is not a tag name"),
                        PATH_RULE,
                    ));
                }
                for k in ["url", "checksum_url"] {
                    if fields.contains_key(k) {
                        return Err(here(
                            at(k),
                            &key(k),
                            "is for `upstream = \"url\"`".into(),
                            "a GitHub tool's assets come from its releases",
                        ));
                    }
                }
                (Origin::GitHub, repo, tag)
            }
            "url" => {
                let mut allowed = PLATFORM_PLACEHOLDERS.to_vec();
                allowed.push("asset");
                let url = string("url", true)?.unwrap_or_default();
                let checksum_url = string("checksum_url", false)?;
                for (k, v) in [("url", Some(&url)), ("checksum_url", checksum_url.as_ref())] {
                    let Some(v) = v else { continue };
                    template(k, v, &allowed)?;
                    if !(v.starts_with("https://") || v.starts_with("http://")) {
                        return Err(here(
                            at(k),
                            &key(k),
                            format!("`{v}` is not an http(s) URL"),
                            "as in \"https://repo1.maven.org/maven2/…/{asset}\"",
                        ));
                    }
                }
                for k in ["repository", "tag", "checksum_file"] {
                    if fields.contains_key(k) {
                        return Err(here(
                            at(k),
                            &key(k),
                            "is for `upstream = \"github\"`".into(),
                            "a URL tool has url and checksum_url",
                        ));
                    }
                }
                (
                    Origin::Url { url, checksum_url },
                    String::new(),
                    "{version}".to_string(),
                )
            }
            other => {
                return Err(here(
                    at("upstream"),
                    &key("upstream"),
                    format!("unknown upstream `{other}`"),
                    "use \"github\" (GitHub releases) or \"url\" (any static host)",
                ));
            }
        };
        let kind = match string("kind", false)?.as_deref() {
            None | Some("tool") => Kind::Tool,
            Some("protos") => Kind::Protos,
            Some(other) => {
                return Err(here(
                    at("kind"),
                    &key("kind"),
                    format!("unknown kind `{other}`"),
                    "use \"tool\" (the default: something that runs) or \"protos\" (an archive of .proto sources)",
                ))
            }
        };
        if kind == Kind::Protos {
            for k in [
                "binaries",
                "directories",
                "plugin_name",
                "version_output",
                "assets",
            ] {
                if fields.contains_key(k) {
                    return Err(here(
                        at(k),
                        &key(k),
                        "is for tools, not an archive of .proto sources".into(),
                        "a `protos` entry has srcs, and runs nothing",
                    ));
                }
            }
        } else if fields.contains_key("srcs") {
            return Err(here(
                at("srcs"),
                &key("srcs"),
                "is for `kind = \"protos\"`".into(),
                "a tool names its executables in `binaries`",
            ));
        }
        let platforms = match kind {
            // One archive for every platform: pinned as `any`.
            Kind::Protos => match list("platforms", false)? {
                p if p.is_empty() || p == [platform::ANY.name] => {
                    vec![platform::ANY.name.to_string()]
                }
                _ => {
                    return Err(here(
                        at("platforms"),
                        &key("platforms"),
                        "an archive of .proto sources is the same on every platform".into(),
                        "drop `platforms` (it is [\"any\"])",
                    ))
                }
            },
            Kind::Tool => list("platforms", true)?,
        };
        if kind == Kind::Tool && platforms.iter().any(|p| p == platform::ANY.name) {
            return Err(here(
                at("platforms"),
                &key("platforms"),
                "`any` is for archives of .proto sources".into(),
                &format!(
                    "name the platforms upstream ships: {}",
                    platform::CANONICAL.join(", ")
                ),
            ));
        }
        if platforms.is_empty() {
            return Err(here(
                at("platforms"),
                &key("platforms"),
                "is empty".into(),
                "name the platforms upstream ships",
            ));
        }
        for p in &platforms {
            if platform::by_name(p).is_err() {
                return Err(here(
                    at("platforms"),
                    &key("platforms"),
                    format!("unknown platform `{p}`"),
                    &format!("the platforms are: {}", platform::CANONICAL.join(", ")),
                ));
            }
        }
        let asset = string("asset", true)?.unwrap_or_default();
        // An archive of sources is the same everywhere: only its version names it.
        let asset_placeholders: &[&str] = match kind {
            Kind::Tool => PLATFORM_PLACEHOLDERS,
            Kind::Protos => &["version"],
        };
        template("asset", &asset, asset_placeholders)?;
        // The asset names a file in bump's scratch directory and a URL path segment: for
        // every platform, expanded, one plain file name.
        let one_name = |l: usize, k: &str, t: &str, p: &str| {
            let plat = platform::by_name(p)
                .map_err(|_| here(l, k, format!("unknown platform `{p}`"), "name a platform"))?;
            let name = fill(t, SAMPLE_VERSION, plat);
            if plain_name(&name) {
                Ok(())
            } else {
                Err(here(
                    l,
                    k,
                    format!("`{t}` is not one plain file name (for {p}: `{name}`)"),
                    PATH_RULE,
                ))
            }
        };
        let mut assets = BTreeMap::new();
        if let Some((l, v)) = fields.get("assets") {
            let entries = v.dict_entries().ok_or_else(|| {
                here(
                    *l,
                    &key("assets"),
                    "must be a dict of platform -> asset".into(),
                    "as in {\"windows-x86_64\": \"tool-{version}-win.exe\"}",
                )
            })?;
            for (l, p, a) in entries {
                let (Some(p), Some(a)) = (p.as_str(), a.as_str()) else {
                    return Err(here(
                        l,
                        &key("assets"),
                        "must map platform names to strings".into(),
                        "quote both",
                    ));
                };
                if !platforms.iter().any(|q| q == p) {
                    return Err(here(
                        l,
                        &format!("[\"assets\"][\"{p}\"]"),
                        "is not one of the tool's platforms".into(),
                        &format!("the tool's platforms: {}", platforms.join(", ")),
                    ));
                }
                check_template(a, PLATFORM_PLACEHOLDERS).map_err(|w| {
                    here(
                        l,
                        &format!("[\"assets\"][\"{p}\"]"),
                        w,
                        &format!("placeholders: {}", braced(PLATFORM_PLACEHOLDERS)),
                    )
                })?;
                one_name(l, &format!("[\"assets\"][\"{p}\"]"), a, p)?;
                assets.insert(p.to_string(), a.to_string());
            }
        }
        for p in platforms.iter().filter(|p| !assets.contains_key(*p)) {
            one_name(at("asset"), &key("asset"), &asset, p)?;
        }
        let binaries = list("binaries", kind == Kind::Tool)?;
        let srcs = list("srcs", kind == Kind::Protos)?;
        if kind == Kind::Protos && srcs.is_empty() {
            return Err(here(
                at("srcs"),
                &key("srcs"),
                "is empty".into(),
                "name the .proto files the library holds, e.g. [\"google/api/annotations.proto\"]",
            ));
        }
        for s in &srcs {
            if !relative_path(s) || !s.ends_with(".proto") {
                return Err(here(
                    at("srcs"),
                    &key("srcs"),
                    format!("`{s}` is not a .proto file's path inside the archive"),
                    "its import path, as in \"google/api/annotations.proto\"",
                ));
            }
        }
        if kind == Kind::Tool && binaries.is_empty() {
            return Err(here(
                at("binaries"),
                &key("binaries"),
                "is empty".into(),
                "name the executables in the tree, e.g. [\"bin/protoc\"]",
            ));
        }
        let mut platform_binaries = BTreeMap::new();
        if let Some((l, v)) = fields.get("platform_binaries") {
            let bad = |l: usize| {
                here(
                    l,
                    &key("platform_binaries"),
                    "must be a dict of platform -> list of binaries".into(),
                    "as in {\"windows-x86_64\": [\"node\"]}",
                )
            };
            let entries = v.dict_entries().ok_or_else(|| bad(*l))?;
            for (l, p, list) in entries {
                let p = p.as_str().ok_or_else(|| bad(l))?;
                if !platforms.iter().any(|q| q == p) {
                    return Err(here(
                        l,
                        &format!("[\"platform_binaries\"][\"{p}\"]"),
                        "is not one of the tool's platforms".into(),
                        &format!("the tool's platforms: {}", platforms.join(", ")),
                    ));
                }
                let Value::List(items) = list else {
                    return Err(bad(l));
                };
                let names: Vec<String> = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).ok_or_else(|| bad(l)))
                    .collect::<std::result::Result<_, _>>()?;
                if names.is_empty() || names.iter().any(|n| !relative_path(n)) {
                    return Err(here(
                        l,
                        &format!("[\"platform_binaries\"][\"{p}\"]"),
                        "must name the executables, as relative paths in the tree".into(),
                        PATH_RULE,
                    ));
                }
                platform_binaries.insert(p.to_string(), names);
            }
        }
        let directories = list("directories", false)?;
        let strip_prefix = string("strip_prefix", false)?.unwrap_or_default();
        template("strip_prefix", &strip_prefix, &["version", "asset_stem"])?;
        for (k, p) in binaries
            .iter()
            .map(|b| ("binaries", b))
            .chain(directories.iter().map(|d| ("directories", d)))
            .chain(std::iter::once(("strip_prefix", &strip_prefix)).filter(|(_, s)| !s.is_empty()))
        {
            if !relative_path(p) {
                return Err(here(
                    at(k),
                    &key(k),
                    format!("`{p}` is not a relative path inside the tree"),
                    PATH_RULE,
                ));
            }
        }
        let oci_repository = string("oci_repository", true)?.unwrap_or_default();
        let repo_ok = oci_repository.contains('/')
            && crate::pipeline::source::valid_repository(&oci_repository);
        if !repo_ok {
            return Err(here(
                at("oci_repository"),
                &key("oci_repository"),
                format!("`{oci_repository}` is not a repository path"),
                "CATEGORY/NAME in lowercase, as in \"plugins/protoc-gen-foo\"",
            ));
        }
        let checksum_file = string("checksum_file", false)?;
        if let Some(c) = &checksum_file {
            template("checksum_file", c, &["version"])?;
            if !plain_name(&c.replace("{version}", SAMPLE_VERSION)) {
                return Err(here(
                    at("checksum_file"),
                    &key("checksum_file"),
                    format!("`{c}` is not one plain file name"),
                    PATH_RULE,
                ));
            }
        }
        let version_output = string("version_output", false)?;
        if let Some(v) = &version_output {
            template("version_output", v, &["version"])?;
        }
        let plugin_name = string("plugin_name", false)?;
        if let Some(p) = &plugin_name {
            if p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
            {
                return Err(here(
                    at("plugin_name"),
                    &key("plugin_name"),
                    format!("`{p}` is not a plugin name"),
                    "protoc runs it as --NAME_out: letters, digits, `_`, `-`",
                ));
            }
        }
        Ok(Tool {
            name: name.to_string(),
            kind,
            srcs,
            origin,
            github_repo,
            tag,
            asset,
            assets,
            platforms,
            strip_prefix,
            binaries,
            platform_binaries,
            directories,
            oci_repository,
            checksum_file,
            version_output,
            plugin_name,
        })
    }
}

/// Is every `{…}` of `template` one of `allowed`, and are the braces balanced?
fn check_template(template: &str, allowed: &[&str]) -> std::result::Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!("`{template}` has a `}}` without its `{{`"));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("`{template}` has a `{{` without its `}}`"));
        };
        let name = &after[..close];
        if !allowed.contains(&name) {
            return Err(format!("unknown placeholder `{{{name}}}` in `{template}`"));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

fn braced(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The version catalogue templates are checked with (any valid version expands alike).
const SAMPLE_VERSION: &str = "1.0.0";
const PATH_RULE: &str = "each part a plain name: no leading `/`, no `..` or `.`, no `\\`, `:`, `?`, `#`, `%`, spaces or control characters";

/// The one path rule of the catalogue: one plain name, for a file (in bump's scratch
/// directory, in a tree) or a URL path segment, on every platform.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s != "."
        && s != ".."
        && !s
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "/\\:?#%".contains(c))
}

/// Plain names joined by `/`: a path inside a tree, or URL path segments.
fn relative_path(p: &str) -> bool {
    p.split('/').all(plain_name)
}

/// One upstream file for (tool, version, platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub name: String,
    pub format: Format,
    pub url: String,
}

impl Tool {
    pub fn tag_for(&self, version: &str) -> String {
        self.tag.replace("{version}", version)
    }

    /// The version a release tag names, if it is one of this tool's tags.
    pub fn version_of_tag(&self, tag: &str) -> Option<String> {
        let (prefix, suffix) = self.tag.split_once("{version}")?;
        let v = tag.strip_prefix(prefix)?.strip_suffix(suffix)?;
        // A tag is upstream's text: only a valid version is read from it.
        crate::maintain::version::valid(v).then(|| v.to_string())
    }

    pub fn ships(&self, platform: &Platform) -> bool {
        self.platforms.iter().any(|p| p == platform.name)
    }

    /// The asset name template for `platform` (a per-platform override first).
    pub fn asset_template(&self, platform: &str) -> &str {
        self.assets
            .get(platform)
            .map(String::as_str)
            .unwrap_or(&self.asset)
    }

    /// The checksum file of `version`'s release, if upstream publishes one.
    pub fn checksum_file_for(&self, version: &str) -> Option<String> {
        self.checksum_file
            .as_ref()
            .map(|c| c.replace("{version}", version))
    }

    /// The archive's leading directory for `version` on `platform` (`googleapis-{version}`;
    /// `{asset_stem}` is the asset's name without its archive extension).
    pub fn strip_prefix_for(&self, version: &str, platform: &Platform) -> String {
        let asset = fill(self.asset_template(platform.name), version, platform);
        self.strip_prefix
            .replace("{version}", version)
            .replace("{asset_stem}", Format::stem(&asset))
    }

    /// The protoc plugin name: `--NAME_out`.
    pub fn plugin(&self) -> Option<String> {
        self.plugin_name
            .clone()
            .or_else(|| self.name.strip_prefix("protoc-gen-").map(str::to_string))
    }

    pub fn asset(&self, version: &str, platform: &Platform, download_base: &str) -> Result<Asset> {
        self.asset_from_template(
            self.asset_template(platform.name),
            version,
            platform,
            download_base,
        )
    }

    pub fn asset_from_template(
        &self,
        template: &str,
        version: &str,
        platform: &Platform,
        download_base: &str,
    ) -> Result<Asset> {
        if !self.ships(platform) {
            return Err(Error::input(
                format!("{} does not ship a {} build", self.name, platform.name),
                format!("{} ships: {}", self.name, self.platforms.join(", ")),
            ));
        }
        let name = fill(template, version, platform);
        // Checked when the catalogue was read; again here, expanded with this version.
        if !plain_name(&name) {
            return Err(Error::input(
                format!(
                    "`{name}`, {}'s asset for {} at {version}, is not one plain file name",
                    self.name, platform.name
                ),
                format!("fix the tool's asset in the catalogue, or give a version: {PATH_RULE}"),
            ));
        }
        let format = Format::of_file_name(&name);
        let url = match &self.origin {
            Origin::GitHub => format!(
                "{}/{}/releases/download/{}/{}",
                download_base.trim_end_matches('/'),
                self.github_repo,
                self.tag_for(version),
                name
            ),
            Origin::Url { url, .. } => fill(url, version, platform).replace("{asset}", &name),
        };
        Ok(Asset { name, format, url })
    }

    /// Where a URL tool's checksum for `asset` is, if it has one.
    pub fn checksum_url(&self, version: &str, platform: &Platform, asset: &str) -> Option<String> {
        match &self.origin {
            Origin::Url {
                checksum_url: Some(c),
                ..
            } => Some(fill(c, version, platform).replace("{asset}", asset)),
            _ => None,
        }
    }

    /// Binaries with the platform's executable suffix.
    pub fn binaries_for(&self, platform: &Platform) -> Vec<String> {
        self.platform_binaries
            .get(platform.name)
            .unwrap_or(&self.binaries)
            .iter()
            .map(|b| format!("{b}{}", platform.exe_suffix))
            .collect()
    }
}

/// A template with `platform`'s spellings.
fn fill(template: &str, version: &str, platform: &Platform) -> String {
    let windows = platform.goos == "windows";
    template
        .replace("{version}", version)
        .replace("{platform}", platform.name)
        .replace("{protoc}", platform.protoc)
        .replace("{buf}", platform.buf)
        .replace("{goos}", platform.goos)
        .replace("{goarch}", platform.goarch)
        .replace("{cpu}", platform.buck_cpu)
        .replace("{exe}", platform.exe_suffix)
        .replace("{archive}", if windows { "zip" } else { "tar.gz" })
        .replace("{tgz_or_exe}", if windows { "exe" } else { "tar.gz" })
}

/// Does `output` (of `--version`) report `version`? Compares the last version-like token of
/// the first line, numerically, so `1.0` and `1.0.0` agree but `31.1` and `31.10` do not.
pub fn reports_version(tool: &Tool, output: &str, version: &str) -> bool {
    let Some(template) = &tool.version_output else {
        return true;
    };
    let line = output.lines().next().unwrap_or("").trim();
    let expected = template.replace("{version}", version);
    if line == expected {
        return true;
    }
    let token = |s: &str| {
        s.split_whitespace()
            .last()
            .map(|t| t.trim_start_matches('v').to_string())
    };
    let numbers = |v: &str| {
        let mut parts: Vec<u64> = v.split('.').map_while(|p| p.parse().ok()).collect();
        while parts.len() > 1 && parts.last() == Some(&0) {
            parts.pop();
        }
        parts
    };
    let prefix = |s: &str| {
        s.rsplit_once(' ')
            .map(|(p, _)| p.to_string())
            .unwrap_or_default()
    };
    match (token(line), token(&expected)) {
        (Some(got), Some(want)) => {
            prefix(line) == prefix(&expected)
                && !numbers(&got).is_empty()
                && numbers(&got) == numbers(&want)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GH: &str = "https://github.com";

    #[test]
    fn real_upstream_asset_names() {
        let p = |n: &str| platform::by_name(n).unwrap();
        let a = |t: &str, v: &str, pl: &str| by_name(t).unwrap().asset(v, p(pl), GH).unwrap().name;
        assert_eq!(
            a("protoc", "31.1", "linux-aarch64"),
            "protoc-31.1-linux-aarch_64.zip"
        );
        assert_eq!(
            a("protoc", "31.1", "darwin-arm64"),
            "protoc-31.1-osx-aarch_64.zip"
        );
        assert_eq!(
            a("protoc", "31.1", "windows-x86_64"),
            "protoc-31.1-win64.zip"
        );
        assert_eq!(
            a("buf", "1.75.0", "linux-x86_64"),
            "buf-Linux-x86_64.tar.gz"
        );
        let named = |t: &str, v: &str, pl: &str| {
            let a = by_name(t).unwrap().asset(v, p(pl), GH).unwrap();
            (a.name, a.format)
        };
        assert_eq!(
            named("buf", "1.75.0", "windows-x86_64"),
            ("buf-Windows-x86_64.exe".to_string(), Format::Raw)
        );
        assert_eq!(
            named("buf", "1.75.0", "windows-arm64"),
            ("buf-Windows-arm64.exe".to_string(), Format::Raw)
        );
        assert_eq!(
            named("buf", "1.75.0", "darwin-arm64"),
            ("buf-Darwin-arm64.tar.gz".to_string(), Format::TarGz)
        );
        assert_eq!(
            a("protoc-gen-go", "1.36.6", "darwin-arm64"),
            "protoc-gen-go.v1.36.6.darwin.arm64.tar.gz"
        );
        assert_eq!(
            a("protoc-gen-go-grpc", "1.5.1", "windows-x86_64"),
            "protoc-gen-go-grpc.v1.5.1.windows.amd64.zip"
        );
        assert_eq!(
            a("protoc-gen-validate", "1.2.1", "linux-x86_64"),
            "protoc-gen-validate_1.2.1_linux_amd64.tar.gz"
        );
        let own = by_name("protoreg")
            .unwrap()
            .asset("0.1.0", p("windows-x86_64"), GH)
            .unwrap();
        assert_eq!(
            (own.name.as_str(), own.format),
            ("protoreg-0.1.0-windows-x86_64.exe", Format::Raw)
        );
        let url = by_name("protoc-gen-go-grpc")
            .unwrap()
            .asset("1.5.1", p("linux-x86_64"), GH)
            .unwrap()
            .url;
        assert_eq!(url, "https://github.com/grpc/grpc-go/releases/download/cmd/protoc-gen-go-grpc/v1.5.1/protoc-gen-go-grpc.v1.5.1.linux.amd64.tar.gz");
        assert!(by_name("protoc")
            .unwrap()
            .asset("31.1", p("windows-arm64"), GH)
            .is_err());
    }

    #[test]
    fn node_archives_are_unpacked_below_their_own_name() {
        let node = by_name("node").unwrap();
        let p = |n: &str| platform::by_name(n).unwrap();
        assert_eq!(
            node.asset("22.23.2", p("darwin-arm64"), GH).unwrap().url,
            "https://nodejs.org/dist/v22.23.2/node-v22.23.2-darwin-arm64.tar.xz"
        );
        assert_eq!(
            node.strip_prefix_for("22.23.2", p("linux-aarch64")),
            "node-v22.23.2-linux-arm64"
        );
        assert_eq!(
            node.strip_prefix_for("22.23.2", p("linux-x86_64")),
            "node-v22.23.2-linux-x64"
        );
        // On Windows node.exe is at the top of the tree.
        assert_eq!(node.binaries_for(p("windows-x86_64")), ["node.exe"]);
        assert_eq!(node.binaries_for(p("darwin-arm64")), ["bin/node"]);
        // Other tools' prefixes are plain.
        let googleapis = by_name("googleapis").unwrap();
        assert_eq!(
            googleapis.strip_prefix_for("abc", &platform::ANY),
            "googleapis-abc"
        );
    }

    #[test]
    fn tags_and_versions() {
        let grpc = by_name("protoc-gen-go-grpc").unwrap();
        assert_eq!(
            grpc.version_of_tag("cmd/protoc-gen-go-grpc/v1.5.1")
                .as_deref(),
            Some("1.5.1")
        );
        assert_eq!(grpc.version_of_tag("v1.70.0"), None);
        assert_eq!(
            by_name("protoc")
                .unwrap()
                .version_of_tag("v31.1")
                .as_deref(),
            Some("31.1")
        );
    }

    #[test]
    fn version_reports() {
        let protoc = by_name("protoc").unwrap();
        assert!(reports_version(protoc, "libprotoc 31.1\n", "31.1"));
        assert!(!reports_version(protoc, "libprotoc 31.10\n", "31.1"));
        assert!(!reports_version(protoc, "libprotoc 30.2\n", "31.1"));
        let grpc = by_name("protoc-gen-go-grpc").unwrap();
        assert!(reports_version(grpc, "protoc-gen-go-grpc 1.0\n", "1.0.0"));
        assert!(!reports_version(grpc, "protoc-gen-go-grpc 1.1\n", "1.0.0"));
        let go = by_name("protoc-gen-go").unwrap();
        assert!(reports_version(go, "protoc-gen-go v1.28.1", "1.28.1"));
    }
}
