//! The pins: the one source of truth for (tool, version, platform) -> (format, size, sha256,
//! upstream URL). The size may be `None`: upstreams publish sha256 values almost everywhere
//! but exact sizes almost nowhere, so a pin without one is verified by its sha256 alone. They live in `toolchains/pins.bzl`, a Starlark file that Buck2 loads and
//! protoreg reads (see [`crate::maintain::starlark_lit`]); only `protoreg bump` writes it, in a fixed
//! order with one line per value, so a bump is a small reviewable diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::maintain::starlark_lit::{self, quote, Value};
use crate::maintain::tools::{self, Tool};
use crate::pipeline::extract::{Format, Layout};
use crate::pipeline::verify::{Expected, Sha256};
use crate::platform::{self, PLATFORMS};

pub const ENV_PINS: &str = "PROTOREG_PINS";
pub const DEFAULT_PATH: &str = "toolchains/pins.bzl";

/// What a pin must look like (in errors).
const SHAPE: &str = "must be (format, size > 0 or None, sha256, url)";

/// One pinned artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub format: Format,
    /// Bytes, or None when upstream states none (the body is then capped, see
    /// [`crate::pipeline::verify::max_unsized_bytes`]).
    pub size: Option<u64>,
    pub sha256: Sha256,
    pub url: String,
}

impl Pin {
    pub fn expected(&self) -> Expected {
        Expected {
            sha256: self.sha256.clone(),
            size: self.size,
        }
    }
}

/// Everything in the pins file that is not derived from the catalogue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pins {
    /// tool -> default version.
    pub defaults: BTreeMap<String, String>,
    /// tool -> version -> platform -> pin.
    pub pins: BTreeMap<String, BTreeMap<String, BTreeMap<String, Pin>>>,
    /// tool -> version -> where the values came from.
    pub provenance: BTreeMap<String, BTreeMap<String, String>>,
}

/// The pins file to use: flag, then `PROTOREG_PINS`, then `toolchains/pins.bzl` in the
/// current directory or the nearest parent that has one.
pub fn locate(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(ENV_PINS).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io("find", ".", e))?;
    for dir in cwd.ancestors() {
        let p = dir.join(DEFAULT_PATH);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::input(
        format!("no {DEFAULT_PATH} in `{}` or its parents", cwd.display()),
        format!("run from the repository, or pass --pins FILE (or set {ENV_PINS})"),
    ))
}

impl Pins {
    pub fn load(path: &Path) -> Result<Pins> {
        Pins::parse(&Pins::read_text(path)?, path)
    }

    /// The pins file's text: a missing file or one that is not UTF-8 is exit 2, naming it.
    pub fn read_text(path: &Path) -> Result<String> {
        crate::textfile::read_text(
            path,
            "the pins file",
            &format!("pass an existing --pins FILE (or {ENV_PINS}), or run from the repository"),
        )
    }

