//! `bundles`: named sets of tool versions, published and materialized together.

use super::publishing::check_tag_chars;
use super::*;

/// A named set of tool versions published and materialized together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub name: String,
    pub description: String,
    /// Tag under `bundles/<name>` besides `latest`; default: derived from the members.
    pub version: Option<String>,
    /// tool -> version.
    pub tools: BTreeMap<String, String>,
    /// Default: every canonical platform all members ship.
    pub platforms: Option<Vec<String>>,
}

impl Config {
    /// The repository of bundle `name`.
    pub fn bundle_repository(&self, registry: &RegistryConfig, name: &str) -> String {
        let path = self
            .repositories
            .get("bundles")
            .map(|r| r.path.as_str())
            .unwrap_or("bundles");
        registry.repository(&format!("{path}/{name}"))
    }
}

pub(super) fn bundle(name: &str, node: &Node) -> Result<Bundle> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(node.error(
            format!("`{name}` is not a bundle name"),
            "bundle names are lowercase a-z, 0-9, `.`, `_`, `-` (they become repository names)",
        ));
    }
    let mut b = Bundle {
        name: name.to_string(),
        description: String::new(),
        version: None,
        tools: BTreeMap::new(),
        platforms: None,
    };
    for (k, v) in node.mapping(&["description", "version", "tools", "platforms"])? {
        match k.as_str() {
            "description" => b.description = v.string()?,
            "version" => {
                let ver = v.string()?;
                check_tag_chars(&v, &ver)?;
                b.version = Some(ver);
            }
            "tools" => {
                for (tool, tv) in v.mapping(&[])? {
                    tools::by_name(&tool).map_err(|e| tv.error("unknown tool", hint_of(&e)))?;
                    let version = tv.string()?;
                    if version.is_empty() || !version.starts_with(|c: char| c.is_ascii_digit()) {
                        return Err(tv.error(
                            format!("`{version}` is not a version"),
                            "give the upstream version, as in `36.2` (quote it)",
                        ));
                    }
                    b.tools.insert(tool, version);
                }
            }
            _ => {
                let mut list = Vec::new();
                for item in v.sequence()? {
                    let p = item.string()?;
                    platform::by_name(&p)
                        .map_err(|e| item.error(format!("unknown platform `{p}`"), hint_of(&e)))?;
                    list.push(p);
                }
                b.platforms = Some(list);
            }
        }
    }
    if b.tools.is_empty() {
        return Err(node.error(
            "a bundle needs at least one tool",
            "add `tools: {protoc: \"36.2\"}`",
        ));
    }
    Ok(b)
}
