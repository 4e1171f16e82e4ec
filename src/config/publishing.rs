//! `publishing`: how releases are published (parallelism, retries, tag templates) and the
//! per-tool overrides of where upstream releases come from; and what the configuration says
//! about a tool (its repository, its asset names, its platforms, its signing key).

use super::*;

/// Overrides of the tool catalogue for one upstream source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSource {
    pub github_repo: Option<String>,
    /// Canonical platform names to publish.
    pub platforms: Option<Vec<String>>,
    /// Release tag template (`v{version}`).
    pub tag: Option<String>,
    /// Asset name template for every platform.
    pub asset: Option<String>,
    /// Asset name template per platform (wins over `asset`).
    pub assets: BTreeMap<String, String>,
    /// Checksum file name; `Some(None)` when the file says `checksum_file: null`.
    pub checksum_file: Option<Option<String>>,
    /// The minisign signature over the checksum file, and the key that must have made it.
    pub signature_file: Option<String>,
    pub minisign_public_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Publishing {
    pub auto_publish: bool,
    pub parallel_uploads: usize,
    pub retries: u32,
    /// Tag of a platform manifest: `{version}` and `{platform}` are replaced.
    pub tag_template: String,
    /// Tag of the multi-platform index.
    pub index_tag_template: String,
    pub github_api_url: Option<String>,
    pub tool_sources: BTreeMap<String, ToolSource>,
}

impl Config {
    /// The repository of `tool` under `registry`'s namespace: `<ns>/<category path>/<rest>`.
    pub fn tool_repository(&self, registry: &RegistryConfig, tool: &Tool) -> String {
        let (category, rest) = tool
            .oci_repository
            .split_once('/')
            .unwrap_or(("tools", &tool.oci_repository));
        let path = self
            .repositories
            .get(category)
            .map(|r| r.path.as_str())
            .unwrap_or(category);
        registry.repository(&format!("{path}/{rest}"))
    }

    /// The repository category (`tools`, `plugins`) a tool belongs to.
    pub fn category_of(tool: &Tool) -> &str {
        tool.oci_repository
            .split_once('/')
            .map(|(c, _)| c)
            .unwrap_or("tools")
    }

    /// The catalogue entry for `name` with this file's overrides applied (repository, tag,
    /// asset template, checksum file). The entry lives for the rest of the process: a
    /// command builds at most one per tool.
    pub fn tool(&self, name: &str) -> Result<&'static Tool> {
        let base = tools::by_name(name)?;
        let Some(src) = self.source(name) else {
            return Ok(base);
        };
        let mut t = base.clone();
        if let Some(r) = &src.github_repo {
            t.github_repo = r.clone();
        }
        if let Some(tag) = &src.tag {
            t.tag = tag.clone();
        }
        if let Some(a) = &src.asset {
            t.asset = a.clone();
        }
        t.assets.extend(src.assets.clone());
        if let Some(c) = &src.checksum_file {
            t.checksum_file = c.clone();
        }
        if t == *base {
            return Ok(base);
        }
        Ok(Box::leak(Box::new(t)))
    }

    /// (signature file, public key) that signs `tool`'s checksum file, if any.
    pub fn signing(&self, tool: &Tool) -> Option<(String, String)> {
        let src = self.source(&tool.name);
        let known = crate::operate::signature::KNOWN
            .iter()
            .find(|(t, _, _)| *t == tool.name);
        let file = src
            .and_then(|s| s.signature_file.clone())
            .or_else(|| known.map(|k| k.1.to_string()))?;
        let key = src
            .and_then(|s| s.minisign_public_key.clone())
            .or_else(|| known.map(|k| k.2.to_string()))?;
        Some((file, key))
    }

    /// The asset name template of `tool` for `platform` (per-platform override first).
    pub fn asset_template<'a>(&'a self, tool: &'a Tool, platform: &str) -> &'a str {
        self.source(&tool.name)
            .and_then(|s| s.assets.get(platform))
            .map(String::as_str)
            .unwrap_or_else(|| tool.asset_template(platform))
    }

    pub fn source(&self, tool: &str) -> Option<&ToolSource> {
        self.publishing.tool_sources.get(tool)
    }

    /// The platforms to publish for `tool`: the configured list, else all it ships.
    pub fn platforms_of(&self, tool: &Tool) -> Vec<&'static platform::Platform> {
        let names: Vec<String> = match self.source(&tool.name).and_then(|s| s.platforms.clone()) {
            Some(list) => list,
            None => tool.platforms.iter().map(|s| s.to_string()).collect(),
        };
        names
            .iter()
            .filter_map(|n| platform::by_name(n).ok())
            .collect()
    }

    /// Tag of a platform manifest.
    pub fn platform_tag(&self, version: &str, platform: &str) -> String {
        self.publishing
            .tag_template
            .replace("{version}", version)
            .replace("{platform}", platform)
    }
}