    pub fn parse(text: &str, path: &Path) -> Result<Pins> {
        let bad = |line: usize, key: &str, what: String| {
            Error::Config {
            file: path.to_path_buf(),
            line,
            key: key.to_string(),
            what,
            hint: "the pins file is written by `protoreg bump`; restore it from version control and bump again".into(),
        }
        };
        let top = starlark_lit::parse(text).map_err(|e| bad(e.line, "pins", e.message))?;
        let mut pins = Pins::default();
        if let Some((line, defaults)) = top.get("DEFAULTS") {
            for (tool, version) in defaults.as_dict().ok_or_else(|| {
                bad(
                    *line,
                    "DEFAULTS",
                    "must be a dict of tool -> version".into(),
                )
            })? {
                let (Some(tool), Some(version)) = (tool.as_str(), version.as_str()) else {
                    return Err(bad(
                        *line,
                        "DEFAULTS",
                        "must map tool names to version strings".into(),
                    ));
                };
                pins.defaults.insert(tool.to_string(), version.to_string());
            }
        } else if let Some((line, tools)) = top.get("TOOLS") {
            // Before the catalogue moved to tools.bzl, pins files kept each default in
            // `TOOLS[tool]["default"]`; read them, and the next bump writes DEFAULTS.
            for (name, meta) in tools
                .as_dict()
                .ok_or_else(|| bad(*line, "TOOLS", "must be a dict".into()))?
            {
                let name = name
                    .as_str()
                    .ok_or_else(|| bad(*line, "TOOLS", "keys must be strings".into()))?;
                if let Some(Value::Str(d)) = meta.get("default") {
                    pins.defaults.insert(name.to_string(), d.clone());
                }
            }
        }
        let (line, table) = top
            .get("PINS")
            .ok_or_else(|| bad(1, "PINS", "missing".into()))?;
        let line = *line;
        let dict = |v: &'_ Value, key: &str| {
            v.as_dict()
                .ok_or_else(|| bad(line, key, "must be a dict".into()))
                .map(|d| d.to_vec())
        };
        // A broken catalogue is its own error (its file and line), not every pinned tool
        // reported unknown against the pins.
        tools::catalogue()?;
        for (tool, versions) in dict(table, "PINS")? {
            let tool = tool.as_str().unwrap_or_default().to_string();
            tools::by_name(&tool).map_err(|_| bad(line, &tool, "unknown tool".into()))?;
            for (version, platforms) in dict(&versions, &tool)? {
                let version = version.as_str().unwrap_or_default().to_string();
                let key = format!("{tool}@{version}");
                for (plat, pin) in dict(&platforms, &key)? {
                    let plat = plat.as_str().unwrap_or_default().to_string();
                    platform::by_name(&plat).map_err(|_| {
                        bad(line, &format!("{key} {plat}"), "unknown platform".into())
                    })?;
                    let key = format!("{key} {plat}");
                    let Value::Tuple(fields) = pin else {
                        return Err(bad(line, &key, SHAPE.into()));
                    };
                    let [Value::Str(f), size, Value::Str(sha), Value::Str(url)] = fields.as_slice()
                    else {
                        return Err(bad(line, &key, SHAPE.into()));
                    };
                    let size = match size {
                        Value::None => None,
                        Value::Int(n) if *n > 0 => Some(*n as u64),
                        _ => return Err(bad(line, &key, SHAPE.into())),
                    };
                    let pin = Pin {
                        format: f
                            .parse()
                            .map_err(|_| bad(line, &key, format!("unknown format `{f}`")))?,
                        size,
                        sha256: sha.parse().map_err(|_| {
                            bad(line, &key, format!("`{sha}` is not 64 hex digits"))
                        })?,
                        url: url.clone(),
                    };
                    pins.insert(&tool, &version, &plat, pin);
                }
            }
        }
        if let Some((_, prov)) = top.get("PROVENANCE") {
            for (tool, versions) in prov.as_dict().unwrap_or_default() {
                for (version, text) in versions.as_dict().unwrap_or_default() {
                    if let (Some(t), Some(v), Some(s)) =
                        (tool.as_str(), version.as_str(), text.as_str())
                    {
                        pins.provenance
                            .entry(t.into())
                            .or_default()
                            .insert(v.into(), s.into());
                    }
                }
            }
        }
        for (tool, default) in &pins.defaults {
            if !pins.pins.get(tool).is_some_and(|v| v.contains_key(default)) {
                return Err(bad(
                    line,
                    tool,
                    format!("default version {default} has no pins"),
                ));
            }
        }
        Ok(pins)
    }

    /// The pin of `tool` at `version` (default when None) for `platform`, with errors that
    /// name what is missing.
    pub fn get(&self, tool: &str, version: Option<&str>, platform: &str) -> Result<(String, &Pin)> {
        let catalogue = tools::by_name(tool)?;
        let versions = self.pins.get(tool).ok_or_else(|| {
            Error::input(
                format!("{tool} is not pinned"),
                format!("pin it with `protoreg bump {tool} VERSION`"),
            )
        })?;
        let version = match version {
            Some(v) => v.to_string(),
            None => self.defaults.get(tool).cloned().ok_or_else(|| {
                Error::input(
                    format!("{tool} has no default version in the pins"),
                    format!("give one: {tool}@VERSION"),
                )
            })?,
        };
        let platforms = versions.get(&version).ok_or_else(|| {
            let have: Vec<_> = versions.keys().cloned().collect();
            Error::input(
                format!(
                    "{tool} {version} is not pinned (pinned: {})",
                    have.join(", ")
                ),
                format!("pin it with `protoreg bump {tool} {version}`"),
            )
        })?;
        let pin = platforms.get(platform).ok_or_else(|| {
            let have: Vec<_> = platforms.keys().cloned().collect();
            Error::input(
                format!("{tool} {version} has no pin for {platform} (pinned: {})", have.join(", ")),
                if catalogue.platforms.iter().any(|p| p == platform) {
                    format!("run `protoreg bump {tool} {version}` where that platform's checksum can be obtained")
                } else {
                    format!("{tool} does not ship {platform} builds")
                },
            )
        })?;
        Ok((version, pin))
    }

    /// Render the file. Deterministic: sorted tools and platforms, versions in version order.
    /// Set the pin of `tool` `version` for `platform`.
    pub fn insert(&mut self, tool: &str, version: &str, platform: &str, pin: Pin) {
        self.pins
            .entry(tool.into())
            .or_default()
            .entry(version.into())
            .or_default()
            .insert(platform.into(), pin);
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("# @generated by `protoreg bump`: do not edit by hand.\n");
        s.push_str("# Move a pin with `protoreg bump TOOL VERSION` (README.md, \"Pins\").\n");
        s.push_str("# Loaded by toolchains/BUCK; read by protoreg. One line per value.\n\n");
        s.push_str("# Canonical platform -> Buck2 constraint values (prelude//os:<os>, prelude//cpu:<cpu>).\n");
        s.push_str("PLATFORMS = {\n");
        let mut plats: Vec<_> = PLATFORMS.iter().collect();
        plats.sort_by_key(|p| p.name);
        for p in plats {
            s.push_str(&format!(
                "    {}: {{\"os\": {}, \"cpu\": {}, \"exe_suffix\": {}}},\n",
                quote(p.name),
                quote(p.buck_os),
                quote(p.buck_cpu),
                quote(p.exe_suffix)
            ));
        }
        s.push_str("}\n\n# Tool -> default version (its layout is in tools.bzl, the catalogue).\nDEFAULTS = {\n");
        for (tool, default) in &self.defaults {
            s.push_str(&format!("    {}: {},\n", quote(tool), quote(default)));
        }
        s.push_str("}\n\n# Tool -> version -> platform -> (format, size in bytes or None when upstream states none, sha256, upstream URL).\nPINS = {\n");
        for (tool, versions) in &self.pins {
            s.push_str(&format!("    {}: {{\n", quote(tool)));
            let mut vs: Vec<_> = versions.keys().collect();
            vs.sort_by(|a, b| crate::maintain::version::compare(a, b));
            for v in vs {
                s.push_str(&format!("        {}: {{\n", quote(v)));
                for (plat, pin) in &versions[v] {
                    s.push_str(&format!(
                        "            {}: ({}, {}, {}, {}),\n",
                        quote(plat),
                        quote(pin.format.as_str()),
                        pin.size
                            .map_or_else(|| "None".to_string(), |n| n.to_string()),
                        quote(pin.sha256.hex()),
                        quote(&pin.url)
                    ));
                }
                s.push_str("        },\n");
            }
            s.push_str("    },\n");
        }
        s.push_str("}\n\n# Tool -> version -> where the values came from.\nPROVENANCE = {\n");
        for (tool, versions) in &self.provenance {
            s.push_str(&format!("    {}: {{\n", quote(tool)));
            let mut vs: Vec<_> = versions.keys().collect();
            vs.sort_by(|a, b| crate::maintain::version::compare(a, b));
            for v in vs {
                s.push_str(&format!("        {}: {},\n", quote(v), quote(&versions[v])));
            }
            s.push_str("    },\n");
        }
        s.push_str("}\n");
        s
    }
}

