//! Property tests of the readers of untrusted input, through the library (thousands of cases
//! in seconds): registry.yaml, the pins file, and the extractor. Every generated input is
//! either accepted or refused with an error of the right kind; never a panic (or an abort),
//! and the extractor never leaves a file or a symlink outside its output directory.
//!
//! `PROTOREG_PROPTEST_CASES` sets the cases per property (default 2,000); a failure prints
//! the (shrunk) input. Nothing is persisted beside the sources. The generator's seed is fixed
//! (so a run is reproducible and CI does not flake on a new find); `PROTOREG_PROPTEST_SEED`
//! sets another number, or `random` to explore.

use std::fs;
use std::path::{Component, Path};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};

use protoreg::error::Error;
use protoreg::pipeline::extract::{self, Format, Layout};

const DEFAULT_CASES: u32 = 2_000;

fn cases() -> u32 {
    std::env::var("PROTOREG_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_CASES)
}

const DEFAULT_SEED: u64 = 20_261_130;

fn seed() -> RngSeed {
    match std::env::var("PROTOREG_PROPTEST_SEED")
        .as_deref()
        .map(str::trim)
    {
        Ok("random") => RngSeed::Random,
        Ok(n) if !n.is_empty() => RngSeed::Fixed(
            n.parse()
                .expect("PROTOREG_PROPTEST_SEED: a number or `random`"),
        ),
        _ => RngSeed::Fixed(DEFAULT_SEED),
    }
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        rng_seed: seed(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        max_shrink_iters: 2_000,
        ..Config::default()
    })
}

/// Run `test` over `strategy`, failing the Rust test with proptest's report, and print the
/// count and the time (shown with `--nocapture`).
fn check<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let started = Instant::now();
    let mut r = runner();
    let n = r.config().cases;
    if let Err(e) = r.run(&strategy, test) {
        panic!("{name}: {e}");
    }
    eprintln!("{name}: {n} cases in {:.2?}", started.elapsed());
}

fn repo_file(rel: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

// ---------------------------------------------------------------------------------------
// Text inputs: arbitrary text, token soup in the file's own syntax, and mutations of a real
// file (lines dropped, repeated, swapped, re-indented, truncated, tokens spliced in).

#[derive(Debug, Clone)]
enum Edit {
    DropLine(usize),
    RepeatLine(usize),
    SwapLines(usize, usize),
    Indent(usize, usize),
    Dedent(usize),
    Insert(usize, String),
    ReplaceChar(usize, char),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let i = any::<usize>();
    prop_oneof![
        i.prop_map(Edit::DropLine),
        i.prop_map(Edit::RepeatLine),
        (i, i).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (i, 1usize..9).prop_map(|(a, n)| Edit::Indent(a, n)),
        i.prop_map(Edit::Dedent),
        (i, "(?s).{0,12}").prop_map(|(a, s)| Edit::Insert(a, s)),
        (i, any::<char>()).prop_map(|(a, c)| Edit::ReplaceChar(a, c)),
        i.prop_map(Edit::Truncate),
    ]
}

fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = seed.lines().map(str::to_string).collect();
    let mut text;
    for e in edits {
        let n = lines.len().max(1);
        match e {
            Edit::DropLine(a) if !lines.is_empty() => {
                lines.remove(a % n);
            }
            Edit::RepeatLine(a) if !lines.is_empty() => {
                let l = lines[a % n].clone();
                lines.insert(a % n, l);
            }
            Edit::SwapLines(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Edit::Indent(a, k) if !lines.is_empty() => {
                let l = &mut lines[a % n];
                *l = format!("{}{l}", " ".repeat(*k));
            }
            Edit::Dedent(a) if !lines.is_empty() => {
                let l = &mut lines[a % n];
                *l = l.trim_start().to_string();
            }
            Edit::Insert(a, _) | Edit::Truncate(a) if !lines.is_empty() => {
                text = lines.join("\n");
                let mut at = a % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match e {
                    Edit::Insert(_, s) => text.insert_str(at, s),
                    _ => text.truncate(at),
                }
                lines = text.lines().map(str::to_string).collect();
            }
            Edit::ReplaceChar(a, c) if !lines.is_empty() => {
                text = lines.join("\n");
                let chars: Vec<char> = text.chars().collect();
                if !chars.is_empty() {
                    let mut chars = chars;
                    let at = a % chars.len();
                    chars[at] = *c;
                    text = chars.into_iter().collect();
                    lines = text.lines().map(str::to_string).collect();
                }
            }
            _ => {}
        }
    }
    lines.join("\n")
}

/// Text of `tokens` joined at random: the shapes a reader of this syntax must survive.
fn soup(tokens: &'static [&'static str], most: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(tokens), 0..most).prop_map(|v| v.concat())
}

