//! The `qdscope` binary: parse, run, and map any error to one line on stderr
//! (the library's parameter names worded as flags, [`cli::flags`]).
use std::process::ExitCode;

// mimalloc keeps freed pages instead of returning them to the OS: the
// image pipeline allocates and drops many MB-sized planes, and re-faulting
// them in costs more than the filters themselves.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

mod cli;

use cli::Cli;

/// The panic payload as text (panics carry a `&str` or a `String`).
fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    let p = info.payload();
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic without a message".into())
}

/// A panic is a bug, but it still keeps the one-line error contract:
/// `qdscope: internal error: <message>` (the first panic only; rayon
/// re-raises a worker's panic on the caller). With `RUST_BACKTRACE` set
/// (not `0`) the location and a backtrace follow. `main` turns the unwind
/// into exit code 1. A reader that closed stdout (`qdscope inspect F |
/// head`) is not a bug: `println!` panics with "Broken pipe" and the
/// process ends quietly with exit code 0, as other command-line tools do.
fn install_panic_hook() {
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    std::panic::set_hook(Box::new(|info| {
        if REPORTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let msg = panic_message(info).replace(['\n', '\r'], " ");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        eprintln!("qdscope: internal error: {msg}");
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            if let Some(l) = info.location() {
                eprintln!("  at {}:{}:{}", l.file(), l.line(), l.column());
            }
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
    }));
}

fn main() -> ExitCode {
    qdscope::keep_freed_memory();
    install_panic_hook();
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
    let run = || {
        // Lets the tests check the hook's one-line contract on a real panic;
        // debug and test builds only (a release binary has no such switch).
        if cfg!(debug_assertions) && std::env::var_os("QDSCOPE_TEST_PANIC").is_some() {
            panic!("test panic requested by QDSCOPE_TEST_PANIC\nsecond line");
        }
        cli::run(cli)
    };
    match std::panic::catch_unwind(run) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("qdscope: error: {}", cli::flags::render(&e));
            ExitCode::from(1)
        }
        // The hook has printed the one line.
        Err(_) => ExitCode::from(1),
    }
}