/// The markers around the table of pins a README carries.
pub const TABLE_START: &str = "<!-- pins -->\n";
pub const TABLE_END: &str = "<!-- /pins -->";

impl Pins {
    /// What is pinned, as a Markdown table: per tool, its default, every pinned version and
    /// the platforms of the default (raw pins marked).
    pub fn markdown_table(&self) -> String {
        let mut s = String::from(
            "| tool | default | versions | platforms pinned (default version) |\n|---|---|---|---|\n",
        );
        for (tool, versions) in &self.pins {
            let Some(default) = self.defaults.get(tool) else {
                continue;
            };
            let list: Vec<&str> = versions.keys().map(String::as_str).collect();
            let platforms: Vec<String> = versions
                .get(default)
                .into_iter()
                .flatten()
                .map(|(p, pin)| match pin.format {
                    Format::Raw => format!("{p} (raw)"),
                    _ => p.clone(),
                })
                .collect();
            s.push_str(&format!(
                "| {tool} | {default} | {} | {} |\n",
                list.join(", "),
                platforms.join(", ")
            ));
        }
        s
    }
}

/// `text` with the table between its pins markers replaced by `table`; None without markers.
pub fn replace_table(text: &str, table: &str) -> Option<String> {
    let start = text.find(TABLE_START)? + TABLE_START.len();
    let end = start + text[start..].find(TABLE_END)?;
    Some(format!("{}{table}{}", &text[..start], &text[end..]))
}

