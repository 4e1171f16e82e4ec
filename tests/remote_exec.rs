//! Remote execution with real Buck2 and real NativeLink on loopback (NativeLink run as an
//! unprivileged user, fresh state, free ports, stopped by PID).
//!
//! - `[protobuf_re]` in `.buckconfig` is the whole configuration: the committed defaults run
//!   every action locally, and bad values are refused with the key and a hint.
//! - On scratch copies with fixture pins (loopback upstream and registry; sizes recorded by
//!   `protoreg sizes`): `buck2 build //... toolchains//...` and `buck2 test //...` on the
//!   hybrid platform in both fetch modes, and on a remote-only one in native mode. Every
//!   protoc, plugin (ES on the pinned node included), extract and test action runs on
//!   NativeLink; here only the documented ones: the copy of a protoreg given as a path, and
//!   in helper mode the fetches. After `buck2 clean`, nothing executes and nothing is
//!   fetched.
//! - A second checkout, by a user whose protoreg cache is empty, gets everything from the
//!   action cache: nothing executes and nothing is fetched.
//! - Another repository (Meta's bundled prelude, these rules as a cell, its own remote-only
//!   platform, protoreg as a target) likewise, with nothing run here at all.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use common::absent_or_empty;
use common::buck2::*;
use common::nativelink::NativeLink;
use common::user::User;

/// One Buck2 project at a time: each daemon takes a core and a few hundred MiB.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A cold build of the examples on NativeLink takes well under this here.
const BUILD_LIMIT: Duration = Duration::from_secs(600);

/// What ran in the last command, from `buck2 log what-ran`: (executor, action identity), the
/// executor being `local`, `cache` or `re(…)` as Buck2 reports it.
fn what_ran(p: &Project) -> Vec<(String, String)> {
    p.ok(&["log", "what-ran"])
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            (fields.len() >= 3).then(|| (fields[2].to_string(), fields[1].to_string()))
        })
        .collect()
}

/// `buck2 build ARGS`, bounded in time, which must succeed.
fn build(p: &Project, args: &[&str]) {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let out = p.buck2_within(&all, BUILD_LIMIT).unwrap_or_else(|| {
        panic!(
            "buck2 {} did not finish within {BUILD_LIMIT:?}",
            all.join(" ")
        )
    });
    assert!(
        out.status.success(),
        "buck2 {} failed:\n{}",
        all.join(" "),
        buck2_errors(&out)
    );
}

/// Executor kind (`re`, `cache`, `local`) by action category (the first word of what
/// `what-ran` shows in parentheses after the target), counted.
fn by_category(ran: &[(String, String)]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for (executor, identity) in ran {
        let kind = executor.split('(').next().unwrap_or("").to_string();
        let category = identity
            .rsplit_once(") (")
            .map(|(_, c)| {
                c.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(')')
            })
            .unwrap_or("")
            .to_string();
        *counts.entry((kind, category)).or_insert(0) += 1;
    }
    counts
}

/// `[protobuf_re]` settings as `.buckconfig` lines, and the executor the host's execution
/// platform gets from them (`audit providers`, analysis only).
fn host_executor(p: &Project, settings: &[&str]) -> std::process::Output {
    let mut args = vec!["audit", "providers", "prelude//platforms:execution"];
    for s in settings {
        args.extend(["-c", s]);
    }
    p.buck2(&args)
}