/// Text for a reader seeded with `seed` (a file it reads): arbitrary, soup or mutation.
fn text_inputs(seed: String, tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        1 => "(?s).{0,300}",
        1 => prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        3 => soup(tokens, 200),
        5 => prop::collection::vec(edit(), 1..6).prop_map(move |edits| apply(&seed, &edits)),
    ]
}

/// An error of bad input in a file: exit 2, with a hint or the file's name and line.
fn input_error(e: &Error) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.exit_code(), 2, "not an input error: {}", e);
    let text = e.to_string();
    prop_assert!(text.contains("hint:"), "no hint: {}", text);
    prop_assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "raw control characters in: {:?}",
        text
    );
    Ok(())
}

const YAML_TOKENS: &[&str] = &[
    "\n",
    "\n",
    "\n  ",
    "\n    ",
    "  ",
    " ",
    ": ",
    ":",
    "- ",
    "-",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "\"",
    "'",
    "#",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "!tag ",
    "|",
    ">",
    "---",
    "...",
    "? ",
    "~",
    "null",
    "true",
    "yes",
    "1",
    "-1",
    "1.10",
    "1e999",
    ".nan",
    "0x1f",
    "99999999999999999999",
    "\"\\u0000\"",
    "\"\\e[31m\"",
    "primary_registry",
    "backup_registries",
    "url",
    "namespace",
    "auth_required",
    "plain_http",
    "auth",
    "username_env",
    "publishing",
    "parallel_uploads",
    "retries",
    "tool_sources",
    "protoc",
    "buf",
    "platforms",
    "repositories",
    "tools",
    "path",
    "retention_days",
    "cache",
    "local_cache_dir",
    "max_cache_size_gb",
    "security",
    "audit_log",
    "bundles",
    "\"oras.example:5000\"",
    "\"http://u:p@h\"",
    "\"~/\"",
    "é",
    "\u{1b}",
    "\t",
];

#[test]
fn registry_yaml_is_read_or_refused_with_exit_2() {
    let seed = repo_file("tests/fixtures/seed-registry.yaml");
    let file = Path::new("registry.yaml");
    protoreg::config::Config::parse(file, &seed).expect("the seed example loads");
    check("registry.yaml", text_inputs(seed, YAML_TOKENS), |text| {
        match protoreg::config::Config::parse(file, &text) {
            Ok(_) => Ok(()),
            Err(e) => input_error(&e),
        }
    });
}

#[test]
fn registry_yaml_nesting_and_aliases_are_bounded() {
    // Not random: the two classic YAML bombs, far past what generation reaches.
    let file = Path::new("registry.yaml");
    for text in [
        format!("a: {}{}", "[".repeat(50_000), "]".repeat(50_000)),
        format!("a: {}", "{a: ".repeat(50_000)),
        format!("{}x", "- ".repeat(50_000)),
        {
            let mut t = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n".to_string();
            for i in 1..30 {
                let p = format!("*a{}", i - 1);
                t.push_str(&format!("a{i}: &a{i} [{}]\n", [p.as_str(); 10].join(", ")));
            }
            t
        },
    ] {
        let started = Instant::now();
        match protoreg::config::Config::parse(file, &text) {
            Ok(_) => {}
            Err(e) => input_error(&e).unwrap(),
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "{:?}",
            &text[..text.len().min(60)]
        );
    }
}

