//! Upstream signatures: minisign signatures over a release's checksum file (buf publishes
//! `sha256.txt.minisig`). With `security.verify_signatures`, a tool source that has a signing
//! key must present a valid signature before its checksums are trusted; a tool whose upstream
//! signs nothing (protoc) is verified by digests alone, and the plan says so.

use crate::error::{Error, Result};

/// Upstream signing keys this project knows: (tool, signature file, minisign public key).
/// buf's key is the one its documentation publishes for verifying `sha256.txt`; registry.yaml
/// can replace it (`publishing.tool_sources.buf.minisign_public_key`).
pub const KNOWN: &[(&str, &str, &str)] = &[(
    "buf",
    "sha256.txt.minisig",
    "RWQ/i9xseZwBVE7pEniCNjlNOeeyp4BQgdZDLQcAohxEAH5Uj5DEKjv6",
)];

/// Check `signature_text` (a `.minisig` file) over `data` with `public_key` (base64).
pub fn verify(data: &[u8], signature_text: &str, public_key: &str, what: &str) -> Result<()> {
    let bad = |why: String| Error::Verification {
        what: format!("signature of {what}"),
        expected: format!("a valid minisign signature by key {public_key}"),
        actual: why,
        hint: "the checksum file is not the one upstream signed; nothing is published".into(),
    };
    let key = minisign_verify::PublicKey::from_base64(public_key).map_err(|e| {
        Error::input(
            format!("`{public_key}` is not a minisign public key: {e}"),
            "copy the key (the RW… line) from upstream's release documentation",
        )
    })?;
    let sig = minisign_verify::Signature::decode(signature_text)
        .map_err(|e| bad(format!("an unreadable signature file ({e})")))?;
    // Legacy (non-prehashed) signatures are what older minisign releases made; both bind the
    // whole file.
    key.verify(data, &sig, true)
        .map_err(|e| bad(format!("verification failed ({e})")))
}
