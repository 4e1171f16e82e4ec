//! What maintainers edit and move: the tool catalogue (toolchains/tools.bzl), the pins
//! (toolchains/pins.bzl), the literal Starlark both are written in, and `bump`, which moves a
//! pin against upstream (GitHub releases or a static host).

pub mod bump;
pub mod pins;
pub mod sandbox;
pub mod starlark_lit;
pub mod tools;
pub mod upstream;
pub mod version;
