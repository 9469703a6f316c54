//! The command line: one file per subcommand, each a thin adapter
//! (args → params struct → library call → report).
//!
//! Exit codes: 0 success, 1 input or runtime error (one line on stderr,
//! `qdscope: error: <input>: <problem>`, the library's field names as
//! flags: [`flags::render`]), 2 usage error (clap).

use clap::{Parser, Subcommand};

use qdscope::error::Result;

pub mod analyze;
pub mod build_qd;
pub mod columns;
pub mod compare;
pub mod demo;
pub mod flags;
pub mod inspect;
pub mod phonon;
pub mod prepare;
pub mod simulate;

/// qdscope — CsPbBr3 quantum-dot ADF-STEM analysis, multislice simulation and MD phonon analysis.
#[derive(Debug, Parser)]
#[command(name = "qdscope", version, about, long_about = None)]
pub struct Cli {
    /// Hide progress bars (they are also hidden when stderr is not a terminal).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register and average a stack, remove the background (opening + Gaussian).
    Prepare(Box<prepare::Args>),
    /// Find atomic columns, fit 7-parameter Gaussians, assign sublattices, Cs:Pb/Br ratio and lattice spacing.
    Columns(Box<columns::Args>),
    /// Prepare + columns for every input; one summary.csv row per input.
    Analyze(Box<analyze::Args>),
    /// Compare groups of QDs (e.g. core vs core/shell): mean ± s.d., Welch's t-test.
    Compare(compare::Args),
    /// Phonon half: DOS, Huang–Rhys coupling, dephasing, gap histograms, RMSF.
    #[command(subcommand)]
    Phonon(phonon::Command),
    /// Build a CsPbBr3 (core/shell) quantum dot with charge balance and its CP2K inputs.
    BuildQd(Box<build_qd::Args>),
    /// List the signals of a microscope file (DM3/DM4, EMD, SER, TIFF, NPY, MRC) with calibration and acquisition metadata.
    Inspect(inspect::InspectArgs),
    /// Write one signal of a microscope file as NPY (stored dtype) or calibrated float32 TIFF.
    Convert(inspect::ConvertArgs),
    /// Multislice ADF-STEM thickness series of CsPbBr3 [001]: Cs : Pb/Br column ratio vs thickness.
    // The doc line above is also clap's help text, so `[001]` stays unescaped.
    #[allow(rustdoc::broken_intra_doc_links)]
    Simulate(Box<simulate::Args>),
    /// Generate synthetic core and core/shell QD stacks and run the whole analysis on them.
    Demo(demo::Args),
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Prepare(a) => prepare::run(&a, cli.quiet),
        Command::Columns(a) => columns::run(&a, cli.quiet),
        Command::Analyze(a) => analyze::run(&a, cli.quiet),
        Command::Compare(a) => compare::run(&a, cli.quiet),
        Command::Phonon(c) => phonon::run(&c, cli.quiet),
        Command::BuildQd(a) => build_qd::run(&a, cli.quiet),
        Command::Inspect(a) => inspect::run_inspect(&a),
        Command::Convert(a) => inspect::run_convert(&a),
        Command::Simulate(a) => simulate::run(&a, cli.quiet),
        Command::Demo(a) => demo::run(&a, cli.quiet),
    }
}

/// Create the output directory (and parents); an existing one is reused.
pub(crate) fn ensure_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| qdscope::Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
