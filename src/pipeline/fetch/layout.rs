//! `oci-layout:DIR` sources: an OCI image-layout directory, the serverless registry. The blob
//! is `DIR/blobs/sha256/<hex>`; it is copied through the hashing writer like any other body.

use std::io::Write;
use std::path::Path;

use crate::pipeline::verify::Expected;

pub fn fetch(dir: &Path, expected: &Expected, sink: &mut dyn Write) -> Result<(), String> {
    if !dir.join("oci-layout").is_file() {
        return Err(format!(
            "`{}` is not an OCI image layout (no `oci-layout` file)",
            dir.display()
        ));
    }
    let blob = dir.join("blobs/sha256").join(expected.sha256.hex());
    // Opened without blocking, regular files only: a FIFO there fails this source at once.
    let (mut f, _) = crate::textfile::open_regular(&blob).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "blob not in the layout".to_string(),
        std::io::ErrorKind::InvalidInput => format!("`{}` {e}", blob.display()),
        _ => format!("cannot open `{}`: {e}", blob.display()),
    })?;
    std::io::copy(&mut f, sink).map_err(|e| format!("read failed: {e}"))?;
    Ok(())
}