/// The layout (format, strip prefix, executables) of `tool` on `platform`. A raw pin is one
/// file, the tool's first binary (buf's Windows assets are bare `buf.exe`s, without the
/// protoc-gen-buf-* plugins its archives hold).
pub fn layout(tool: &Tool, version: &str, format: Format, platform: &platform::Platform) -> Layout {
    let mut executables = tool.binaries_for(platform);
    if format == Format::Raw {
        executables.truncate(1);
    }
    Layout {
        format,
        strip_prefix: Some(tool.strip_prefix_for(version, platform)).filter(|s| !s.is_empty()),
        executables,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Pins {
        let mut p = Pins::default();
        p.defaults.insert("protoc".into(), "31.1".into());
        for (v, plat) in [
            ("31.1", "linux-x86_64"),
            ("31.1", "darwin-arm64"),
            ("30.2", "linux-x86_64"),
        ] {
            p.insert(
                "protoc",
                v,
                plat,
                Pin {
                    format: Format::Zip,
                    // One pin whose size upstream does not state.
                    size: (plat != "darwin-arm64").then_some(123),
                    sha256: Sha256::of_bytes(plat.as_bytes()),
                    url: format!("https://example/{v}/{plat}.zip"),
                },
            );
        }
        p.provenance
            .entry("protoc".into())
            .or_default()
            .insert("31.1".into(), "a \"quoted\" source".into());
        p
    }

    #[test]
    fn round_trips_and_is_deterministic() {
        let p = sample();
        let text = p.render();
        let back = Pins::parse(&text, Path::new("pins.bzl")).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.render(), text);
        // Version order, not string order; one line per pin.
        let table = &text[text.find("PINS = {").unwrap()..];
        assert!(table.find("\"30.2\"").unwrap() < table.find("\"31.1\"").unwrap());
        assert_eq!(
            text.lines()
                .filter(|l| l.contains("https://example/"))
                .count(),
            3
        );
    }

    #[test]
    fn unknown_sizes_are_none_both_ways() {
        let p = sample();
        let text = p.render();
        assert!(text.contains(
            "# Tool -> version -> platform -> (format, size in bytes or None when upstream states none, sha256, upstream URL).\n"
        ));
        let line = text
            .lines()
            .find(|l| l.contains("https://example/31.1/darwin-arm64.zip"))
            .unwrap();
        assert!(
            line.starts_with("            \"darwin-arm64\": (\"zip\", None, \""),
            "{line}"
        );
        let line = text
            .lines()
            .find(|l| l.contains("https://example/31.1/linux-x86_64.zip"))
            .unwrap();
        assert!(line.contains("(\"zip\", 123, \""), "{line}");
        let back = Pins::parse(&text, Path::new("pins.bzl")).unwrap();
        assert_eq!(back.pins["protoc"]["31.1"]["darwin-arm64"].size, None);
        assert_eq!(back.pins["protoc"]["31.1"]["linux-x86_64"].size, Some(123));
        assert_eq!(
            back.pins["protoc"]["31.1"]["darwin-arm64"].expected().size,
            None
        );

        // Hand-written, as in toolchains/pins.bzl.
        let sha = "ab".repeat(32);
        let file = |size: &str| {
            format!(
                "TOOLS = {{\"buf\": {{\"default\": \"1.75.0\"}}}}\n\
                 PINS = {{\"buf\": {{\"1.75.0\": {{\"windows-x86_64\": (\"raw\", {size}, \"{sha}\", \"https://x/buf-Windows-x86_64.exe\")}}}}}}\n"
            )
        };
        let p = Pins::parse(&file("None"), Path::new("p.bzl")).unwrap();
        let (_, pin) = p.get("buf", None, "windows-x86_64").unwrap();
        assert_eq!((pin.format, pin.size), (Format::Raw, None));
        let p = Pins::parse(&file("47835648"), Path::new("p.bzl")).unwrap();
        assert_eq!(
            p.pins["buf"]["1.75.0"]["windows-x86_64"].size,
            Some(47835648)
        );
        for bad in ["0", "-1", "\"12\"", "True"] {
            let e = Pins::parse(&file(bad), Path::new("p.bzl")).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("size > 0 or None"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_raw_layout_is_the_first_binary_only() {
        let buf = tools::by_name("buf").unwrap();
        let win = platform::by_name("windows-x86_64").unwrap();
        assert_eq!(
            layout(buf, "1.75.0", Format::Raw, win).executables,
            ["bin/buf.exe"]
        );
        assert_eq!(
            layout(buf, "1.75.0", Format::TarGz, win).executables.len(),
            3
        );
    }

    #[test]
    fn errors_name_what_is_missing() {
        let p = sample();
        assert!(p.get("protoc", None, "linux-x86_64").is_ok());
        let e = p
            .get("protoc", None, "windows-x86_64")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no pin for windows-x86_64"), "{e}");
        let e = p
            .get("protoc", Some("29.0"), "linux-x86_64")
            .unwrap_err()
            .to_string();
        assert!(e.contains("29.0 is not pinned"), "{e}");
        assert!(p
            .get("buf", None, "linux-x86_64")
            .unwrap_err()
            .to_string()
            .contains("not pinned"));
    }

    #[test]
    fn malformed_values_are_refused_with_their_line() {
        let bad = "PINS = {\n    \"protoc\": {\n        \"31.1\": {\n            \"linux-x86_64\": (\"zip\", 1, \"abc\", \"u\"),\n        },\n    },\n}\n";
        let e = Pins::parse(bad, Path::new("p.bzl")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("not 64 hex digits"), "{e}");
    }
}
