//! protoreg: resolve, fetch, verify, store, extract and materialize pinned protobuf tools,
//! and operate the OCI registry that serves them. One folder per job:
//!
//! - [`pipeline`]: what a build runs. [`pipeline::resolve`] drives [`pipeline::fetch`] (one
//!   module per source kind), [`pipeline::verify`], [`pipeline::store`] (the
//!   content-addressed cache), [`pipeline::extract`] and [`pipeline::materialize`].
//! - [`maintain`]: what maintainers edit and move: the catalogue ([`maintain::tools`]), the
//!   pins ([`maintain::pins`]) and [`maintain::bump`] against upstream.
//! - [`operate`]: the registry operator's work on the same parts: publish, bundles, mirror,
//!   health, retention, cleanup, metrics and the audit log.
//!
//! Shared by all three: [`platform`] (the one table of platform names), [`error`] (the one
//! error type), [`config`] (registry.yaml), [`registry`] and [`artifact`] (the OCI facade and
//! the ORAS manifest shape), [`auth`], [`settings`], [`utc`], [`progress`] (bars on a terminal), [`process`] (other programs, to a deadline) and [`sys`] (every call beyond
//! portable `std`, with a fallback for other systems). [`commands`] holds the
//! command-line glue, one module per subcommand.

pub mod artifact;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod maintain;
pub mod netrc;
pub mod operate;
pub mod output;
pub mod pipeline;
pub mod platform;
pub mod process;
pub mod progress;
pub mod registry;
pub mod settings;
pub mod sys;
pub mod textfile;
pub mod utc;

use cli::{Cli, Command};

/// Run a parsed command line.
pub fn run(cli: &Cli) -> error::Result<()> {
    // The build actions' helpers open no connection, so they skip the TLS checks: those stat
    // every file of SSL_CERT_DIR, which cost a protoc action more than its work.
    let helper = matches!(
        cli.command,
        Command::Protoc(_) | Command::CopySelf(_) | Command::ExpectFindings(_)
    );
    if !helper {
        maintain::tools::configure(cli.global.catalogue.as_deref(), cli.command.pins());
        pipeline::fetch::trust::configure(cli.global.ca_bundle.as_deref());
        // A CA bundle that cannot be used is refused before any work, by every such command.
        pipeline::fetch::trust::check()?;
    }
    match &cli.command {
        Command::Materialize(args) => commands::materialize::run(&cli.global, args),
        Command::Extract(args) => commands::extract::run(args),
        Command::Protoc(args) => commands::protoc::run(args),
        Command::CopySelf(args) => commands::protoc::copy_self(&args.out),
        Command::ExpectFindings(args) => commands::expect_findings::run(args),
        Command::Init(args) => commands::init::run(args),
        Command::Bump(args) => commands::bump::run(&cli.global, args),
        Command::Outdated(args) => commands::outdated::run(&cli.global, args),
        Command::Sizes(args) => commands::sizes::run(&cli.global, args),
        Command::Health(args) => commands::health::run(&cli.global, args),
        Command::Versions(args) => commands::versions::run(&cli.global, args),
        Command::Cleanup(args) => commands::cleanup::run(&cli.global, args),
        Command::Metrics(args) => commands::metrics::run(&cli.global, args),
        Command::Mirror(args) => commands::mirror::run(&cli.global, args),
        Command::Publish(args) => commands::publish::run(&cli.global, args),
        Command::Cache(args) => commands::cache::run(&cli.global, args),
        Command::Baseline(args) => match &args.command {
            cli::BaselineCommand::Push(push) => commands::baseline::push(&cli.global, push),
        },
    }
}
