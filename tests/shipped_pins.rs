//! The shipped pins file: it parses, it is exactly what protoreg's own writer produces (so a
//! bump's diff is only the bumped lines), every value is a 64-hex sha256 with a size, and
//! every tool it names is pinned for every platform it lists and resolvable by `get`.

use std::path::Path;

use protoreg::pins::Pins;

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
        protoreg::tools::by_name(tool).unwrap();
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
                assert!(pin.url.starts_with("https://github.com/"), "{}", pin.url);
                let (_, got) = pins.get(tool, Some(version), platform).unwrap();
                assert_eq!(got, pin);
                // The URL is the catalogue's asset name for that platform.
                let t = protoreg::tools::by_name(tool).unwrap();
                let p = protoreg::platform::by_name(platform).unwrap();
                let asset = t.asset(version, p, "https://github.com").unwrap();
                assert_eq!(pin.url, asset.url);
                assert_eq!(pin.format, asset.format);
            }
        }
    }
}