#[test]
fn remote_execution_is_configured_in_buckconfig_and_off_by_default() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let p = Project::as_committed();

    // As committed: everything local, no remote cache (no executor needed).
    let out = host_executor(&p, &[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", buck2_errors(&out));
    assert!(
        text.contains("executor: Local(") && !text.contains("RemoteEnabled"),
        "{text}"
    );

    // Hybrid, with the default properties NativeLink's worker matches, and the cache.
    let out = host_executor(&p, &["protobuf_re.mode=hybrid"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", buck2_errors(&out));
    for want in [
        "executor: Hybrid",
        "level: Limited",
        "\"OSFamily\": \"linux\"",
        "remote_cache_enabled: true",
        "cache_upload_behavior: Disabled",
    ] {
        assert!(text.contains(want), "no {want} in:\n{text}");
    }

    // Remote only, the executor's own property spelling, uploads on.
    let out = host_executor(
        &p,
        &[
            "protobuf_re.mode=remote",
            "protobuf_re.remote_execution_properties_linux_x86_64=OSFamily=Linux,Pool=default",
            "protobuf_re.allow_cache_uploads=true",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", buck2_errors(&out));
    for want in [
        "executor: Remote(",
        "\"OSFamily\": \"Linux\"",
        "\"Pool\": \"default\"",
        "cache_upload_behavior: Enabled",
    ] {
        assert!(text.contains(want), "no {want} in:\n{text}");
    }

    // Bad values: the key, what is wrong, and a hint.
    for (setting, want) in [
        (
            "protobuf_re.mode=cloud",
            "[protobuf_re] mode = `cloud` is not a mode",
        ),
        (
            "protobuf_re.remote_cache_enabled=maybe",
            "[protobuf_re] remote_cache_enabled = `maybe` is not a boolean",
        ),
        (
            "protobuf_re.remote_execution_properties_linux_x86_64=OSFamily",
            "[protobuf_re] remote_execution_properties_linux_x86_64: `OSFamily` is not KEY=VALUE",
        ),
    ] {
        let out = host_executor(&p, &[setting]);
        let why = buck2_errors(&out);
        assert!(!out.status.success(), "{setting} was accepted");
        assert!(
            why.contains(want) && why.contains("hint: set `"),
            "{setting}:\n{why}"
        );
    }
}

/// Counts of (executor kind, category) in `ran`, where `kind` is `local`, `cache` or `re`.
fn count(ran: &[(String, String)], kind: &str, category: &str) -> usize {
    by_category(ran)
        .get(&(kind.to_string(), category.to_string()))
        .copied()
        .unwrap_or(0)
}

/// A scratch copy with fixture pins (sizes recorded by `protoreg sizes`, so native mode can
/// defer every download), protoc-gen-es installed, pointed at `nl` with `[protobuf_re]
/// mode` and `[protobuf] fetch_mode`: through `.buckconfig` only.
fn project(nl: &NativeLink, up: &Loopback, mode: &str, fetch_mode: &str) -> Project {
    let p = Project::as_committed();
    up.configure(&p);
    record_sizes(&p);
    copy_node_modules(&p);
    p.edit(
        ".buckconfig",
        "  mode = local\n",
        &format!("  mode = {mode}\n"),
    );
    p.edit(
        ".buckconfig",
        "fetch_mode = helper",
        &format!("fetch_mode = {fetch_mode}"),
    );
    let mut config = std::fs::read_to_string(p.path().join(".buckconfig")).unwrap();
    config.push_str(&nl.buckconfig());
    p.write(".buckconfig", &config);
    p
}

/// Since NativeLink had executed `executed` actions and the upstream answered `fetched`
/// requests, neither has done anything more.
fn nothing_again(nl: &NativeLink, up: &Loopback, executed: usize, fetched: usize) {
    assert_eq!(
        nl.executed(),
        executed,
        "something executed again:\n{}",
        nl.log()
    );
    assert_eq!(
        up.upstream_requests(),
        fetched,
        "something was fetched again"
    );
}

/// Record every pin's size with `protoreg sizes`, as a maintainer would: native mode can then
/// defer each download.
fn record_sizes(p: &Project) {
    let sizes = std::process::Command::new(env!("CARGO_BIN_EXE_protoreg"))
        .args(["sizes", "--pins"])
        .arg(p.path().join("toolchains/pins.bzl"))
        .output()
        .unwrap();
    assert!(sizes.status.success(), "{}", common::text(&sizes));
}

/// Everything this repository has: its libraries, generated code and toolchains.
const EVERYTHING: [&str; 2] = ["//...", "toolchains//..."];

/// The actions that run on the machine running Buck2, as the README documents them:
/// copying a protoreg given as a path into an artifact, and in helper mode the fetches.
fn documented_local(fetch_mode: &str) -> &'static [&'static str] {
    if fetch_mode == "helper" {
        &["protoreg_copy", "protoreg_materialize"]
    } else {
        &["protoreg_copy"]
    }
}

/// Every action ran as `kind` (`re` or `cache`) but the documented local ones; each codegen
/// category (and in native mode the extraction) is among them.
fn assert_ran_remotely(ran: &[(String, String)], kind: &str, fetch_mode: &str) {
    let report = format!("{:#?}", by_category(ran));
    let local = documented_local(fetch_mode);
    for ((executor, category), _) in by_category(ran) {
        let ok = executor == kind || (executor == "local" && local.contains(&category.as_str()));
        assert!(ok, "{executor} {category} is not documented:\n{report}");
    }
    let mut expected = vec![
        "protoc_descriptor_set",
        "protoc_builtin_gen",
        "protoc_plugin_gen",
    ];
    if fetch_mode == "native" {
        expected.push("protoreg_extract");
    }
    for category in expected {
        assert!(
            count(ran, kind, category) > 0,
            "no {kind} {category}:\n{report}"
        );
    }
    // ES generation (node, protoc-gen-es and its node_modules as inputs) among them.
    assert!(
        ran.iter()
            .any(|(e, id)| e.starts_with(kind) && id.contains("weather_es")),
        "ES generation did not run as {kind}:\n{report}"
    );
}

/// The buf tests of the examples.
const TESTS: usize = 7;

/// `buck2 test //...` (with `extra`): the seven buf tests pass, and they ran on `nl`.
fn test_everything(p: &Project, nl: &NativeLink, extra: &[&str]) {
    let before = nl.executed();
    let mut args = vec!["test", "//..."];
    args.extend_from_slice(extra);
    let out = p
        .buck2_within(&args, BUILD_LIMIT)
        .expect("buck2 test //... did not finish in time");
    let report = strip_ansi(&buck2_errors(&out));
    assert!(
        out.status.success() && report.contains(&format!("Pass {TESTS}. Fail 0.")),
        "buck2 test //... failed:\n{report}"
    );
    // A test run is not cached: each run executes every test, here on the executor (with
    // the images the buf tests read, made there the first time they are asked for).
    let images = count(&what_ran(p), "re", "protoc_image");
    assert_eq!(
        nl.executed(),
        before + TESTS + images,
        "the tests did not run on NativeLink"
    );
}

/// `[protobuf_re] mode` (hybrid or remote), `fetch_mode`: everything builds and tests with
/// every protoc, buf, plugin and extract action on NativeLink, and here only the documented
/// ones (on `prelude//platforms:exec-local` when the platform is remote only); with cache
/// uploads, after `buck2 clean` nothing runs but the copy of protoreg, nothing executes
/// remotely and nothing is fetched.
fn builds_and_tests_everything(mode: &str, fetch_mode: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let user = User::unprivileged();
    let nl = NativeLink::start(&user);
    let up = Loopback::start();
    let p = project(&nl, &up, mode, fetch_mode);
    p.edit(
        ".buckconfig",
        "allow_cache_uploads = false",
        "allow_cache_uploads = true",
    );
    // A hybrid executor runs tests here unless told (Buck2's own rule); a remote-only one
    // runs them remotely.
    let flags: &[&str] = if mode == "hybrid" {
        &["--unstable-allow-compatible-tests-on-re"]
    } else {
        &[]
    };

    build(&p, &EVERYTHING);
    let ran = what_ran(&p);
    assert_ran_remotely(&ran, "re", fetch_mode);
    let report = format!("{:#?}", by_category(&ran));
    assert!(count(&ran, "local", "protoreg_copy") > 0, "{report}");
    test_everything(&p, &nl, flags);
    let executed = nl.executed();
    let fetched = up.upstream_requests();

    // Cached: every download deferred (the pins have sizes), nothing executes, and the
    // helper's fetches come from the action cache.
    p.ok(&["clean"]);
    build(&p, &EVERYTHING);
    let ran = what_ran(&p);
    assert_ran_remotely(&ran, "cache", fetch_mode);
    let report = format!("{:#?}", by_category(&ran));
    assert_eq!(count(&ran, "local", "protoreg_materialize"), 0, "{report}");
    nothing_again(&nl, &up, executed, fetched);
    test_everything(&p, &nl, flags);
}

#[test]
fn hybrid_helper_mode_builds_and_tests_everything_on_nativelink_then_from_its_cache() {
    builds_and_tests_everything("hybrid", "helper");
}

#[test]
fn hybrid_native_mode_builds_and_tests_everything_on_nativelink_then_from_its_cache() {
    builds_and_tests_everything("hybrid", "native");
}

#[test]
fn a_remote_only_platform_in_native_mode_runs_everything_on_nativelink() {
    builds_and_tests_everything("remote", "native");
}

#[test]
fn a_remote_only_platform_in_helper_mode_fetches_here_and_runs_everything_else_on_nativelink() {
    builds_and_tests_everything("remote", "helper");
}

/// A checkout of one unprivileged user with a home (and so a protoreg cache) of its own, in
/// helper mode on the hybrid platform with cache uploads, and protoreg's default cache: two
/// such checkouts send the executor the same fetch actions.
fn fresh_checkout(nl: &NativeLink, up: &Loopback) -> Project {
    let mut p = project(nl, up, "hybrid", "helper");
    let user = User::unprivileged();
    p.edit(
        ".buckconfig",
        &format!(
            "cache_dir = {}\n",
            p.path().join(".protoreg-cache").display()
        ),
        "cache_dir =\n",
    );
    p.edit(
        ".buckconfig",
        &format!("protoreg = {}", env!("CARGO_BIN_EXE_protoreg")),
        &format!("protoreg = {}", user.bin().display()),
    );
    p.edit(
        ".buckconfig",
        "allow_cache_uploads = false",
        "allow_cache_uploads = true",
    );
    p.run_as(user);
    p
}

#[test]
fn a_second_checkout_with_an_empty_protoreg_cache_gets_everything_from_the_action_cache() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let user = User::unprivileged();
    let nl = NativeLink::start(&user);
    let up = Loopback::start();

    let first = fresh_checkout(&nl, &up);
    build(&first, &EVERYTHING);
    assert_ran_remotely(&what_ran(&first), "re", "helper");
    assert!(!absent_or_empty(
        &first.home().join(".cache/buck2-protobuf")
    ));
    let executed = nl.executed();
    let fetched = up.upstream_requests();
    drop(first);

    // Another checkout, another home: nothing executes, nothing is fetched.
    let second = fresh_checkout(&nl, &up);
    build(&second, &EVERYTHING);
    let ran = what_ran(&second);
    assert_ran_remotely(&ran, "cache", "helper");
    let report = format!("{:#?}", by_category(&ran));
    assert_eq!(count(&ran, "local", "protoreg_materialize"), 0, "{report}");
    nothing_again(&nl, &up, executed, fetched);
    assert!(absent_or_empty(
        &second.home().join(".cache/buck2-protobuf")
    ));
}

/// A repository that is not this one: Meta's bundled prelude, these rules as the `protobuf`
/// cell, its own remote-only execution platform, native mode and protoreg as a target (a
/// binary checked into the repository).
fn consumer(nl: &NativeLink, up: &Loopback) -> Project {
    let p = Project::empty();
    vendor_rules(&p);
    std::fs::create_dir_all(p.path().join("tools")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_protoreg"),
        p.path().join("tools/protoreg"),
    )
    .unwrap();
    p.write(
        ".buckconfig",
        &bundled_prelude_buckconfig(
            "root//platforms:remote",
            &format!(
                "[protobuf]\n  fetch_mode = native\n  protoreg = root//tools:protoreg\n{}",
                nl.buckconfig()
            ),
        ),
    );
    p.write(
        "platforms/defs.bzl",
        "def _remote_platform_impl(ctx):\n\
         \x20   constraints = {}\n\
         \x20   for dep in ctx.attrs.constraint_values:\n\
         \x20       value = dep[ConstraintValueInfo]\n\
         \x20       constraints[value.setting.label] = value\n\
         \x20   platform = ExecutionPlatformInfo(\n\
         \x20       label = ctx.label.raw_target(),\n\
         \x20       configuration = ConfigurationInfo(constraints = constraints, values = {}),\n\
         \x20       executor_config = CommandExecutorConfig(\n\
         \x20           local_enabled = False,\n\
         \x20           remote_enabled = True,\n\
         \x20           remote_cache_enabled = True,\n\
         \x20           remote_execution_properties = {\"OSFamily\": \"linux\"},\n\
         \x20           remote_execution_use_case = \"buck2-default\",\n\
         \x20           remote_output_paths = \"output_paths\",\n\
         \x20       ),\n\
         \x20   )\n\
         \x20   return [DefaultInfo(), platform, ExecutionPlatformRegistrationInfo(platforms = [platform])]\n\n\
         remote_platform = rule(impl = _remote_platform_impl, attrs = {\"constraint_values\": attrs.list(attrs.dep(providers = [ConstraintValueInfo]))})\n\n\
         def _prebuilt_tool_impl(ctx):\n\
         \x20   return [DefaultInfo(default_output = ctx.attrs.src), RunInfo(args = cmd_args(ctx.attrs.src))]\n\n\
         prebuilt_tool = rule(impl = _prebuilt_tool_impl, attrs = {\"src\": attrs.source()})\n",
    );
    p.write(
        "platforms/BUCK",
        "load(\":defs.bzl\", \"remote_platform\")\n\n\
         remote_platform(\n    name = \"remote\",\n    constraint_values = [\"prelude//os/constraints:linux\", \"prelude//cpu/constraints:x86_64\"],\n)\n",
    );
    p.write(
        "tools/BUCK",
        "load(\"//platforms:defs.bzl\", \"prebuilt_tool\")\n\n\
         prebuilt_tool(name = \"protoreg\", src = \"protoreg\", visibility = [\"PUBLIC\"])\n",
    );
    p.write(
        "toolchains/BUCK",
        "load(\"@protobuf//proto:toolchains.bzl\", \"protobuf_toolchains\")\n\
         load(\":pins.bzl\", \"DEFAULTS\", \"PINS\", \"PLATFORMS\")\n\
         load(\":tools.bzl\", \"TOOLS\")\n\n\
         protobuf_toolchains(pins = PINS, tools = TOOLS, defaults = DEFAULTS, platforms = PLATFORMS)\n",
    );
    p.write("toolchains/pins.bzl", &up.pins_bzl());
    p.write(
        "toolchains/tools.bzl",
        &std::fs::read_to_string(repo_root().join("toolchains/tools.bzl")).unwrap(),
    );
    record_sizes(&p);
    p.write(
        "api/BUCK",
        "load(\"@protobuf//proto:defs.bzl\", \"buf_lint_test\", \"go_proto_gen\", \"proto_builtin_gen\", \"proto_gencode\", \"proto_library\", \"proto_runtime\")\n\n\
         proto_library(\n    name = \"api\",\n    srcs = [\"acme/thing/v1/thing.proto\"],\n    strip_import_prefix = \"/api\",\n)\n\n\
         proto_builtin_gen(name = \"api_py\", protos = [\":api\"], languages = [\"python\"])\n\n\
         filegroup(name = \"protobuf_wheel\", srcs = [])\n\n\
         proto_runtime(name = \"python_runtime\", language = \"python\", version = \"7.36.2\", library = \":protobuf_wheel\")\n\n\
         proto_gencode(name = \"api_python_gencode\", language = \"python\", proto = \":api\", runtime = \":python_runtime\")\n\n\
         go_proto_gen(name = \"api_go\", protos = [\":api\"])\n\n\
         buf_lint_test(\n    name = \"lint\",\n    proto = \":api\",\n)\n",
    );
    p.write(
        "api/acme/thing/v1/thing.proto",
        "syntax = \"proto3\";\n\npackage acme.thing.v1;\n\nimport \"google/protobuf/timestamp.proto\";\n\noption go_package = \"example.com/acme/thing/v1;thingv1\";\n\n// A thing.\nmessage Thing {\n  // Its name.\n  string name = 1;\n  // When it was made.\n  google.protobuf.Timestamp made_at = 2;\n}\n",
    );
    p
}

#[test]
fn another_repository_with_its_own_remote_platform_runs_everything_on_nativelink() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let user = User::unprivileged();
    let nl = NativeLink::start(&user);
    let up = Loopback::start();

    // Nothing runs here: protoreg is an input like the tools it unpacks.
    let first = consumer(&nl, &up);
    build(&first, &EVERYTHING);
    let ran = what_ran(&first);
    let report = format!("{:#?}", by_category(&ran));
    assert!(ran.iter().all(|(e, _)| e.starts_with("re")), "{report}");
    // A language library's generated half (proto_gencode; the language's own library needs
    // that language's toolchain, which this repository has none of) runs there too.
    for category in [
        "protoc_descriptor_set",
        "protoc_builtin_gen",
        "protoc_plugin_gen",
        "protoc_python",
        "protoreg_extract",
    ] {
        assert!(
            count(&ran, "re", category) > 0,
            "no re {category}:\n{report}"
        );
    }
    let before = nl.executed();
    let out = first
        .buck2_within(&["test", "//..."], BUILD_LIMIT)
        .expect("buck2 test //... did not finish in time");
    let tests = strip_ansi(&buck2_errors(&out));
    assert!(
        out.status.success() && tests.contains("Pass 1. Fail 0."),
        "{tests}"
    );
    let images = count(&what_ran(&first), "re", "protoc_image");
    assert_eq!(
        nl.executed(),
        before + 1 + images,
        "the test did not run on NativeLink"
    );
    let executed = nl.executed();
    let fetched = up.upstream_requests();
    drop(first);

    // A second checkout: every action from the action cache, nothing downloaded.
    let second = consumer(&nl, &up);
    build(&second, &EVERYTHING);
    let ran = what_ran(&second);
    let report = format!("{:#?}", by_category(&ran));
    assert!(
        !ran.is_empty() && ran.iter().all(|(e, _)| e == "cache"),
        "{report}"
    );
    nothing_again(&nl, &up, executed, fetched);
}

/// The README's table of build times for the examples, one run each: a cold local build, a
/// cold build on NativeLink (hybrid platform), and after `buck2 clean` the same from its
/// action cache (uploads on). By hand:
/// `cargo test --test remote_exec -- --ignored --nocapture timings`.
#[test]
#[ignore = "prints the README's timings; run by hand"]
fn timings() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let user = User::unprivileged();
    let up = Loopback::start();
    let mut rows = Vec::new();
    for fetch_mode in ["helper", "native"] {
        // A fresh executor per mode: its cache starts empty.
        let nl = NativeLink::start(&user);
        let timed = |p: &Project| {
            let start = std::time::Instant::now();
            build(p, &EVERYTHING);
            start.elapsed().as_secs_f64()
        };
        let local = project(&nl, &up, "local", fetch_mode);
        let cold_local = timed(&local);
        drop(local);
        let remote = project(&nl, &up, "hybrid", fetch_mode);
        remote.edit(
            ".buckconfig",
            "allow_cache_uploads = false",
            "allow_cache_uploads = true",
        );
        let cold_remote = timed(&remote);
        remote.ok(&["clean"]);
        let cached = timed(&remote);
        rows.push(format!(
            "| {fetch_mode} | {cold_local:.1} s | {cold_remote:.1} s | {cached:.1} s |"
        ));
    }
    println!("| fetch mode | cold, local | cold, NativeLink | after `buck2 clean`, action cache |");
    println!("|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}
