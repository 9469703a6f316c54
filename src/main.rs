//! The `qdscope` binary: parse, run, and map any error to one line on stderr.
use std::process::ExitCode;

// mimalloc keeps freed pages instead of returning them to the OS: the
// image pipeline allocates and drops many MB-sized planes, and re-faulting
// them in costs more than the filters themselves.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use qdscope::cli::{self, Cli};

fn main() -> ExitCode {
    qdscope::keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help / --version go to stdout with exit 0; usage errors exit 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qdscope: error: {e}");
            ExitCode::from(1)
        }
    }
}
