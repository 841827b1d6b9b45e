//! The `incidencias` binary: hand the command line over to the library.

fn main() {
    std::process::exit(incidencias::cli::main());
}
