//! A Buck2 analysis harness on starlark-rust: load a repository's `.bzl` and BUCK files in
//! Buck2's dialects, evaluate them with an emulation of Buck2's API, configure and analyze
//! targets for chosen platforms, and execute the resulting actions. See README.md for what it
//! checks and what only real Buck2 can.

// `#[starlark_module]` turns each named parameter of a Buck2 signature (e.g. `ctx.actions.run`)
// into a Rust argument; the generated functions cannot carry their own `allow`.
#![allow(clippy::too_many_arguments)]

mod analysis;
mod artifact;
mod attrs;
mod cmd_args;
mod load;
mod provider;
mod repo;
mod rule;
mod select;
mod tset;
mod util;

pub use load::{glob_match, FileKind, Loader};
pub use repo::{BuckConfig, CellPath, Cells, TargetLabel};
mod harness;
pub use analysis::{Action, ActionKind};
pub use harness::{AnalysisResult, Harness};
mod execute;
pub use execute::{Build, TestRun};
