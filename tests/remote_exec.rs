//! Remote execution with real Buck2 and real NativeLink on loopback.
//!
//! - `[protobuf_re]` in `.buckconfig` is the whole configuration: the committed defaults run
//!   every action locally, and bad values are refused with the key and a hint.
//! - On a scratch copy with fixture pins (loopback upstream and registry) and NativeLink run
//!   as an unprivileged user, `mode = hybrid` in helper mode sends every protoc and plugin
//!   action to NativeLink; only the `local_only` fetches run here. After `buck2 clean` the
//!   action cache answers: nothing executes remotely; with `allow_cache_uploads`, nothing
//!   runs at all. Native mode likewise, with `protoreg extract` the local action.
//! - A second checkout, by a user whose protoreg cache is empty, gets everything from the
//!   action cache: nothing executes and nothing is fetched.

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

/// A scratch copy with fixture pins, pointed at `nl` on the hybrid platform in `fetch_mode`:
/// through `.buckconfig` only.
fn hybrid_project(nl: &NativeLink, up: &Loopback, fetch_mode: &str) -> Project {
    let p = Project::as_committed();
    up.configure(&p);
    p.edit(".buckconfig", "  mode = local\n", "  mode = hybrid\n");
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

const WEATHER: &str = "//examples/proto/acme/weather/v1";

/// A proto_library, protoc's own generators, Go plugins and a raw (Java gRPC) plugin.
fn example_targets() -> Vec<String> {
    [
        "weather",
        "weather_builtin",
        "weather_go",
        "weather_grpc_java",
    ]
    .iter()
    .map(|t| format!("{WEATHER}:{t}"))
    .collect()
}

/// What the example targets run on the executor: the descriptor set, protoc's generators, the
/// Go plugins, the Java gRPC plugin.
const CODEGEN: [(&str, usize); 3] = [
    ("protoc_descriptor_set", 1),
    ("protoc_builtin_gen", 1),
    ("protoc_plugin_gen", 2),
];

/// Every codegen action ran as `kind`, and besides them only `local` `fetch` actions, `n`.
fn assert_ran(ran: &[(String, String)], kind: &str, fetch: &str, n: usize) {
    let report = format!("{:#?}", by_category(ran));
    for (category, count_of) in CODEGEN {
        assert_eq!(count(ran, kind, category), count_of, "{category}: {report}");
    }
    assert_eq!(count(ran, "local", fetch), n, "{report}");
    let remote: usize = CODEGEN.iter().map(|(_, n)| n).sum();
    assert_eq!(ran.len(), n + remote, "{report}");
}

#[test]
fn hybrid_helper_mode_runs_codegen_on_nativelink_and_a_clean_rebuild_hits_its_cache() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let user = User::unprivileged();
    let nl = NativeLink::start(&user);
    let up = Loopback::start();
    let p = hybrid_project(&nl, &up, "helper");
    let targets = example_targets();
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    // protoc, protoc-gen-go, protoc-gen-go-grpc, protoc-gen-grpc-java.
    const FETCHES: usize = 4;
    let remote: usize = CODEGEN.iter().map(|(_, n)| n).sum();

    // Cold: every protoc and plugin action on NativeLink; only the fetches here.
    build(&p, &targets);
    assert_ran(&what_ran(&p), "re", "protoreg_materialize", FETCHES);
    assert_eq!(nl.executed(), remote, "{}", nl.log());

    // buck2 clean: the action cache answers every remote action; the fetches run again here
    // (local results are not uploaded by default).
    p.ok(&["clean"]);
    build(&p, &targets);
    assert_ran(&what_ran(&p), "cache", "protoreg_materialize", FETCHES);
    assert_eq!(
        nl.executed(),
        remote,
        "something executed again:\n{}",
        nl.log()
    );

    // allow_cache_uploads: the fetched trees go to the action cache too, so after the next
    // clean nothing runs at all, here or remotely.
    uploads_make_a_clean_rebuild_all_cache(
        &p,
        &nl,
        &targets,
        "protoreg_materialize",
        FETCHES,
        remote,
    );
    // The generated code is what protoc and the plugins made on the worker.
    let go = outputs(&p, &format!("{WEATHER}:weather_go[go]"), &[]);
    assert!(
        go[0].join("acme/weather/v1/weather.pb.go").is_file(),
        "{go:?}"
    );
}

