//! The `incidencias` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() {
    let cli = incidencias::cli::Cli::parse();
    std::process::exit(incidencias::cli::run(cli));
}
