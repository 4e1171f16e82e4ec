//! A reader for the literal subset of Starlark the pins file is written in: top-level
//! `NAME = <literal>` assignments whose values are dicts, lists, tuples, strings, ints,
//! `None`, `True` and `False`, with `#` comments and trailing commas. The file stays a real
//! `.bzl` that Buck2 loads, and protoreg reads it without an interpreter.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Entries in file order, and the line each key is on.
    Dict(Vec<(Value, Value)>, Vec<usize>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(d, _) => Some(d),
            _ => None,
        }
    }
    /// A dict's entries with the line of each key.
    pub fn dict_entries(&self) -> Option<impl Iterator<Item = (usize, &Value, &Value)>> {
        match self {
            Value::Dict(d, lines) => Some(lines.iter().zip(d).map(|(l, (k, v))| (*l, k, v))),
            _ => None,
        }
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

/// How deep dicts, lists and tuples may nest. The pins file nests four deep
/// (`PINS[tool][version][platform]` is a tuple); the limit keeps a hostile file from
/// overflowing the stack of this recursive reader.
pub const MAX_DEPTH: usize = 32;

/// A parse error with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parse a file into its top-level assignments, with the line each starts on.
pub fn parse(src: &str) -> Result<BTreeMap<String, (usize, Value)>, ParseError> {
    let mut p = Parser {
        s: src.as_bytes(),
        i: 0,
        line: 1,
        depth: 0,
    };
    let mut out = BTreeMap::new();
    loop {
        p.skip_ws();
        if p.i >= p.s.len() {
            return Ok(out);
        }
        let line = p.line;
        let name = p.ident()?;
        p.skip_ws();
        p.expect(b'=')?;
        let v = p.value()?;
        if out.insert(name.clone(), (line, v)).is_some() {
            return Err(p.err(format!("`{name}` is assigned twice")));
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    /// Values being read (one per open dict, list or tuple, plus the one at hand).
    depth: usize,
}

impl Parser<'_> {
    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            message: message.into(),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                }
                b' ' | b'\r' | b'\t' => self.i += 1,
                b'#' => {
                    while self.s.get(self.i).is_some_and(|&c| c != b'\n') {
                        self.i += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), ParseError> {
        self.skip_ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected `{}`", c as char)))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(self.err("expected a name"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!(
                "values nested more than {MAX_DEPTH} deep (the pins file nests 4 deep)"
            )));
        }
        self.depth += 1;
        let v = self.value_at_depth();
        self.depth -= 1;
        v
    }

    fn value_at_depth(&mut self) -> Result<Value, ParseError> {
        self.skip_ws();
        match self.s.get(self.i) {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                let mut lines = Vec::new();
                let mut seen = BTreeMap::new();
                loop {
                    self.skip_ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Value::Dict(entries, lines));
                    }
                    let line = self.line;
                    let k = self.value()?;
                    // Buck2 refuses a repeated key; reading it as "last wins" would let a
                    // second entry silently replace the first one a reviewer saw.
                    if let Some(first) = seen.insert(show_key(&k), line) {
                        return Err(ParseError {
                            line,
                            message: format!(
                                "key {} repeated (first on line {first}): each key once",
                                show_key(&k),
                            ),
                        });
                    }
                    lines.push(line);
                    self.expect(b':')?;
                    let v = self.value()?;
                    entries.push((k, v));
                    self.skip_ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(self.err("expected `,` or `}` in a dict")),
                    }
                }
            }
            Some(&open @ (b'[' | b'(')) => {
                let close = if open == b'[' { b']' } else { b')' };
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.s.get(self.i) == Some(&close) {
                        self.i += 1;
                        return Ok(if open == b'[' {
                            Value::List(items)
                        } else {
                            Value::Tuple(items)
                        });
                    }
                    items.push(self.value()?);
                    self.skip_ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(c) if *c == close => {}
                        _ => return Err(self.err(format!("expected `,` or `{}`", close as char))),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let start = self.i;
                self.i += 1;
                while self.s.get(self.i).is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]);
                text.parse()
                    .map(Value::Int)
                    .map_err(|_| self.err(format!("bad integer `{text}`")))
            }
            Some(_) => match self.ident()?.as_str() {
                "None" => Ok(Value::None),
                "True" => Ok(Value::Bool(true)),
                "False" => Ok(Value::Bool(false)),
                other => Err(self.err(format!("`{other}` is not a literal"))),
            },
            None => Err(self.err("unexpected end of file")),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None | Some(b'\n') => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"));
                }
                Some(b'\\') => {
                    let c = self.s.get(self.i + 1).copied();
                    out.push(match c {
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        _ => return Err(self.err("unsupported escape in string")),
                    });
                    self.i += 2;
                }
                Some(&c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

/// A dict key as written, for messages.
fn show_key(k: &Value) -> String {
    match k {
        Value::Str(s) => quote(s),
        Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// Render a string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_subset() {
        let src = "# c\nA = {\"k\": (\"zip\", 12, None, True),  # c\n \"l\": [1, -2,],\n}\nB = \"x\\\"y\"\n";
        let m = parse(src).unwrap();
        let a = &m["A"].1;
        assert_eq!(
            a.get("k"),
            Some(&Value::Tuple(vec![
                Value::Str("zip".into()),
                Value::Int(12),
                Value::None,
                Value::Bool(true)
            ]))
        );
        assert_eq!(
            a.get("l"),
            Some(&Value::List(vec![Value::Int(1), Value::Int(-2)]))
        );
        assert_eq!(m["B"], (5, Value::Str("x\"y".into())));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for open in ["[", "(", "{\"k\": "] {
            let src = format!("A = \n{}", open.repeat(50_000));
            let e = parse(&src).unwrap_err();
            assert_eq!(e.line, 2);
            assert!(e.message.contains("nested more than 32 deep"), "{e:?}");
        }
        // Up to the limit is fine.
        let ok = format!(
            "A = {}1{}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn reports_lines() {
        let e = parse("A = {\n\"k\": foo,\n}\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse("A = 1\nA = 2\n").is_err());
        assert!(parse("A = \"open\n").is_err());
    }

    #[test]
    fn a_repeated_key_is_refused_at_its_second_line() {
        let e = parse("A = {\n\"k\": 1,\n\"j\": {\"x\": 1},\n\"k\": 2,\n}\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(
            e.message.contains("key \"k\" repeated (first on line 2)"),
            "{e:?}"
        );
        // Nested dicts too, and equal keys in different dicts are fine.
        let e = parse("A = {\"a\": {\"x\": 1, \"x\": 2}}\n").unwrap_err();
        assert!(e.message.contains("key \"x\" repeated"), "{e:?}");
        assert!(parse("A = {\"a\": {\"x\": 1}, \"b\": {\"x\": 1}}\n").is_ok());
    }
}
