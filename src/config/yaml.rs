//! A typed walk over a YAML document that knows where every key is. Each accessor either
//! returns the value or an [`Error::Config`] naming the file, the line and the dotted key, so
//! a typo in registry.yaml is reported where it is instead of being ignored.

use std::path::Path;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

use crate::error::{Error, Result};

/// The parsed document and what error messages need: the file name and the source text
/// (unquoted numbers such as `1.10` are read back from the source, not from the float).
pub struct Doc {
    root: MarkedYamlOwned,
    file: std::path::PathBuf,
    chars: Vec<char>,
}

/// The deepest nesting (collections within collections) a registry.yaml may have.
pub const MAX_NESTING: usize = 64;

/// The first line (1-based) at which `text` may nest more than `max` collections deep, by an
/// over-estimate that needs no parse: the number of deeper indentations open (as Python
/// tokenizes them), plus the block indicators on the line (`- `, `? `, `: `), plus the flow
/// collections (`[`, `{`) open outside quotes and comments. Never under the real depth, so
/// what passes cannot overflow the loader; a real file stays far below it.
fn too_deep(text: &str, max: usize) -> Option<usize> {
    let mut indents: Vec<usize> = vec![0];
    let mut flow: usize = 0;
    for (n, line) in text.split('\n').enumerate() {
        let body = line.trim_start_matches([' ', '\t']);
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        while indents.last().is_some_and(|&i| i > indent) {
            indents.pop();
        }
        if indents.last().is_some_and(|&i| i < indent) {
            indents.push(indent);
        }
        let mut indicators = 0;
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            let next = chars.peek().copied();
            match quote {
                Some('"') if c == '\\' => {
                    chars.next();
                }
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    // A quote opens a scalar only where a token surely starts (`don't` is
                    // plain; elsewhere the brackets are counted, which over-estimates).
                    '"' | '\'' if matches!(prev, ' ' | '\t' | '[' | '{' | ',') => quote = Some(c),
                    '#' if prev == ' ' || prev == '\t' => break,
                    '[' | '{' => flow += 1,
                    ']' | '}' => flow = flow.saturating_sub(1),
                    '-' | '?' | ':' if matches!(next, None | Some(' ' | '\t')) => indicators += 1,
                    _ => {}
                },
            }
            prev = c;
        }
        // A quote left open may span lines: the next line is scanned as if it were not.
        if indents.len() + indicators + flow > max {
            return Some(n + 1);
        }
    }
    None
}

/// One node with its dotted key path (`publishing.tool_sources.protoc`) and the line of its
/// key (the value's own line for list items).
#[derive(Clone)]
pub struct Node<'a> {
    doc: &'a Doc,
    node: &'a MarkedYamlOwned,
    key: String,
    line: usize,
}

impl Doc {
    pub fn parse(file: &Path, text: &str) -> Result<Doc> {
        // The YAML loader recurses once per level of nesting: a hostile file thousands of
        // levels deep would overflow the stack (an abort, not an error). Refuse it first.
        if let Some(line) = too_deep(text, MAX_NESTING) {
            return Err(Error::Config {
                file: file.to_path_buf(),
                line,
                key: "(document)".into(),
                what: format!("nested more than {MAX_NESTING} levels deep"),
                hint: "registry.yaml nests a few levels (publishing.tool_sources.TOOL.KEY): check the brackets and the indentation".into(),
            });
        }
        let mut docs = MarkedYamlOwned::load_from_str(text).map_err(|e| Error::Config {
            file: file.to_path_buf(),
            line: e.marker().line(),
            key: "(document)".into(),
            what: format!("not valid YAML: {}", e.info()),
            hint: "fix the YAML syntax at that line (indentation, quotes, a missing `:`)".into(),
        })?;
        if docs.len() > 1 {
            return Err(Error::Config {
                file: file.to_path_buf(),
                line: docs[1].span.start.line(),
                key: "(document)".into(),
                what: "more than one YAML document".into(),
                hint: "keep one document: remove the `---` separator".into(),
            });
        }
        let root = docs.pop().unwrap_or_else(|| MarkedYamlOwned {
            span: Default::default(),
            data: YamlDataOwned::Value(ScalarOwned::Null),
        });
        Ok(Doc {
            root,
            file: file.to_path_buf(),
            chars: text.chars().collect(),
        })
    }

    pub fn root(&self) -> Node<'_> {
        Node {
            doc: self,
            node: &self.root,
            key: String::new(),
            line: self.root.span.start.line().max(1),
        }
    }
}

impl<'a> Node<'a> {
    pub fn line(&self) -> usize {
        self.line
    }

    pub fn key(&self) -> &str {
        if self.key.is_empty() {
            "(document)"
        } else {
            &self.key
        }
    }

    pub fn error(&self, what: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Config {
            file: self.doc.file.clone(),
            line: self.line(),
            key: self.key().to_string(),
            what: what.into(),
            hint: hint.into(),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.node.data, YamlDataOwned::Value(ScalarOwned::Null))
    }

