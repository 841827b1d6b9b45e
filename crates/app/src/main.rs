//! The `incidencias` binary: hand the command line over to the library.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(incidencias::cli::main());
}
