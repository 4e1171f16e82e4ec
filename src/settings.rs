//! Settings read from the environment: durations, and how bump isolates upstream binaries.
//! Each duration has a documented range (README.md, "Environment");
//! a value outside it, or one that is not a whole number of seconds (`abc`, `-1`, `1e300`,
//! `inf`), is an input error (exit 2) that names the variable and the range: never a silent
//! default, never a panic from an overflowing `Instant + Duration`. Unset or empty means the
//! default.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::error::{Error, Result};

/// `PROTOREG_TIMEOUT`: connect timeout and the longest a transfer may stall.
pub const ENV_TIMEOUT: &str = "PROTOREG_TIMEOUT";
pub const DEFAULT_TIMEOUT: u64 = 30;
/// One second to one day.
pub const TIMEOUT_RANGE: RangeInclusive<u64> = 1..=86_400;

/// `PROTOREG_LOCK_TIMEOUT`: how long to wait for another process producing the same entry.
pub const ENV_LOCK_TIMEOUT: &str = "PROTOREG_LOCK_TIMEOUT";
pub const DEFAULT_LOCK_TIMEOUT: u64 = 900;
/// Zero (do not wait) to one day.
pub const LOCK_TIMEOUT_RANGE: RangeInclusive<u64> = 0..=86_400;

/// The network timeout of this run.
pub fn timeout() -> Result<Duration> {
    seconds(
        ENV_TIMEOUT,
        std::env::var_os(ENV_TIMEOUT),
        DEFAULT_TIMEOUT,
        TIMEOUT_RANGE,
    )
}

/// How long to wait for a cache entry's lock.
pub fn lock_timeout() -> Result<Duration> {
    seconds(
        ENV_LOCK_TIMEOUT,
        std::env::var_os(ENV_LOCK_TIMEOUT),
        DEFAULT_LOCK_TIMEOUT,
        LOCK_TIMEOUT_RANGE,
    )
}

/// `PROTOREG_SANDBOX`: how `bump` isolates a binary fresh from upstream.
pub const ENV_SANDBOX: &str = "PROTOREG_SANDBOX";

/// The values of [`ENV_SANDBOX`]. There is deliberately no `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sandbox {
    /// bubblewrap when it can start a sandbox, else the weaker fallback with a warning.
    Auto,
    /// bubblewrap or nothing: exit 2 where it cannot start a sandbox.
    Bwrap,
}

/// The sandbox this run asks for (unset or empty: `auto`).
pub fn sandbox() -> Result<Sandbox> {
    parse_sandbox(std::env::var_os(ENV_SANDBOX))
}

fn parse_sandbox(value: Option<std::ffi::OsString>) -> Result<Sandbox> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(Sandbox::Auto);
    };
    match value.to_str().map(str::trim) {
        Some("auto") => Ok(Sandbox::Auto),
        Some("bwrap") => Ok(Sandbox::Bwrap),
        _ => Err(Error::input(
            format!(
                "{ENV_SANDBOX}=`{}` is not a sandbox protoreg offers",
                crate::error::sanitize(&value.to_string_lossy())
            ),
            format!("set {ENV_SANDBOX} to `auto` (the default) or `bwrap`, or unset it"),
        )),
    }
}

/// Every setting, checked at once (commands call this before any work).
pub fn check() -> Result<()> {
    timeout()?;
    lock_timeout()?;
    sandbox()?;
    Ok(())
}

fn seconds(
    name: &str,
    value: Option<std::ffi::OsString>,
    default: u64,
    range: RangeInclusive<u64>,
) -> Result<Duration> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(Duration::from_secs(default));
    };
    let text = value.to_string_lossy();
    let trimmed = text.trim();
    // Digits only: no sign, exponent, fraction, `inf` or `nan`.
    let parsed = (!trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()))
        .then(|| trimmed.parse::<u64>().ok())
        .flatten()
        .filter(|n| range.contains(n));
    parsed.map(Duration::from_secs).ok_or_else(|| {
        Error::input(
            format!(
                "{name}=`{text}` is not a whole number of seconds from {} to {}",
                range.start(),
                range.end()
            ),
            format!(
                "set {name} to a whole number of seconds from {} to {} (default {default}), or unset it",
                range.start(),
                range.end()
            ),
        )
    })
}

/// A count set in the environment variable `name`: a positive whole number of `unit`, or
/// `default` when unset or empty; anything else is an input error (exit 2) naming both.
pub fn positive(
    name: &str,
    value: Option<std::ffi::OsString>,
    default: u64,
    unit: &str,
) -> Result<u64> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .to_str()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                crate::error::Error::input(
                    format!(
                        "{name}=`{}` is not a positive number of {unit}",
                        v.to_string_lossy()
                    ),
                    format!(
                        "set it to a whole number such as {default} (the default), or unset it"
                    ),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Option<&str>, range: RangeInclusive<u64>) -> Result<Duration> {
        seconds("X", v.map(Into::into), 30, range)
    }

    #[test]
    fn whole_seconds_in_range_or_default() {
        assert_eq!(parse(None, 1..=86_400).unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse(Some(""), 1..=86_400).unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(
            parse(Some(" 3 "), 1..=86_400).unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(
            parse(Some("86400"), 1..=86_400).unwrap(),
            Duration::from_secs(86_400)
        );
        assert_eq!(parse(Some("0"), 0..=86_400).unwrap(), Duration::ZERO);
    }

    #[test]
    fn the_sandbox_is_auto_or_bwrap_and_nothing_else() {
        let parse = |v: Option<&str>| parse_sandbox(v.map(Into::into));
        assert_eq!(parse(None).unwrap(), Sandbox::Auto);
        assert_eq!(parse(Some("")).unwrap(), Sandbox::Auto);
        assert_eq!(parse(Some("auto")).unwrap(), Sandbox::Auto);
        assert_eq!(parse(Some(" bwrap ")).unwrap(), Sandbox::Bwrap);
        for bad in ["none", "off", "BWRAP", "bwrap,auto", "\u{1b}[31m"] {
            let e = parse(Some(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            let text = e.to_string();
            assert!(
                text.contains("PROTOREG_SANDBOX=") && text.contains("hint:"),
                "{bad}: {text}"
            );
            assert!(!text.contains('\u{1b}'), "{text:?}");
        }
    }

    #[test]
    fn everything_else_is_exit_2_naming_the_variable_and_range() {
        for bad in [
            "abc",
            "0",
            "-1",
            "+1",
            "1.5",
            "1e300",
            "inf",
            "NaN",
            "86401",
            "18446744073709551615",
            "99999999999999999999999",
        ] {
            let e = parse(Some(bad), 1..=86_400).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            let text = e.to_string();
            assert!(
                text.contains("X=") && text.contains("1 to 86400") && text.contains("hint:"),
                "{bad}: {text}"
            );
        }
    }
}
