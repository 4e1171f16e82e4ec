//! The descriptors protoc needs: what the sources import, directly or not, out of the
//! `--descriptor_set_in` sets the rules pass.
//!
//! A library's dependents get every descriptor set of their transitive deps, one per
//! library, because which files an import reaches is only known from the sources. protoc
//! reads and indexes every file of every set before it starts, so a deep library spent most
//! of its time loading descriptors it never used (in a googleapis-shaped tree, a file was
//! loaded 28 times over the build, and its import closure needed 8 of those). This module
//! follows the imports instead: from the sources' `import` lines, then through each imported
//! file's own dependency list in the sets, and hands protoc one set with just those files.
//!
//! Whenever it cannot be sure (an escaped or unterminated string in a source, a set it
//! cannot read), it says so and protoc gets the sets as they were: pruning only ever makes
//! protoc read less, never resolve an import differently.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The files a `.proto` source imports (`import`, `import public`, `import weak`, and
/// editions' `import option`), in order; None when the source has something this reading
/// cannot be sure of (an escape in a string, an unterminated string or comment).
pub fn imports(source: &[u8]) -> Option<Vec<String>> {
    let mut found = Vec::new();
    let mut tokens = Tokens {
        text: source,
        at: 0,
    };
    // Only an `import` that starts a statement is one (a field may be named `import`).
    let mut statement_start = true;
    while let Some(token) = tokens.next()? {
        if statement_start && token == Token::Word(b"import") {
            let mut next = tokens.next()?;
            while matches!(next, Some(Token::Word(_))) {
                next = tokens.next()?;
            }
            let mut path = Vec::new();
            while let Some(Token::Str(part)) = next {
                path.extend_from_slice(part);
                next = tokens.next()?;
            }
            if !path.is_empty() && next == Some(Token::Punct(b';')) {
                found.push(String::from_utf8(path).ok()?);
            }
            statement_start = matches!(next, Some(Token::Punct(b';' | b'{' | b'}')));
            continue;
        }
        statement_start = matches!(token, Token::Punct(b';' | b'{' | b'}'));
    }
    Some(found)
}

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Word(&'a [u8]),
    /// A string literal's contents (without escapes: those make the reading unsure).
    Str(&'a [u8]),
    Punct(u8),
}

struct Tokens<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Tokens<'a> {
    /// The next token: Some(None) at the end, None when unsure (an escape, an unterminated
    /// string or comment).
    fn next(&mut self) -> Option<Option<Token<'a>>> {
        let t = self.text;
        loop {
            match t.get(self.at) {
                None => return Some(None),
                Some(c) if c.is_ascii_whitespace() => self.at += 1,
                Some(b'/') if t.get(self.at + 1) == Some(&b'/') => {
                    while t.get(self.at).is_some_and(|&c| c != b'\n') {
                        self.at += 1;
                    }
                }
                Some(b'/') if t.get(self.at + 1) == Some(&b'*') => {
                    let end = find(&t[self.at + 2..], b"*/")?;
                    self.at += 2 + end + 2;
                }
                Some(&quote @ (b'"' | b'\'')) => {
                    let start = self.at + 1;
                    let len = t[start..]
                        .iter()
                        .position(|&c| c == quote || c == b'\\' || c == b'\n')?;
                    if t[start + len] != quote {
                        return None;
                    }
                    self.at = start + len + 1;
                    return Some(Some(Token::Str(&t[start..start + len])));
                }
                Some(c) if c.is_ascii_alphanumeric() || *c == b'_' => {
                    let start = self.at;
                    while t
                        .get(self.at)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || b"_.".contains(c))
                    {
                        self.at += 1;
                    }
                    return Some(Some(Token::Word(&t[start..self.at])));
                }
                Some(&c) => {
                    self.at += 1;
                    return Some(Some(Token::Punct(c)));
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One FileDescriptorProto of a set: its name, what it imports, and its encoded bytes.
#[derive(Debug)]
struct File<'a> {
    name: &'a str,
    dependencies: Vec<&'a str>,
    encoded: &'a [u8],
}

/// The files of an encoded FileDescriptorSet; None when it is not one this can read.
fn files(set: &[u8]) -> Option<Vec<File<'_>>> {
    let mut out = Vec::new();
    for (field, value) in Fields(set) {
        let Value::Bytes(encoded) = value? else {
            continue;
        };
        if field != 1 {
            continue;
        }
        let mut file = File {
            name: "",
            dependencies: Vec::new(),
            encoded,
        };
        for (field, value) in Fields(encoded) {
            match (field, value?) {
                (1, Value::Bytes(name)) => file.name = std::str::from_utf8(name).ok()?,
                (3, Value::Bytes(dep)) => file.dependencies.push(std::str::from_utf8(dep).ok()?),
                _ => {}
            }
        }
        out.push(file);
    }
    Some(out)
}

enum Value<'a> {
    Scalar,
    Bytes(&'a [u8]),
}

/// The fields of one protobuf message, as (number, value); a None value ends a malformed one.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = (u64, Option<Value<'a>>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let Some(key) = varint(&mut self.0) else {
            self.0 = &[];
            return Some((0, None));
        };
        let value = match key & 7 {
            0 => varint(&mut self.0).map(|_| Value::Scalar),
            1 => self.skip(8).map(|_| Value::Scalar),
            5 => self.skip(4).map(|_| Value::Scalar),
            2 => varint(&mut self.0)
                .and_then(|len| usize::try_from(len).ok())
                .and_then(|len| self.skip(len))
                .map(Value::Bytes),
            _ => None, // groups (3, 4) are not in descriptor.proto; anything else is corrupt
        };
        if value.is_none() {
            self.0 = &[];
        }
        Some((key >> 3, value))
    }
}