const STARLARK_TOKENS: &[&str] = &[
    "\n",
    "\n",
    "    ",
    " ",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ", ",
    ":",
    ": ",
    "=",
    " = ",
    "\"",
    "'",
    "\"\"\"",
    "\\",
    "#",
    "None",
    "True",
    "False",
    "PINS",
    "TOOLS",
    "PLATFORMS",
    "PROVENANCE",
    "\"protoc\"",
    "\"buf\"",
    "\"36.2\"",
    "\"default\"",
    "\"linux-x86_64\"",
    "\"zip\"",
    "\"tar.gz\"",
    "\"raw\"",
    "\"layout\"",
    "0",
    "1",
    "-1",
    "123456",
    "99999999999999999999999",
    "0x10",
    "1.5",
    "+",
    "\"https://example.invalid/x.zip\"",
    "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"",
    "\"\\x00\"",
    "\"\\u001b\"",
    "é",
    "\u{1b}",
    "\t",
    "\r",
];

#[test]
fn pins_are_read_or_refused_with_exit_2_and_render_back_the_same() {
    let seed = repo_file("toolchains/pins.bzl");
    let path = Path::new("pins.bzl");
    protoreg::maintain::pins::Pins::parse(&seed, path).expect("the shipped pins load");
    check("pins.bzl", text_inputs(seed, STARLARK_TOKENS), |text| {
        match protoreg::maintain::pins::Pins::parse(&text, path) {
            // What is accepted is what `bump` writes back, unchanged by a second round.
            Ok(pins) => {
                let rendered = pins.render();
                let again = protoreg::maintain::pins::Pins::parse(&rendered, path);
                prop_assert!(
                    again.is_ok(),
                    "rendered pins do not load: {:?}",
                    again.err()
                );
                let again = again.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&again, &pins);
                prop_assert_eq!(again.render(), rendered);
                Ok(())
            }
            Err(e) => input_error(&e),
        }
    });
}

#[test]
fn pins_nesting_is_bounded() {
    let path = Path::new("pins.bzl");
    for text in [
        format!("PINS = {}{}", "[".repeat(50_000), "]".repeat(50_000)),
        format!("PINS = {}", "{\"a\": ".repeat(50_000)),
        format!("PINS = {}", "(".repeat(50_000)),
    ] {
        let e = protoreg::maintain::pins::Pins::parse(&text, path).unwrap_err();
        input_error(&e).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// The extractor: archives written byte by byte here (tar and zip writers refuse the names
// an attacker would use), with hostile names, symlinks, duplicates and lying sizes.

#[derive(Debug, Clone)]
enum Kind {
    /// Contents, an exec bit, and a size to declare instead of the real one.
    File(Vec<u8>, bool, Option<u64>),
    Dir,
    Symlink(String),
    Hardlink(String),
    Fifo,
}

#[derive(Debug, Clone)]
struct Member {
    name: String,
    kind: Kind,
}

/// Where an escape would land: `ESCAPE` in the directory holding the output directory.
const ESCAPE: &str = "escaped";
/// Stands for the sandbox's absolute path in generated names, filled in per case.
const ABS: &str = "@SANDBOX@";

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["a", "b", "bin", "include", "protoc", "x.txt"])
            .prop_map(str::to_string),
        2 => Just("..".to_string()),
        1 => Just(".".to_string()),
        1 => Just(String::new()),
        1 => Just(ESCAPE.to_string()),
        1 => prop::sample::select(vec!["C:", "x\\..\\y", "\u{1b}[31m", "é", "a\u{0}b", "\u{202e}x"])
            .prop_map(str::to_string),
        1 => "[a-z]{90,160}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", "", "", "", "/", "./", "../", "ABS/", "//"]),
        prop::collection::vec(component(), 1..5),
        any::<bool>(),
    )
        .prop_map(|(lead, parts, slash)| {
            let lead = if lead == "ABS/" {
                format!("{ABS}/")
            } else {
                lead.to_string()
            };
            format!("{lead}{}{}", parts.join("/"), if slash { "/" } else { "" })
        })
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => (
            prop::collection::vec(any::<u8>(), 0..64),
            any::<bool>(),
            prop_oneof![
                8 => Just(None),
                1 => Just(Some(u64::from(u32::MAX))),
                1 => Just(Some(8u64 << 30)),
                1 => (0u64..100).prop_map(Some),
            ],
        )
            .prop_map(|(d, x, s)| Kind::File(d, x, s)),
        2 => Just(Kind::Dir),
        3 => name().prop_map(Kind::Symlink),
        1 => name().prop_map(Kind::Hardlink),
        1 => Just(Kind::Fifo),
    ]
}

