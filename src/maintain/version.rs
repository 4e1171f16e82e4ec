//! Version order (not string order): `31.10` > `31.9` > `31.1`; a pre-release suffix sorts
//! before its release (`1.0.0-rc1` < `1.0.0`).

use std::cmp::Ordering;

/// Is `v` a version protoreg takes (from the command line or read from an upstream tag)?
/// It becomes part of file names, URL paths, tags and printed lines: a digit first, then
/// letters, digits and `.`, `_`, `-`, `+` only (no `/`, no control character), at most 128.
pub fn valid(v: &str) -> bool {
    v.len() <= 128
        && v.starts_with(|c: char| c.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

pub fn compare(a: &str, b: &str) -> Ordering {
    let split = |v: &str| {
        let v = v.trim_start_matches('v');
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c.to_string(), Some(p.to_string())),
            None => (v.to_string(), None),
        };
        let nums: Vec<u64> = core.split('.').map(|p| p.parse().unwrap_or(0)).collect();
        (nums, pre)
    };
    let (an, ap) = split(a);
    let (bn, bp) = split(b);
    let len = an.len().max(bn.len());
    for i in 0..len {
        let (x, y) = (
            an.get(i).copied().unwrap_or(0),
            bn.get(i).copied().unwrap_or(0),
        );
        match x.cmp(&y) {
            Ordering::Equal => continue,
            o => return o,
        }
    }
    match (ap, bp) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// Sort newest first.
pub fn sort_newest_first(versions: &mut [String]) {
    versions.sort_by(|a, b| compare(b, a));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_numerically() {
        let mut v: Vec<String> = [
            "31.1",
            "31.10",
            "31.9",
            "3.21.12",
            "36.2",
            "1.0.0-rc1",
            "1.0.0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        sort_newest_first(&mut v);
        assert_eq!(
            v,
            [
                "36.2",
                "31.10",
                "31.9",
                "31.1",
                "3.21.12",
                "1.0.0",
                "1.0.0-rc1"
            ]
        );
    }
}
