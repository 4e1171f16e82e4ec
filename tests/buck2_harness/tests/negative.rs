//! The negative suite: each fixture is something Buck2 refuses, and the harness must refuse it
//! with Buck2's reason. These are what prove the harness can fail.

use std::path::PathBuf;

use buck2_harness::Harness;

fn refuse(case: &str, want: &str) {
    let h = Harness::open(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/repo")).unwrap();
    let p = "prelude//platforms:linux-x86_64";
    let target = format!("//bad/{case}:t");
    match h.analyze(&target, p, p) {
        Ok(_) => panic!("`{target}` was accepted; Buck2 refuses it with: {want}"),
        Err(e) => {
            let msg = format!("{e:?}");
            assert!(
                msg.contains(want),
                "`{target}` was refused for another reason.\nwant: {want}\ngot: {msg}"
            );
        }
    }
}

#[test]
fn bazel_style_run_is_refused() {
    refuse(
        "bazel_run",
        "Missing positional-only parameter `arguments` for call to `run`",
    );
}

#[test]
fn unbound_output_is_refused() {
    // `out` without `.as_output()` is an input, so nothing binds it.
    refuse("unbound", "are you missing an `.as_output()` call?");
}

#[test]
fn declared_but_unused_output_is_refused() {
    refuse("declared_never_used", "Artifact must be bound by now");
}

#[test]
fn missing_default_info_is_refused() {
    refuse(
        "no_default_info",
        "did not receive a `DefaultInfo` provider",
    );
}

#[test]
fn duplicate_provider_is_refused() {
    refuse(
        "duplicate_provider",
        "provider of type `DefaultInfo` specified twice",
    );
}

#[test]
fn toolchain_rule_as_plain_dep_is_refused() {
    refuse(
        "toolchain_as_dep",
        "Target `root//toolchains:gen` was used not as a toolchain_dep, but is a toolchain rule",
    );
}

#[test]
fn plain_rule_as_toolchain_dep_is_refused() {
    refuse(
        "plain_as_toolchain",
        "Target `root//tools:gen` was used as a toolchain_dep, but is not a toolchain rule",
    );
}

#[test]
fn load_without_at_is_refused() {
    refuse(
        "load_without_at",
        "Unable to parse import spec. Expected format `(@<cell>)//package/name:filename.bzl`",
    );
}

#[test]
fn option_with_non_none_default_is_refused() {
    refuse(
        "option_default",
        "`attrs.option` `default` parameter must be `None` or absent, got `\"x\"`",
    );
}

#[test]
fn duplicate_category_without_identifiers_is_refused() {
    refuse("dup_category", "Analysis produced multiple actions with category `gen` and at least one of them had no identifier");
}

#[test]
fn duplicate_identifier_is_refused() {
    refuse(
        "dup_identifier",
        "Action category `gen` contains duplicate identifier `x`",
    );
}

#[test]
fn bad_category_is_refused() {
    refuse("bad_category", "Invalid category `Gen-Code`");
}

#[test]
fn old_style_annotation_is_refused() {
    refuse("old_annotation", "context");
}

#[test]
fn ambiguous_select_is_refused() {
    refuse(
        "ambiguous_select",
        "Both select keys `prelude//os:linux` and `prelude//cpu:x86_64` match the configuration, but neither is more specific",
    );
}

#[test]
fn select_without_match_or_default_is_refused() {
    refuse("no_match_select", "None of 1 conditions matched configuration `prelude//platforms:linux-x86_64` and no default was set");
}

#[test]
fn short_checksum_is_refused() {
    refuse(
        "bad_sha",
        "Invalid sha256 digest: expected 64 hex characters",
    );
}

#[test]
fn run_without_outputs_is_refused() {
    refuse(
        "no_outputs",
        "expected at least one output artifact, did not get any",
    );
}

#[test]
fn def_in_buck_file_is_refused() {
    refuse("def_in_buck", "def");
}

#[test]
fn tabs_are_refused() {
    refuse("tabs", "tabs are not allowed");
}

#[test]
fn undefined_name_is_refused_at_load() {
    refuse(
        "undefined_name",
        "Use of undefined variable `ToolchainInfo`",
    );
}

#[test]
fn seed_native_toolchain_rule_is_refused() {
    refuse("native_toolchain_rule", "has no attribute `toolchain_rule`");
}

#[test]
fn removed_hidden_method_is_refused() {
    refuse("hidden_method", "`cmd_args.hidden()` no longer exists");
}

#[test]
fn missing_required_provider_is_refused() {
    refuse(
        "missing_provider",
        "Required provider `RunInfo` was not found on `root//protos:base`",
    );
}

#[test]
fn provider_field_type_is_checked() {
    refuse(
        "bad_field_type",
        "does not match the type annotation `str` for field `name` of `NamedInfo`",
    );
}

#[test]
fn conflicting_output_paths_are_refused() {
    refuse(
        "conflicting_outputs",
        "Output path `dir/file` conflicts with the following output paths",
    );
}

#[test]
fn unassigned_rule_is_refused() {
    refuse(
        "unassigned_rule",
        "must be assigned to a variable, e.g. `my_rule = rule(...)`",
    );
}

#[test]
fn a_string_returned_as_cmd_args_is_refused() {
    refuse(
        "not_cmd_args",
        "does not match the type annotation `cmd_args` for return type",
    );
}