fn members() -> impl Strategy<Value = Vec<Member>> {
    prop::collection::vec(
        (name(), kind()).prop_map(|(name, kind)| Member { name, kind }),
        0..8,
    )
    .prop_flat_map(|v| {
        // Repeat some members' names (duplicates, as a file and a directory, ...).
        let n = v.len();
        (
            Just(v),
            prop::collection::vec((any::<prop::sample::Index>(), kind()), 0..3.min(n + 1)),
        )
    })
    .prop_map(|(mut v, dups)| {
        if !v.is_empty() {
            for (i, kind) in dups {
                let name = v[i.index(v.len())].name.clone();
                v.push(Member { name, kind });
            }
        }
        v
    })
}

#[derive(Debug, Clone)]
struct Case {
    format: Format,
    members: Vec<Member>,
    strip_prefix: Option<String>,
    executables: Vec<String>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(Format::TarGz), Just(Format::Zip)],
        members(),
        prop::sample::select(vec![None, None, None, Some("a"), Some("a/b"), Some("..")]),
        prop::sample::select(vec![
            vec![],
            vec![],
            vec!["bin/protoc"],
            vec!["a"],
            vec!["a/b", "bin/protoc"],
        ]),
    )
        .prop_map(|(format, members, strip, exes)| Case {
            format,
            members,
            strip_prefix: strip.map(str::to_string),
            executables: exes.into_iter().map(str::to_string).collect(),
        })
}

fn with_sandbox(name: &str, sandbox: &Path) -> String {
    name.replace(ABS, &sandbox.display().to_string())
}

