//! protoreg: resolve, fetch, verify, store, extract and materialize pinned protobuf tools,
//! and operate the OCI registry that serves them.
//!
//! The pipeline, one module per stage: [`resolve`] drives [`fetch`] (one module per source
//! kind), [`verify`], [`store`] (the content-addressed cache), [`extract`] and
//! [`materialize`]. [`platform`] is the one table of platform names; [`error`] the one
//! error type. [`commands`] holds the command-line glue.

pub mod artifact;
pub mod audit;
pub mod auth;
pub mod bump;
pub mod bundle;
pub mod cache_scan;
pub mod cleanup;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod extract;
pub mod fetch;
pub mod health;
pub mod materialize;
pub mod metrics;
pub mod mirror;
pub mod oci_layout;
pub mod pins;
pub mod platform;
pub mod publish;
pub mod reflink;
pub mod registry;
pub mod resolve;
pub mod retention;
pub mod settings;
pub mod signature;
pub mod source;
pub mod spread;
pub mod starlark_lit;
pub mod store;
pub mod telemetry;
pub mod tools;
pub mod upstream;
pub mod utc;
pub mod verify;
pub mod version;

use cli::{Cli, Command};

/// Run a parsed command line.
pub fn run(cli: &Cli) -> error::Result<()> {
    tools::configure(cli.global.catalogue.as_deref(), cli.command.pins());
    match &cli.command {
        Command::Materialize(args) => commands::materialize::run(&cli.global, args),
        Command::Extract(args) => commands::extract::run(args),
        Command::Bump(args) => commands::bump::run(&cli.global, args),
        Command::Outdated(args) => commands::outdated::run(&cli.global, args),
        Command::Health(args) => commands::health::run(&cli.global, args),
        Command::Versions(args) => commands::versions::run(&cli.global, args),
        Command::Cleanup(args) => commands::cleanup::run(&cli.global, args),
        Command::Metrics(args) => commands::metrics::run(&cli.global, args),
        Command::Mirror(args) => commands::mirror::run(&cli.global, args),
        Command::Publish(args) => commands::publish::run(&cli.global, args),
        Command::Cache(args) => commands::cache::run(&cli.global, args),
    }
}