#[test]
fn hybrid_native_mode_runs_codegen_on_nativelink_and_uploads_what_it_extracted() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let user = User::unprivileged();
    let nl = NativeLink::start(&user);
    let up = Loopback::start();
    let p = hybrid_project(&nl, &up, "native");
    let targets = example_targets();
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    // protoc, protoc-gen-go, protoc-gen-go-grpc; protoc-gen-grpc-java is a raw file, which
    // needs no unpacking.
    const EXTRACTS: usize = 3;
    let remote: usize = CODEGEN.iter().map(|(_, n)| n).sum();

    // Cold: codegen on NativeLink; `protoreg extract` here, because `[protobuf] protoreg` is
    // a path on this machine.
    build(&p, &targets);
    assert_ran(&what_ran(&p), "re", "protoreg_extract", EXTRACTS);
    assert_eq!(nl.executed(), remote, "{}", nl.log());

    // With uploads, what was extracted is in the action cache too: after a clean nothing runs.
    uploads_make_a_clean_rebuild_all_cache(&p, &nl, &targets, "protoreg_extract", EXTRACTS, remote);
}

/// A checkout of one unprivileged user with a home (and so a protoreg cache) of its own, in
/// helper mode on the hybrid platform with cache uploads, and protoreg's default cache: two
/// such checkouts send the executor the same fetch actions.
fn fresh_checkout(nl: &NativeLink, up: &Loopback) -> Project {
    let mut p = hybrid_project(nl, up, "helper");
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
    let targets = example_targets();
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    let remote: usize = CODEGEN.iter().map(|(_, n)| n).sum();

    let first = fresh_checkout(&nl, &up);
    build(&first, &targets);
    assert_ran(&what_ran(&first), "re", "protoreg_materialize", 4);
    assert!(!absent_or_empty(
        &first.home().join(".cache/buck2-protobuf")
    ));
    drop(first);

    // Another checkout, another home: nothing executes, nothing is fetched.
    let second = fresh_checkout(&nl, &up);
    build(&second, &targets);
    let ran = what_ran(&second);
    let report = format!("{:#?}", by_category(&ran));
    assert_eq!(ran.len(), 4 + remote, "{report}");
    assert!(
        ran.iter().all(|(executor, _)| executor == "cache"),
        "{report}"
    );
    assert_eq!(
        nl.executed(),
        remote,
        "something executed again:\n{}",
        nl.log()
    );
    assert!(absent_or_empty(
        &second.home().join(".cache/buck2-protobuf")
    ));
}

/// With `allow_cache_uploads`, what the local `category` actions made goes to the action
/// cache too: after the next clean every action, those `n` included, is a cache hit, and the
/// executor has run nothing beyond its `remote` actions so far.
fn uploads_make_a_clean_rebuild_all_cache(
    p: &Project,
    nl: &NativeLink,
    targets: &[&str],
    category: &str,
    n: usize,
    remote: usize,
) {
    p.edit(
        ".buckconfig",
        "allow_cache_uploads = false",
        "allow_cache_uploads = true",
    );
    p.ok(&["clean"]);
    build(p, targets);
    p.ok(&["clean"]);
    build(p, targets);
    let ran = what_ran(p);
    let report = format!("{:#?}", by_category(&ran));
    assert_eq!(count(&ran, "cache", category), n, "{report}");
    assert!(
        ran.iter().all(|(executor, _)| executor == "cache"),
        "{report}"
    );
    assert_eq!(
        nl.executed(),
        remote,
        "something executed again:\n{}",
        nl.log()
    );
}
