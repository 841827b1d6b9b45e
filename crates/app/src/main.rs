//! The `incidencias` binary: hand the command line over to the library.

/// mimalloc rather than glibc's allocator: the create path and the timers' firing are
/// CPU-bound and spent about a third of their time in glibc's `malloc` and `free`
/// (`docs/benchmarks.md`, issue 15, eighth session). The binary only: the library and its
/// tests keep the system's allocator, and SQLite's own allocations still go to glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(incidencias::cli::main());
}
