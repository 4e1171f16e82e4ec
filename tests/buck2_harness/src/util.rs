//! Small helpers shared by the emulated globals.

/// A Starlark error carrying a message (Buck2's texts are reproduced where it has one).
pub fn sl_err(msg: String) -> starlark::Error {
    starlark::Error::new_other(anyhow::anyhow!(msg))
}
