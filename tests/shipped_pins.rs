//! The shipped pins file: it parses, it is exactly what protoreg's own writer produces (so a
//! bump's diff is only the bumped lines), every value is a 64-hex sha256 (with a size when
//! upstream states one) that does not look made up, every version names the public sources
//! its values were read in (repository, path, commit), every default version is pinned, and
//! the READMEs say what is pinned.

use std::path::Path;

use protoreg::maintain::pins::Pins;

fn shipped() -> (String, Pins) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("toolchains/pins.bzl");
    let text = std::fs::read_to_string(&path).unwrap();
    let pins = Pins::parse(&text, &path).unwrap();
    (text, pins)
}

#[test]
fn shipped_pins_are_canonical_and_complete() {
    let (text, pins) = shipped();
    assert_eq!(
        pins.render(),
        text,
        "toolchains/pins.bzl is not in protoreg's canonical form"
    );
    assert!(!pins.pins.is_empty());
    for (tool, versions) in &pins.pins {
        protoreg::maintain::tools::by_name(tool).unwrap();
        assert!(pins.defaults.contains_key(tool), "{tool} has no default");
        for (version, platforms) in versions {
            assert!(
                pins.provenance
                    .get(tool)
                    .is_some_and(|p| p.contains_key(version)),
                "{tool} {version}: no provenance"
            );
            assert!(!platforms.is_empty());
            for (platform, pin) in platforms {
                assert_eq!(pin.sha256.hex().len(), 64);
                assert!(pin.sha256.hex().bytes().all(|b| b.is_ascii_hexdigit()));
                assert_ne!(pin.size, Some(0), "{tool} {version} {platform}: size 0");
                assert!(pin.url.starts_with("https://"), "{}", pin.url);
                let (_, got) = pins.get(tool, Some(version), platform).unwrap();
                assert_eq!(got, pin);
                // The URL is the catalogue's asset name for that platform.
                let t = protoreg::maintain::tools::by_name(tool).unwrap();
                let p = protoreg::platform::by_name(platform).unwrap();
                let asset = t.asset(version, p, "https://github.com").unwrap();
                assert_eq!(pin.url, asset.url);
                assert_eq!(pin.format, asset.format);
            }
        }
    }
}

/// `owner/repo path@commit` with a full 40-hex commit: where a value was read.
fn cited_sources(provenance: &str) -> Vec<String> {
    let words: Vec<&str> = provenance.split_whitespace().collect();
    let mut cited = Vec::new();
    for pair in words.windows(2) {
        let (repo, path_at) = (pair[0], pair[1]);
        let Some((path, commit)) = path_at.split_once('@') else {
            continue;
        };
        let commit = commit.trim_end_matches([',', ';', ')', '.']);
        let repo_ok = repo.split('/').count() == 2 && !repo.starts_with("http");
        let commit_ok = commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit());
        if repo_ok && !path.is_empty() && commit_ok {
            cited.push(format!("{repo} {path}@{commit}"));
        }
    }
    cited
}

#[test]
fn every_pinned_version_names_its_public_sources() {
    let (_, pins) = shipped();
    for (tool, versions) in &pins.pins {
        for version in versions.keys() {
            let text = &pins.provenance[tool][version];
            assert!(
                !cited_sources(text).is_empty(),
                "{tool} {version}: PROVENANCE names no `owner/repo path@<40-hex commit>`: {text}"
            );
        }
    }
    // The reader itself: a citation without a full commit is not one.
    assert!(cited_sources("read in owner/repo file.star@cbe6fa6f").is_empty());
    assert_eq!(
        cited_sources("from a/b c/d.hcl@f0517fd7532fc6adfd910cfba3ef2b4c59f662db, and"),
        ["a/b c/d.hcl@f0517fd7532fc6adfd910cfba3ef2b4c59f662db"]
    );
}

/// Why a digest looks typed rather than read: too few distinct digits, a long run of one
/// digit, or a counting sequence (also every other digit, as in `f6a7b8c9d0e1`).
fn looks_made_up(hex: &str) -> Option<String> {
    let b = hex.as_bytes();
    let distinct = b.iter().collect::<std::collections::BTreeSet<_>>().len();
    if distinct < 10 {
        return Some(format!("only {distinct} distinct hex digits"));
    }
    let value = |c: u8| (c as char).to_digit(16).unwrap_or(99) as i32;
    for stride in [1, 2] {
        for start in 0..b.len() {
            let seq: Vec<i32> = b[start..]
                .iter()
                .step_by(stride)
                .take(6)
                .map(|&c| value(c))
                .collect();
            if seq.len() < 6 {
                break;
            }
            for step in [0, 1, -1] {
                let counting = |m: i32| {
                    seq.windows(2)
                        .all(|w| (w[1] - w[0] - step).rem_euclid(m) == 0)
                };
                if counting(16) || counting(10) {
                    return Some(format!(
                        "`{}` at {start} counts by {step}",
                        String::from_utf8_lossy(&b[start..(start + 6 * stride).min(b.len())])
                    ));
                }
            }
        }
    }
    None
}

#[test]
fn no_shipped_digest_looks_made_up() {
    let (_, pins) = shipped();
    let mut seen = std::collections::BTreeMap::new();
    for (tool, versions) in &pins.pins {
        for (version, platforms) in versions {
            for (platform, pin) in platforms {
                let hex = pin.sha256.hex();
                assert_eq!(
                    looks_made_up(hex),
                    None,
                    "{tool} {version} {platform}: {hex}"
                );
                if let Some(other) =
                    seen.insert(hex.to_owned(), format!("{tool} {version} {platform}"))
                {
                    // Upstream can ship one file under two names (grpc-java's osx-aarch_64 is
                    // its osx-x86_64 binary); the provenance must then say so.
                    let explained = other.starts_with(&format!("{tool} {version} "))
                        && pins.provenance[tool][version].contains("has the same digest as");
                    assert!(
                        explained,
                        "{tool} {version} {platform} has the digest of {other}"
                    );
                }
            }
        }
    }
    // The detector catches what fabricated values look like.
    for fake in [
        "f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef",
        "a3f1000000c9e2b7d4a3f1c9e2b7d4a3f1c9e2b7d4a3f1c9e2b7d4a3f1c9e2b7",
    ] {
        assert!(looks_made_up(fake).is_some(), "{fake}");
    }
}

#[test]
fn every_default_version_is_pinned() {
    let (_, pins) = shipped();
    for (tool, default) in &pins.defaults {
        let pinned = pins.pins.get(tool).and_then(|v| v.get(default));
        assert!(
            pinned.is_some_and(|p| !p.is_empty()),
            "{tool}'s default {default} has no pins"
        );
    }
}

#[test]
fn the_readmes_name_what_is_pinned() {
    let want = shipped().1.markdown_table();
    for readme in ["README.md", "prelude/proto/README.md"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(readme);
        let text = std::fs::read_to_string(&path).unwrap();
        let (_, rest) = text
            .split_once("<!-- pins -->\n")
            .unwrap_or_else(|| panic!("{readme} has no `<!-- pins -->` table"));
        let (table, _) = rest.split_once("<!-- /pins -->").unwrap();
        assert_eq!(
            table, want,
            "{readme}'s table of pins differs from toolchains/pins.bzl; it should read:\n{want}"
        );
    }
}