impl<'a> Fields<'a> {
    fn skip(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(taken)
    }
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One `--proto_path`: `DISK`, or `VIRTUAL=DISK` (the files under VIRTUAL are DISK's, or,
/// when VIRTUAL is a file's name, that file is DISK).
#[derive(Debug, Clone)]
pub struct ProtoPath {
    pub virtual_prefix: String,
    pub disk: String,
}

impl ProtoPath {
    /// One `--proto_path` entry, split as protoc splits it (at the first `=`).
    pub fn parse(entry: &str) -> ProtoPath {
        let (virtual_prefix, disk) = entry.split_once('=').unwrap_or(("", entry));
        ProtoPath {
            virtual_prefix: slashed(virtual_prefix).trim_end_matches('/').to_string(),
            disk: slashed(disk).trim_end_matches('/').to_string(),
        }
    }

    /// Where on disk `name` is under this root, if it is under it at all.
    fn disk_file(&self, name: &str) -> Option<PathBuf> {
        let rest = if self.virtual_prefix.is_empty() {
            name
        } else if name == self.virtual_prefix {
            return Some(PathBuf::from(&self.disk));
        } else {
            name.strip_prefix(&self.virtual_prefix)?.strip_prefix('/')?
        };
        Some(Path::new(&self.disk).join(rest))
    }

    /// The name of the disk file `input`, if this root holds it.
    fn virtual_file(&self, input: &str) -> Option<String> {
        if input == self.disk {
            return Some(self.virtual_prefix.clone());
        }
        let rest = input.strip_prefix(&self.disk)?.strip_prefix('/')?;
        Some(if self.virtual_prefix.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{rest}", self.virtual_prefix)
        })
    }
}

fn slashed(path: &str) -> String {
    path.replace('\\', "/")
}

/// What protoc is asked to read: its `--proto_path` roots, its inputs, and the sets.
pub struct Request<'a> {
    pub proto_paths: &'a [ProtoPath],
    pub inputs: &'a [String],
    pub sets: &'a [Vec<u8>],
}

/// What the inputs reach: the encoded FileDescriptorSet of those files, and which sets hold
/// them (indices into the request's sets, ascending: the ones a dep file names).
pub struct Closure {
    pub set: Vec<u8>,
    pub used_sets: Vec<usize>,
}

