//! Verification: the pinned identity of an artifact (sha256, and its size when known) and a
//! writer that hashes and counts bytes as they stream by, so a body is read exactly once.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::{Digest, Sha256 as Hasher};

use crate::error::{Error, Result};

/// A sha256 digest as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256(String);

impl Sha256 {
    pub fn hex(&self) -> &str {
        &self.0
    }
    /// The OCI digest string `sha256:<hex>`.
    pub fn oci(&self) -> String {
        format!("sha256:{}", self.0)
    }
    pub fn of_bytes(data: &[u8]) -> Sha256 {
        Sha256(to_hex(&Hasher::digest(data)))
    }
}

impl FromStr for Sha256 {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Sha256(hex.to_ascii_lowercase()))
        } else {
            Err(Error::input(
                format!(
                    "`{s}` is not a sha256 digest (expected 64 hex digits, got {} characters)",
                    hex.len()
                ),
                "copy the sha256 from the pins file or upstream's checksum file",
            ))
        }
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// What the bytes must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub sha256: Sha256,
    /// The exact size, when known. Upstreams publish sha256 values but rarely sizes: without
    /// one, the sha256 alone verifies and the body is capped at [`max_unsized_bytes`].
    pub size: Option<u64>,
}

/// The cap on the body of an artifact whose size is unknown, so an endless or huge body cannot
/// fill the disk. The largest real tool asset (buf's) is ~45 MB.
pub const ENV_MAX_UNSIZED: &str = "PROTOREG_MAX_UNSIZED_BYTES";
pub const DEFAULT_MAX_UNSIZED: u64 = 256 << 20;

/// `PROTOREG_MAX_UNSIZED_BYTES` (a positive number of bytes), else (unset or empty) the
/// default of 256 MiB. Anything else set there is an input error (exit 2).
pub fn max_unsized_bytes() -> Result<u64> {
    parse_max_unsized(std::env::var_os(ENV_MAX_UNSIZED))
}

fn parse_max_unsized(value: Option<std::ffi::OsString>) -> Result<u64> {
    crate::settings::positive(ENV_MAX_UNSIZED, value, DEFAULT_MAX_UNSIZED, "bytes")
}

/// Hashes and counts everything written through it. Refuses to write past the expected size
/// (or, for an artifact of unknown size, past the cap), so a source that sends too much is
/// cut off early instead of filling the disk.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
    written: u64,
    limit: u64,
    /// The limit is the cap for an artifact of unknown size, not a pinned size.
    capped: bool,
}