pub(super) fn publishing(node: &Node, p: &mut Publishing) -> Result<()> {
    for (k, v) in node.mapping(&[
        "auto_publish",
        "parallel_uploads",
        "retries",
        "tag_template",
        "index_tag_template",
        "github_api_url",
        "tool_sources",
    ])? {
        match k.as_str() {
            "auto_publish" => p.auto_publish = v.boolean()?,
            "parallel_uploads" => p.parallel_uploads = v.uint(1, 64)? as usize,
            "retries" => p.retries = v.uint(0, 10)? as u32,
            "tag_template" => {
                let t = v.string()?;
                if !t.contains("{version}") || !t.contains("{platform}") {
                    return Err(v.error(
                        format!("`{t}` lacks `{{version}}` or `{{platform}}`"),
                        "a platform tag must name both, as in `v{version}-{platform}`",
                    ));
                }
                check_tag_chars(&v, &t)?;
                p.tag_template = t;
            }
            "index_tag_template" => {
                let t = v.string()?;
                if !t.contains("{version}") || t.contains("{platform}") {
                    return Err(v.error(
                        format!("`{t}` must name `{{version}}` and not `{{platform}}`"),
                        "the index covers every platform, as in `v{version}`",
                    ));
                }
                check_tag_chars(&v, &t)?;
                p.index_tag_template = t;
            }
            "github_api_url" => {
                let u = v.string()?;
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    return Err(v.error(
                        format!("`{u}` is not an http(s) URL"),
                        "use https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise",
                    ));
                }
                p.github_api_url = Some(u.trim_end_matches('/').to_string());
            }
            _ => {
                for (tool, tnode) in v.mapping(&[])? {
                    let t = tools::by_name(&tool)
                        .map_err(|e| tnode.error("unknown tool", hint_of(&e)))?;
                    p.tool_sources.insert(tool, tool_source(&tnode, t)?);
                }
            }
        }
    }
    Ok(())
}

pub(super) fn check_tag_chars(node: &Node, template: &str) -> Result<()> {
    let probe = template
        .replace("{version}", "1.0.0")
        .replace("{platform}", "linux-x86_64");
    if crate::artifact::valid_tag(&probe) {
        Ok(())
    } else {
        Err(node.error(
            format!("`{template}` does not give a valid OCI tag"),
            "tags are letters, digits, `.`, `_`, `-` (not first), at most 128 characters",
        ))
    }
}

fn tool_source(node: &Node, tool: &Tool) -> Result<ToolSource> {
    let mut s = ToolSource::default();
    for (k, v) in node.mapping(&[
        "github_repo",
        "platforms",
        "tag",
        "asset",
        "assets",
        "checksum_file",
        "signature_file",
        "minisign_public_key",
    ])? {
        match k.as_str() {
            "github_repo" => {
                let r = v.string()?;
                let parts: Vec<&str> = r.split('/').collect();
                if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                    return Err(v.error(
                        format!("`{r}` is not OWNER/REPO"),
                        format!("as in `{}`", tool.github_repo),
                    ));
                }
                s.github_repo = Some(r);
            }
            "platforms" => {
                let mut list = Vec::new();
                for item in v.sequence()? {
                    let name = item.string()?;
                    let p = platform::by_name(&name).map_err(|e| {
                        item.error(format!("unknown platform `{name}`"), hint_of(&e))
                    })?;
                    if !tool.ships(p) {
                        return Err(item.error(
                            format!("{} does not ship a {name} build", tool.name),
                            format!("{} ships: {}", tool.name, tool.platforms.join(", ")),
                        ));
                    }
                    list.push(name);
                }
                s.platforms = Some(list);
            }
            "tag" => {
                let t = v.string()?;
                if !t.contains("{version}") {
                    return Err(v.error(
                        format!("`{t}` lacks `{{version}}`"),
                        format!("as in `{}`", tool.tag),
                    ));
                }
                s.tag = Some(t);
            }
            "asset" => s.asset = Some(asset_template(&v)?),
            "assets" => {
                for (plat, pnode) in v.mapping(&[])? {
                    platform::by_name(&plat).map_err(|e| {
                        pnode.error(format!("unknown platform `{plat}`"), hint_of(&e))
                    })?;
                    s.assets.insert(plat, asset_template(&pnode)?);
                }
            }
            "signature_file" => s.signature_file = Some(asset_template(&v)?),
            "minisign_public_key" => {
                let key = v.string()?;
                if minisign_verify::PublicKey::from_base64(&key).is_err() {
                    return Err(v.error(
                        format!("`{key}` is not a minisign public key"),
                        "copy the key (the RW… line) from upstream's release documentation",
                    ));
                }
                s.minisign_public_key = Some(key);
            }
            _ => s.checksum_file = Some(if v.is_null() { None } else { Some(v.string()?) }),
        }
    }
    Ok(s)
}

fn asset_template(node: &Node) -> Result<String> {
    let t = node.string()?;
    if t.is_empty() || t.contains('/') {
        return Err(node.error(
            format!("`{t}` is not an asset file name"),
            "give the release asset's file name, with placeholders such as `{version}`",
        ));
    }
    Ok(t)
}
