//! The fetch pipeline a build runs: the cache first, then each source in order; the first
//! body that verifies is stored content-addressed, extracted, and materialized into Buck2's
//! output directory.

pub mod cache_scan;
pub mod extract;
pub mod fetch;
pub mod materialize;
pub mod resolve;
pub mod source;
pub mod spread;
pub mod store;
pub mod verify;