impl<W: Write> HashingWriter<W> {
    /// At most `limit` bytes: the pinned size.
    pub fn new(inner: W, limit: u64) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(),
            written: 0,
            limit,
            capped: false,
        }
    }

    /// For `expected`: at most its size, or `cap` bytes when its size is unknown.
    pub fn for_expected(inner: W, expected: &Expected, cap: u64) -> Self {
        match expected.size {
            Some(size) => HashingWriter::new(inner, size),
            None => HashingWriter {
                capped: true,
                ..HashingWriter::new(inner, cap)
            },
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Check size (when known) then digest against `expected`; `what` names the bytes in the
    /// error.
    pub fn finish(self, expected: &Expected, what: &str) -> Result<W> {
        if let Some(size) = expected.size.filter(|s| *s != self.written) {
            return Err(Error::Verification {
                what: format!("size of {what}"),
                expected: format!("{size} bytes"),
                actual: format!("{} bytes", self.written),
                hint: "the body was cut short or is another file; the next source is tried".into(),
            });
        }
        let actual = to_hex(&self.hasher.finalize());
        if actual != expected.sha256.hex() {
            return Err(Error::Verification {
                what: format!("sha256 of {what}"),
                expected: expected.sha256.to_string(),
                actual,
                hint: "the source serves other bytes than the pin; never trust it for this pin"
                    .into(),
            });
        }
        Ok(self.inner)
    }

    /// The digest of what was written so far, without any check.
    pub fn into_digest(self) -> (Sha256, u64) {
        (Sha256(to_hex(&self.hasher.finalize())), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::other(if self.capped {
                format!(
                    "more than {} bytes, the cap for an artifact of unknown size (raise it with {ENV_MAX_UNSIZED})",
                    self.limit
                )
            } else {
                format!("more than the pinned {} bytes", self.limit)
            }));
        }
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hash a file on disk (streamed).
pub fn hash_file(path: &std::path::Path) -> Result<(Sha256, u64)> {
    use crate::error::IoContext;
    let mut f = std::fs::File::open(path).ctx("open", path)?;
    let mut w = HashingWriter::new(io::sink(), u64::MAX);
    io::copy(&mut f, &mut w).ctx("read", path)?;
    Ok(w.into_digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let h = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        let s: Sha256 = h.parse().unwrap();
        assert_eq!(s.hex(), h.to_ascii_lowercase());
        assert_eq!(format!("sha256:{}", s.hex()).parse::<Sha256>().unwrap(), s);
        for bad in ["", "abc", &h[1..], &format!("{}g", &h[1..])] {
            assert!(bad.parse::<Sha256>().is_err(), "{bad}");
        }
    }

    #[test]
    fn verifies_size_and_digest() {
        let data = b"hello";
        let expected = Expected {
            sha256: Sha256::of_bytes(data),
            size: Some(5),
        };
        let mut w = HashingWriter::new(Vec::new(), 5);
        w.write_all(data).unwrap();
        assert_eq!(w.finish(&expected, "x").unwrap(), data);

        let mut w = HashingWriter::new(Vec::new(), 5);
        w.write_all(b"hell").unwrap();
        assert!(w.finish(&expected, "x").is_err());

        let mut w = HashingWriter::new(Vec::new(), 5);
        w.write_all(b"jello").unwrap();
        let err = w.finish(&expected, "x").unwrap_err().to_string();
        assert!(err.contains("sha256 of x"), "{err}");

        let mut w = HashingWriter::new(Vec::new(), 5);
        assert!(w.write_all(b"hello!").is_err());
    }

    #[test]
    fn the_cap_is_a_positive_byte_count_or_the_default() {
        let parse = |v: Option<&str>| parse_max_unsized(v.map(Into::into));
        assert_eq!(parse(None).unwrap(), 256 * 1024 * 1024);
        assert_eq!(parse(Some("")).unwrap(), DEFAULT_MAX_UNSIZED);
        assert_eq!(parse(Some("1048576")).unwrap(), 1 << 20);
        assert_eq!(parse(Some(" 7 ")).unwrap(), 7);
        for bad in ["0", "-1", "12MB", "1.5", "lots", "99999999999999999999999"] {
            let e = parse(Some(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            let text = e.to_string();
            assert!(
                text.contains(ENV_MAX_UNSIZED) && text.contains("hint:"),
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_size_verifies_by_digest_under_the_cap() {
        let data = b"hello";
        let expected = Expected {
            sha256: Sha256::of_bytes(data),
            size: None,
        };
        let mut w = HashingWriter::for_expected(Vec::new(), &expected, 5);
        w.write_all(data).unwrap();
        assert_eq!(w.written(), 5);
        assert_eq!(w.finish(&expected, "x").unwrap(), data);

        let mut w = HashingWriter::for_expected(Vec::new(), &expected, 5);
        w.write_all(b"jello").unwrap();
        assert!(w
            .finish(&expected, "x")
            .unwrap_err()
            .to_string()
            .contains("sha256 of x"));

        let mut w = HashingWriter::for_expected(Vec::new(), &expected, 4);
        let err = w.write_all(data).unwrap_err().to_string();
        assert!(err.contains("more than 4 bytes"), "{err}");
        assert!(err.contains(ENV_MAX_UNSIZED), "{err}");

        // A known size wins over the cap.
        let sized = Expected {
            size: Some(5),
            ..expected
        };
        let mut w = HashingWriter::for_expected(Vec::new(), &sized, 1);
        w.write_all(data).unwrap();
        let mut w = HashingWriter::for_expected(Vec::new(), &sized, 100);
        let err = w.write_all(b"hello!").unwrap_err().to_string();
        assert!(err.contains("more than the pinned 5 bytes"), "{err}");
    }
}
