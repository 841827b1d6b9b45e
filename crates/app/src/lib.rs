//! The `incidencias` service: everything that does IO around `incidencias-core`.
//!
//! - [`store`]: persistence on SQLite or PostgreSQL (events, projection, catalogue, audit).
//! - [`cli`]: the command line.
//! - [`bench`]: the shipped benchmarks.

pub mod bench;
pub mod cli;
pub mod store;