/// What `request`'s inputs import, directly or not, from its sets; None when that cannot be
/// told for sure (then protoc must get every set).
///
/// Names resolve as protoc resolves them: a `--proto_path` root first (that file is parsed
/// from source, so its own imports are read from it), then the sets.
pub fn closure(request: &Request) -> Option<Closure> {
    // Every file of every set, with the index of its set.
    let files: Vec<(usize, File)> = request
        .sets
        .iter()
        .map(|set| files(set))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .enumerate()
        .flat_map(|(i, set)| set.into_iter().map(move |f| (i, f)))
        .collect();
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, (_, file)) in files.iter().enumerate() {
        by_name.entry(file.name).or_default().push(i);
    }
    let mut wanted = vec![false; files.len()];
    let mut seen: HashSet<String> = HashSet::new();
    let mut todo: Vec<String> = request
        .inputs
        .iter()
        .map(|input| virtual_name(input, request.proto_paths))
        .collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(source) = request
            .proto_paths
            .iter()
            .filter_map(|root| root.disk_file(&name))
            .find(|p| p.is_file())
        {
            todo.extend(imports(&std::fs::read(&source).ok()?)?);
        } else if let Some(found) = by_name.get(name.as_str()) {
            for &i in found {
                wanted[i] = true;
                todo.extend(files[i].1.dependencies.iter().map(|d| d.to_string()));
            }
        }
    }
    // In the sets' order, so the same inputs give the same bytes.
    let mut set = Vec::new();
    let mut used_sets = Vec::new();
    for ((from, file), _) in files.iter().zip(&wanted).filter(|(_, w)| **w) {
        set.push(0x0a); // field 1 (`file`), length-delimited
        put_varint(&mut set, file.encoded.len() as u64);
        set.extend_from_slice(file.encoded);
        if used_sets.last() != Some(from) {
            used_sets.push(*from);
        }
    }
    Some(Closure { set, used_sets })
}

