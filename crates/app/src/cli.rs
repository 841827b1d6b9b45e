//! Command line. Every flag will also read an `INCIDENCIAS_*` variable (clap's `env`).

use clap::Parser;

/// Servicio del Protocolo de tratamiento de incidencias de los trámites digitales
/// publicados en gob.mx: registra cada incidencia, lleva sus tiempos (SLO) y escala
/// automáticamente cuando se exceden.
#[derive(Debug, Parser)]
#[command(name = "incidencias", version, about, long_about = None)]
pub struct Cli {}

/// Runs the parsed command; returns the process exit code.
pub fn run(_cli: Cli) -> i32 {
    println!(
        "incidencias {}: el servidor aún no está disponible en esta versión; \
         use --help para ver las opciones.",
        env!("CARGO_PKG_VERSION")
    );
    0
}