/// A tar of `members`, headers written field by field (the tar crate's builder refuses
/// `..` and absolute names); GNU long-name records for names past 100 bytes.
fn tar_bytes(members: &[Member], sandbox: &Path) -> Vec<u8> {
    fn header(name: &[u8], kind: u8, size: u64, mode: u32, link: &[u8]) -> [u8; 512] {
        let mut h = [0u8; 512];
        let n = name.len().min(100);
        h[..n].copy_from_slice(&name[..n]);
        let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
            let s = format!("{:0width$o}", v, width = len - 1);
            let s = s.as_bytes();
            if s.len() < len {
                h[at..at + s.len()].copy_from_slice(s);
            } else {
                // Too large for octal: the GNU base-256 form.
                h[at] = 0x80;
                let be = v.to_be_bytes();
                h[at + len - 8..at + len].copy_from_slice(&be);
            }
        };
        octal(&mut h, 100, 8, u64::from(mode));
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, size);
        octal(&mut h, 136, 12, 0);
        h[156] = kind;
        let l = link.len().min(100);
        h[157..157 + l].copy_from_slice(&link[..l]);
        h[257..265].copy_from_slice(b"ustar  \0");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        h
    }
    fn pad(out: &mut Vec<u8>) {
        while !out.len().is_multiple_of(512) {
            out.push(0);
        }
    }
    let mut out = Vec::new();
    for m in members {
        let name = with_sandbox(&m.name, sandbox).into_bytes();
        let (kind, data, mode, link): (u8, &[u8], u32, Vec<u8>) = match &m.kind {
            Kind::File(d, x, _) => (b'0', d, if *x { 0o755 } else { 0o644 }, vec![]),
            Kind::Dir => (b'5', &[], 0o755, vec![]),
            Kind::Symlink(t) => (b'2', &[], 0o777, with_sandbox(t, sandbox).into_bytes()),
            Kind::Hardlink(t) => (b'1', &[], 0o644, with_sandbox(t, sandbox).into_bytes()),
            Kind::Fifo => (b'6', &[], 0o644, vec![]),
        };
        if name.len() > 100 {
            out.extend_from_slice(&header(
                b"././@LongLink",
                b'L',
                name.len() as u64 + 1,
                0o644,
                &[],
            ));
            out.extend_from_slice(&name);
            out.push(0);
            pad(&mut out);
        }
        let size = match &m.kind {
            Kind::File(d, _, declared) => declared.unwrap_or(d.len() as u64),
            _ => 0,
        };
        out.extend_from_slice(&header(&name, kind, size, mode, &link));
        out.extend_from_slice(data);
        pad(&mut out);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip of `members`, stored, written record by record (the zip crate's writer refuses
/// duplicate names): unix modes in the external attributes, as Info-ZIP writes them.
fn zip_bytes(members: &[Member], sandbox: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let le16 = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let le32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    for m in members {
        let mut name = with_sandbox(&m.name, sandbox);
        let (data, mode, declared): (Vec<u8>, u32, Option<u64>) = match &m.kind {
            Kind::File(d, x, s) => (d.clone(), if *x { 0o100755 } else { 0o100644 }, *s),
            Kind::Dir => {
                if !name.ends_with('/') {
                    name.push('/');
                }
                (vec![], 0o040755, None)
            }
            Kind::Symlink(t) | Kind::Hardlink(t) => {
                (with_sandbox(t, sandbox).into_bytes(), 0o120777, None)
            }
            Kind::Fifo => (vec![], 0o010644, None),
        };
        let name = name.into_bytes();
        let crc = crc32(&data);
        let usize_ = declared.map_or(data.len() as u32, |d| d.min(u64::from(u32::MAX)) as u32);
        let offset = out.len() as u32;
        le32(&mut out, 0x0403_4b50);
        le16(&mut out, 20);
        le16(&mut out, 0x0800);
        le16(&mut out, 0);
        le16(&mut out, 0);
        le16(&mut out, 0x21);
        le32(&mut out, crc);
        le32(&mut out, data.len() as u32);
        le32(&mut out, usize_);
        le16(&mut out, name.len() as u16);
        le16(&mut out, 0);
        out.extend_from_slice(&name);
        out.extend_from_slice(&data);
        le32(&mut central, 0x0201_4b50);
        le16(&mut central, (3 << 8) | 20);
        le16(&mut central, 20);
        le16(&mut central, 0x0800);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le16(&mut central, 0x21);
        le32(&mut central, crc);
        le32(&mut central, data.len() as u32);
        le32(&mut central, usize_);
        le16(&mut central, name.len() as u16);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le16(&mut central, 0);
        le32(&mut central, mode << 16);
        le32(&mut central, offset);
        central.extend_from_slice(&name);
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    le32(&mut out, 0x0605_4b50);
    le16(&mut out, 0);
    le16(&mut out, 0);
    le16(&mut out, members.len() as u16);
    le16(&mut out, members.len() as u16);
    le32(&mut out, cd_size);
    le32(&mut out, cd_offset);
    le16(&mut out, 0);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// `rel` (relative to `base`, a directory inside `root`) followed lexically: still inside?
fn lexically_inside(at: &[std::ffi::OsString], target: &Path) -> bool {
    let mut at = at.to_vec();
    for c in target.components() {
        match c {
            Component::Normal(n) => at.push(n.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                if at.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Every path under `sandbox` is the archive or under `out`; every symlink under `out`
/// resolves (or, dangling, points lexically) inside `out`.
fn confined(sandbox: &Path, out: &Path) -> Result<(), String> {
    let out_real = fs::canonicalize(out).ok();
    let mut stack = vec![sandbox.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if dir == sandbox && (p == out || e.file_name() == "archive") {
                if p == out {
                    stack.push(p);
                }
                continue;
            }
            if !p.starts_with(out) {
                return Err(format!("`{}` was written outside the output", p.display()));
            }
            let meta = fs::symlink_metadata(&p).map_err(|e| e.to_string())?;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&p).map_err(|e| e.to_string())?;
                match (fs::canonicalize(&p), &out_real) {
                    (Ok(real), Some(o)) if !real.starts_with(o) => {
                        return Err(format!(
                            "symlink `{}` -> `{}` resolves outside the output",
                            p.display(),
                            target.display()
                        ))
                    }
                    (Ok(_), _) => {}
                    (Err(_), _) => {
                        let rel = p.strip_prefix(out).unwrap_or(&p);
                        let parent: Vec<_> = rel
                            .parent()
                            .map(|d| d.iter().map(|c| c.to_os_string()).collect())
                            .unwrap_or_default();
                        if !lexically_inside(&parent, &target) {
                            return Err(format!(
                                "dangling symlink `{}` -> `{}` points outside the output",
                                p.display(),
                                target.display()
                            ));
                        }
                    }
                }
            } else if meta.is_dir() {
                stack.push(p);
            }
        }
    }
    Ok(())
}

/// Extract `c` in a fresh sandbox and check it; `Ok(true)` when it was refused.
fn run_case(c: &Case) -> Result<bool, TestCaseError> {
    let sandbox = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let root = sandbox.path();
    let out = root.join("out");
    fs::create_dir(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let layout = Layout {
        format: c.format,
        strip_prefix: c.strip_prefix.clone(),
        executables: c.executables.clone(),
    };
    let bytes = match c.format {
        Format::Zip => zip_bytes(&c.members, root),
        _ => gzip(&tar_bytes(&c.members, root)),
    };
    let archive = root.join("archive");
    fs::write(&archive, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let result = extract::extract(&archive, &layout, &out);
    if let Err(why) = confined(root, &out) {
        return Err(TestCaseError::fail(format!("{why} (result: {result:?})")));
    }
    match result {
        Ok(()) => Ok(false),
        // Refused as an archive that is not safe or not well formed (exit 1), or as bad
        // input (exit 2): never a failure of the machine (an I/O error), which would send an
        // operator looking for a disk problem.
        Err(Error::UnsafeArchive { .. }) | Err(Error::Input { .. }) => Ok(true),
        Err(e) => Err(TestCaseError::fail(format!(
            "refused, but not as an unsafe archive or bad input: {e}"
        ))),
    }
}

#[test]
fn extraction_stays_inside_the_output_or_is_refused() {
    check("extract", case(), |c| run_case(&c).map(|_| ()));
}

/// Fixed cases the generator may take long to reach: each must be refused.
#[test]
fn known_escapes_are_refused() {
    let file = |name: &str| Member {
        name: name.into(),
        kind: Kind::File(b"x".to_vec(), false, None),
    };
    let link = |name: &str, to: &str| Member {
        name: name.into(),
        kind: Kind::Symlink(to.into()),
    };
    let cases: Vec<Vec<Member>> = vec![
        vec![file("../escaped")],
        vec![file(&format!("{ABS}/escaped"))],
        vec![link("l", "..")],
        vec![link("l", "../escaped"), file("l/x")],
        vec![link("d", "."), link("d/up", ".."), file("d/up/escaped")],
        vec![link("up", "a/.."), link("a", ".."), file("ok")],
        vec![file("a"), file("./a")],
    ];
    for members in cases {
        for format in [Format::TarGz, Format::Zip] {
            let c = Case {
                format,
                members: members.clone(),
                strip_prefix: None,
                executables: vec![],
            };
            let refused = run_case(&c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert!(refused, "accepted: {c:?}");
        }
    }
}

/// Found by the property above: a member under a member that is a file (`a`, then `a/b`) is
/// a malformed archive, to be refused as one, not reported as a failure of the disk.
#[test]
fn a_member_under_a_file_is_refused_as_an_unsafe_archive() {
    let file = |name: &str| Member {
        name: name.into(),
        kind: Kind::File(b"x".to_vec(), false, None),
    };
    for members in [
        vec![file("a"), file("a/b")],
        vec![
            file("a"),
            Member {
                name: "a/d/".into(),
                kind: Kind::Dir,
            },
        ],
    ] {
        for format in [Format::TarGz, Format::Zip] {
            let c = Case {
                format,
                members: members.clone(),
                strip_prefix: None,
                executables: vec![],
            };
            let refused = run_case(&c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert!(refused, "accepted: {c:?}");
        }
    }
}
