//! The negative suite: each fixture is something Buck2 refuses, and the harness must refuse it
//! with Buck2's reason. These are what prove the harness can fail. The table of cases is
//! shared with `real_buck2.rs`, which checks that real Buck2 refuses each with the same words.

mod negative_cases;

use std::path::PathBuf;

use buck2_harness::Harness;
use negative_cases::{missing, CASES, PLATFORM};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/repo")
}

#[test]
fn every_fixture_under_bad_is_a_case() {
    negative_cases::assert_table_matches_fixtures(&repo());
}

#[test]
fn each_case_is_refused_with_buck2s_reason() {
    let mut failures = Vec::new();
    for case in CASES {
        // A fresh harness per case: a load error must not be served from another case's cache.
        let h = Harness::open(repo()).unwrap();
        let target = format!("//bad/{}:t", case.name);
        match h.analyze(&target, PLATFORM, PLATFORM) {
            Ok(_) => failures.push(format!(
                "`{target}` was accepted; Buck2 refuses it with: {:?}",
                case.reason
            )),
            Err(e) => {
                let msg = format!("{e:#}");
                let lacking = missing(case, &msg);
                if !lacking.is_empty() {
                    failures.push(format!(
                        "`{target}` was refused for another reason.\nmissing: {lacking:?}\ngot: {msg}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}
