//! The `incidencias` service: everything that does IO around `incidencias-core`.
//!
//! Data flows one way: request -> [`http`] -> [`service`] -> core `decide` -> [`store`]
//! (events, projection, timer, idempotency record; one transaction) -> answer.
//!
//! - [`store`]: persistence on SQLite or PostgreSQL (events, projection, catalogue, audit).
//! - [`service`]: the use-cases; [`documents`]: what they answer with.
//! - [`cli`]: the command line, [`config`]: its settings read once; [`bench`]: the
//!   shipped benchmarks.

pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod documents;
pub mod encoding;
pub mod http;
pub mod links;
pub mod listen;
pub mod mail;
pub mod metrics;
pub mod passwords;
pub mod polling;
pub mod scheduler;
pub mod server;
pub mod service;
pub mod store;
pub mod web;
pub mod webhooks;
