//! The `incidencias` service: everything that does IO around `incidencias-core`.
//! For now only the command line exists; persistence, the API, timers and email grow here.

pub mod cli;
