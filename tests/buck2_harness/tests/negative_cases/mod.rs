//! The negative cases, shared by `negative.rs` (the harness must refuse each) and
//! `real_buck2.rs` (real Buck2 must refuse each): one table, so both are held to the same
//! words by construction.
//!
//! Each case is the fixture package `fixtures/repo/bad/<case>`, built as `//bad/<case>:t` for
//! the target platform `prelude//platforms:linux-x86_64`, with the fragments that the error
//! must contain: Buck2's own text. Where Buck2 prints something the harness cannot reproduce
//! (the `#<hash>` of a configuration, a source location), the fragment stops before it.

/// The target platform of every case.
pub const PLATFORM: &str = "prelude//platforms:linux-x86_64";

pub struct Case {
    /// The package `bad/<name>`; the target is `//bad/<name>:t`.
    pub name: &'static str,
    /// What Buck2's error says; every fragment must appear in it.
    pub reason: &'static [&'static str],
}

const fn case(name: &'static str, reason: &'static [&'static str]) -> Case {
    Case { name, reason }
}

pub const CASES: &[Case] = &[
    // `select()` resolution.
    case(
        "ambiguous_select",
        &["Both select keys `prelude//os:linux` and `prelude//cpu:x86_64` match the configuration, but neither is more specific and they have different values"],
    ),
    case(
        "no_match_select",
        &[
            "None of 1 conditions matched configuration `prelude//platforms:linux-x86_64",
            "and no default was set",
        ],
    ),
    // `ctx.actions.run`.
    case(
        "bazel_run",
        &["Missing positional-only parameter `arguments` for call to `run`"],
    ),
    case(
        "bad_category",
        &["Invalid category `Gen-Code`. Must be a snake_cased identifier consisting of lowercase alphanumeric characters, e.g. `cxx_compile`."],
    ),
    case(
        "no_outputs",
        &["expected at least one output artifact, did not get any"],
    ),
    case(
        "dup_category",
        &["Analysis produced multiple actions with category `gen` and at least one of them had no identifier. Add an identifier to these actions to disambiguate them"],
    ),
    case(
        "dup_identifier",
        &["Action category `gen` contains duplicate identifier `x`; category-identifier pairs must be unique within a rule"],
    ),
    case(
        "bad_sha",
        &["Invalid digest for `sha256` argument, expected length of 64 but got 6, digest `abc123`"],
    ),
    // Declared outputs.
    case(
        // `out` without `.as_output()` is an input, so nothing binds it.
        "unbound",
        &[
            "Artifact must be bound by now. If you are intending to use this artifact as the output of `run`, are you missing an `.as_output()` call?",
            "Artifact: (root//bad/unbound:t (prelude//platforms:linux-x86_64",
        ],
    ),
    case(
        "declared_never_used",
        &[
            "Artifact must be bound by now.",
            "Artifact: (root//bad/declared_never_used:t (prelude//platforms:linux-x86_64",
            ")/forgotten.txt",
        ],
    ),
    case(
        "conflicting_outputs",
        &["Multiple artifacts and/or metadata files are declared at conflicting output locations. Output path `dir/file` conflicts with the following output paths: [\"dir declared at "],
    ),
    // `cmd_args`.
    case(
        "hidden_method",
        &["Object of type `cmd_args` has no attribute `hidden`"],
    ),
    case(
        "not_cmd_args",
        &["Value `--name=x` of type `string` does not match the type annotation `cmd_args` for return type"],
    ),
    // Providers.
    case(
        "no_default_info",
        &["did not receive a `DefaultInfo` provider"],
    ),
    case(
        "duplicate_provider",
        &["provider of type `DefaultInfo` specified twice"],
    ),
    case(
        "bad_field_type",
        &["Value for parameter `name` mismatches type `str`: `42`"],
    ),
    case(
        "missing_provider",
        &[
            "Attribute requires a dep that provides `RunInfo`, but it was not found on `root//protos:base (prelude//platforms:linux-x86_64",
            "Found these providers: DefaultInfo, SrcsInfo",
        ],
    ),
    // Toolchains.
    case(
        "toolchain_as_dep",
        &["Target `root//toolchains:gen` was used not as a toolchain_dep, but is a toolchain rule"],
    ),
    case(
        "plain_as_toolchain",
        &["Target `root//tools:gen` was used as a toolchain_dep, but is not a toolchain rule"],
    ),
    case(
        // The seed's `native.toolchain_rule()`: no such thing in Buck2.
        "native_toolchain_rule",
        &["Object of type `struct` has no attribute `toolchain_rule`"],
    ),
    // Loading: `.bzl` files.
    case(
        "load_without_at",
        &["Unable to parse import spec. Expected format `(@<cell>)//package/name:filename.bzl` or `:filename.bzl`. Got `root//bad/load_without_at:defs.bzl`"],
    ),
    case(
        "option_default",
        &["`attrs.option` `default` parameter must be `None` or absent, got `\"x\"`"],
    ),
    case(
        "old_annotation",
        &["string literal expression is not allowed in type expression"],
    ),
    case(
        "undefined_name",
        &["Variable `ToolchainInfo` not found"],
    ),
    case(
        "unassigned_rule",
        &["Rule defined in `root//bad/unassigned_rule/defs.bzl` must be assigned to a variable, e.g. `my_rule = rule(...)`"],
    ),
    // Loading: BUCK files.
    case("def_in_buck", &["`def` is not allowed in this dialect"]),
    case(
        "tabs",
        &["Tabs are not allowed in Buck files: `root//bad/tabs:BUCK`"],
    ),
];

/// The fragments of `case` missing from `text` (empty when the error is Buck2's).
pub fn missing<'a>(case: &'a Case, text: &str) -> Vec<&'a str> {
    case.reason
        .iter()
        .copied()
        .filter(|f| !text.contains(f))
        .collect()
}

/// The packages under `fixtures/repo/bad`, sorted: every one must be a case, and every case one.
pub fn fixture_packages(repo: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo.join("bad"))
        .expect("fixtures/repo/bad")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .into_string()
                .unwrap()
        })
        .collect();
    names.sort();
    names
}

/// Check that the table and the fixture directories name the same cases.
pub fn assert_table_matches_fixtures(repo: &std::path::Path) {
    let mut table: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    table.sort();
    let dirs = fixture_packages(repo);
    assert_eq!(
        table, dirs,
        "the cases in tests/negative_cases/mod.rs and the packages under fixtures/repo/bad differ"
    );
}