/// The name protoc gives an input: its name under the `--proto_path` root that holds it,
/// else the argument itself (a name to find in the roots or the sets).
fn virtual_name(input: &str, proto_paths: &[ProtoPath]) -> String {
    let input = slashed(input);
    proto_paths
        .iter()
        .find_map(|root| root.virtual_file(&input))
        .unwrap_or(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_read_from_statements_only() {
        let src = br#"
            // import "commented.proto";
            /* import "block.proto"; */
            syntax = "proto3";
            package a.b;
            import "a/one.proto";
            import public "a/two.proto";
            import weak 'a/three.proto';
            import option "a/four.proto";
            import "a/" "five.proto";
            message M {
              string import = 1;
              import other = 2;
              option (x) = { s: "import" };
            }
        "#;
        let want = ["one", "two", "three", "four", "five"].map(|n| format!("a/{n}.proto"));
        assert_eq!(imports(src), Some(want.to_vec()));
        // An escape in any string: not sure what it spells, so no answer.
        assert_eq!(imports(br#"option x = "a\"b";"#), None);
        assert_eq!(imports(b"import \"unterminated.proto;\n"), None);
        assert_eq!(imports(b"/* unterminated"), None);
        assert_eq!(imports(b""), Some(vec![]));
    }

    fn file(name: &str, deps: &[&str], extra: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.push(0x0a);
        put_varint(&mut f, name.len() as u64);
        f.extend_from_slice(name.as_bytes());
        for d in deps {
            f.push(0x1a);
            put_varint(&mut f, d.len() as u64);
            f.extend_from_slice(d.as_bytes());
        }
        f.extend_from_slice(extra);
        let mut set = vec![0x0a];
        put_varint(&mut set, f.len() as u64);
        set.extend_from_slice(&f);
        set
    }

    #[test]
    fn the_closure_holds_what_the_sources_reach_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::write(
            root.join("lib/a.proto"),
            "syntax = \"proto3\";\nimport \"lib/b.proto\";\nimport \"dep/x.proto\";\n",
        )
        .unwrap();
        // A sibling in the roots: parsed from source, so its imports are read from it.
        std::fs::write(root.join("lib/b.proto"), "import \"dep/y.proto\";\n").unwrap();
        // Unknown fields (a varint, a fixed64, a message) are carried along untouched.
        let extra = [
            0x50, 0x96, 0x01, 0x59, 1, 2, 3, 4, 5, 6, 7, 8, 0x22, 2, 0x08, 1,
        ];
        let set1 = [
            file("dep/x.proto", &["dep/z.proto"], &extra),
            file("dep/unused.proto", &[], &[]),
        ]
        .concat();
        let set2 = [
            file("dep/y.proto", &["google/protobuf/timestamp.proto"], &[]),
            file("dep/z.proto", &[], &[]),
            file("dep/w.proto", &["dep/x.proto"], &[]),
        ]
        .concat();
        // A third set, of a library nothing here imports.
        let sets = [set1.clone(), set2.clone(), file("other/o.proto", &[], &[])];
        let roots = [ProtoPath::parse(&root.to_string_lossy())];
        let input = format!("{}/lib/a.proto", root.display());
        let got = closure(&Request {
            proto_paths: &roots,
            inputs: &[input],
            sets: &sets,
        })
        .unwrap();
        let names: Vec<&str> = files(&got.set).unwrap().iter().map(|f| f.name).collect();
        assert_eq!(names, ["dep/x.proto", "dep/y.proto", "dep/z.proto"]);
        assert_eq!(got.used_sets, [0, 1]);
        // Each file's bytes exactly as in its set.
        assert_eq!(
            files(&got.set).unwrap()[0].encoded,
            files(&set1).unwrap()[0].encoded
        );
        // A name (not a path under a root) is looked up as protoc would: the sets.
        let got = closure(&Request {
            proto_paths: &roots,
            inputs: &["dep/w.proto".to_string()],
            sets: &sets,
        })
        .unwrap();
        let names: Vec<&str> = files(&got.set).unwrap().iter().map(|f| f.name).collect();
        assert_eq!(names, ["dep/x.proto", "dep/z.proto", "dep/w.proto"]);
        assert_eq!(got.used_sets, [0, 1]);
        // A corrupt set, or a source it cannot read for sure: no answer.
        let corrupt = [set1[..set1.len() - 1].to_vec(), set2.clone()];
        assert!(closure(&Request {
            proto_paths: &roots,
            inputs: &["dep/w.proto".to_string()],
            sets: &corrupt,
        })
        .is_none());
        std::fs::write(root.join("lib/b.proto"), "import \"dep/\\x79.proto\";\n").unwrap();
        assert!(closure(&Request {
            proto_paths: &roots,
            inputs: &[format!("{}/lib/a.proto", root.display())],
            sets: &sets,
        })
        .is_none());
    }

    #[test]
    fn inputs_under_a_root_are_named_from_it() {
        let roots = [
            ProtoPath::parse("out/lib_imports"),
            ProtoPath::parse("inc/"),
            ProtoPath::parse("acme/v1/a.proto=src/acme/v1/a.proto"),
            ProtoPath::parse("vendor=third_party/protos"),
        ];
        let name = |input: &str| virtual_name(input, &roots);
        assert_eq!(name("out/lib_imports/a/b.proto"), "a/b.proto");
        assert_eq!(name("inc/google/x.proto"), "google/x.proto");
        assert_eq!(name("out\\lib_imports\\a\\b.proto"), "a/b.proto");
        assert_eq!(name("src/acme/v1/a.proto"), "acme/v1/a.proto");
        assert_eq!(name("third_party/protos/x/y.proto"), "vendor/x/y.proto");
        assert_eq!(name("a/b.proto"), "a/b.proto");
        assert_eq!(name("out/lib_importsX/a.proto"), "out/lib_importsX/a.proto");
        // And back: where a name is on disk, under each root.
        let disk = |root: usize, name: &str| roots[root].disk_file(name);
        assert_eq!(
            disk(0, "a/b.proto"),
            Some(Path::new("out/lib_imports").join("a/b.proto"))
        );
        assert_eq!(
            disk(2, "acme/v1/a.proto"),
            Some(PathBuf::from("src/acme/v1/a.proto"))
        );
        assert_eq!(disk(2, "acme/v1/a.protox"), None);
        assert_eq!(
            disk(3, "vendor/x/y.proto"),
            Some(Path::new("third_party/protos").join("x/y.proto"))
        );
        assert_eq!(disk(3, "vendorx/y.proto"), None);
    }
}
