//! The registry operator's work, on the pipeline's parts: publishing upstream releases and
//! bundles, mirroring, health, retention, cache cleanup, and the metrics and audit log kept
//! across runs.

pub mod audit;
pub mod bundle;
pub mod cleanup;
pub mod health;
pub mod metrics;
pub mod mirror;
pub mod oci_layout;
pub mod publish;
pub mod retention;
pub mod signature;
pub mod telemetry;
