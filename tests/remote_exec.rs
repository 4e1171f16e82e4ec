//! Remote execution with real Buck2 and real NativeLink on loopback.
//!
//! - `[protobuf_re]` in `.buckconfig` is the whole configuration: the committed defaults run
//!   every action locally, and bad values are refused with the key and a hint.

mod common;

use std::sync::Mutex;

use common::buck2::*;

/// One Buck2 project at a time: each daemon takes a core and a few hundred MiB.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

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