    /// The entries of a mapping as (name, value), refusing any key not in `known` (an empty
    /// `known` accepts any name: user-chosen names such as bundles). An empty document or a
    /// `null` value is an empty mapping.
    pub fn mapping(&self, known: &[&str]) -> Result<Vec<(String, Node<'a>)>> {
        let map = match &self.node.data {
            YamlDataOwned::Mapping(m) => m,
            YamlDataOwned::Value(ScalarOwned::Null) => return Ok(vec![]),
            _ => {
                return Err(self.error(
                    format!("expected a mapping of keys, got {}", self.kind()),
                    "indent the keys that belong here under it",
                ))
            }
        };
        let mut out = Vec::with_capacity(map.len());
        for (k, v) in map {
            let name = match &k.data {
                YamlDataOwned::Value(ScalarOwned::String(s)) => s.clone(),
                YamlDataOwned::Value(_) => self.raw(k),
                _ => {
                    return Err(Error::Config {
                        file: self.doc.file.clone(),
                        line: k.span.start.line().max(1),
                        key: self.key().into(),
                        what: "a key must be a plain string".into(),
                        hint: "write `name: value`".into(),
                    })
                }
            };
            if !known.is_empty() && !known.contains(&name.as_str()) {
                return Err(Error::Config {
                    file: self.doc.file.clone(),
                    line: k.span.start.line().max(1),
                    key: self.child_path(&name),
                    what: "unknown key".into(),
                    hint: format!(
                        "the keys allowed under `{}` are: {}",
                        self.key(),
                        known.join(", ")
                    ),
                });
            }
            let key = self.child_path(&name);
            out.push((
                name,
                Node {
                    doc: self.doc,
                    node: v,
                    key,
                    line: k.span.start.line().max(1),
                },
            ));
        }
        Ok(out)
    }

    pub fn child_path(&self, name: &str) -> String {
        if self.key.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.key)
        }
    }

    pub fn string(&self) -> Result<String> {
        match &self.node.data {
            YamlDataOwned::Value(ScalarOwned::String(s)) => Ok(s.clone()),
            YamlDataOwned::Value(ScalarOwned::Integer(_))
            | YamlDataOwned::Value(ScalarOwned::FloatingPoint(_)) => Ok(self.raw(self.node)),
            _ => Err(self.error(
                format!("expected a string, got {}", self.kind()),
                "quote the value",
            )),
        }
    }

    pub fn boolean(&self) -> Result<bool> {
        match &self.node.data {
            YamlDataOwned::Value(ScalarOwned::Boolean(b)) => Ok(*b),
            _ => Err(self.error(
                format!("expected true or false, got {}", self.kind()),
                "write `true` or `false`",
            )),
        }
    }

    pub fn uint(&self, min: u64, max: u64) -> Result<u64> {
        match &self.node.data {
            YamlDataOwned::Value(ScalarOwned::Integer(i)) if *i >= 0 => {
                let v = *i as u64;
                if v < min || v > max {
                    Err(self.error(
                        format!("{v} is out of range"),
                        format!("use a whole number from {min} to {max}"),
                    ))
                } else {
                    Ok(v)
                }
            }
            _ => Err(self.error(
                format!("expected a whole number, got {}", self.kind()),
                format!("use a whole number from {min} to {max}"),
            )),
        }
    }

    pub fn number(&self, min: f64, max: f64) -> Result<f64> {
        let v = match &self.node.data {
            YamlDataOwned::Value(ScalarOwned::Integer(i)) => *i as f64,
            YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => f.into_inner(),
            _ => {
                return Err(self.error(
                    format!("expected a number, got {}", self.kind()),
                    format!("use a number from {min} to {max}"),
                ))
            }
        };
        if !(min..=max).contains(&v) {
            return Err(self.error(
                format!("{v} is out of range"),
                format!("use a number from {min} to {max}"),
            ));
        }
        Ok(v)
    }

    pub fn sequence(&self) -> Result<Vec<Node<'a>>> {
        match &self.node.data {
            YamlDataOwned::Sequence(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, n)| Node {
                    doc: self.doc,
                    node: n,
                    key: format!("{}[{i}]", self.key),
                    line: n.span.start.line().max(self.line),
                })
                .collect()),
            _ => Err(self.error(
                format!("expected a list, got {}", self.kind()),
                "write a list: `[a, b]` or one `- item` per line",
            )),
        }
    }

    fn kind(&self) -> &'static str {
        match &self.node.data {
            YamlDataOwned::Value(ScalarOwned::Null) => "nothing (null)",
            YamlDataOwned::Value(ScalarOwned::Boolean(_)) => "a boolean",
            YamlDataOwned::Value(ScalarOwned::Integer(_)) => "a whole number",
            YamlDataOwned::Value(ScalarOwned::FloatingPoint(_)) => "a number",
            YamlDataOwned::Value(ScalarOwned::String(_)) => "a string",
            YamlDataOwned::Sequence(_) => "a list",
            YamlDataOwned::Mapping(_) => "a mapping",
            YamlDataOwned::Alias(_) => "an alias",
            YamlDataOwned::Tagged(..) => "a tagged value",
            _ => "an unreadable value",
        }
    }

    /// The source text of a scalar: `1.10` stays `1.10`.
    fn raw(&self, n: &MarkedYamlOwned) -> String {
        let (s, e) = (n.span.start.index(), n.span.end.index());
        let chars = &self.doc.chars;
        if s < e && e <= chars.len() {
            chars[s..e].iter().collect::<String>().trim().to_string()
        } else {
            match &n.data {
                YamlDataOwned::Value(ScalarOwned::Integer(i)) => i.to_string(),
                YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => f.to_string(),
                _ => String::new(),
            }
        }
    }
}
