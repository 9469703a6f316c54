//! `qdscope build-qd`: the study's quantum-dot models and their CP2K inputs
//! (docs/methods/structure.md). Writes `qd.xyz`, `qd.extxyz`,
//! `composition.json`, `cp2k-geo.inp`, `cp2k-md-equil.inp` (unless
//! `--equil-steps 0`), `cp2k-md.inp`, `run-cp2k.sh` and `qd.png`.
//! Everything is computed before the first file is written.

use std::path::PathBuf;

use serde::Serialize;

use qdscope::error::{Error, Result};
use qdscope::io::xyz::{write_extxyz, write_xyz, ExtColumn};
use qdscope::phonon::cp2k_input::{self, MdPhase, Method, Poisson, Scf, Settings};
use qdscope::report;
use qdscope::structure::qd::{self, Balance, Electrons, Frozen, Qd, QdParams};
use qdscope::structure::{Element, LATTICE_ANGSTROM};

/// Arguments of `qdscope build-qd`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// PbBr6 octahedra per edge n (n × 0.6 nm; the study: 3–7).
    #[arg(long, value_name = "N")]
    pub size: usize,
    /// CsCaBr3 shell thickness in u.c. around a CsPbBr3 core (n − 2M ≥ 1).
    #[arg(long, value_name = "M", default_value_t = 0)]
    pub shell: usize,
    /// Charge balance of the surplus q = 3n − 7: CP2K CHARGE +q, or remove q surface Cs.
    #[arg(long, value_enum, default_value_t = Balance::Electrons)]
    pub balance: Balance,
    /// Explicit 1-based indices (in the `electrons` build) of surface Cs to remove.
    #[arg(long, value_name = "I,J,…", value_delimiter = ',')]
    pub remove_cs_list: Option<Vec<usize>>,
    /// Cubic lattice constant, Å.
    #[arg(long, value_name = "A", default_value_t = LATTICE_ANGSTROM, allow_negative_numbers = true)]
    pub lattice_angstrom: f64,
    /// Cubic cell edge, nm (default: the SI's cells, else ≥ 2 × extent).
    #[arg(long, value_name = "NM")]
    pub cell_nm: Option<f64>,
    /// Override the CP2K CHARGE (warned when not closed-shell).
    #[arg(long, value_name = "Q", allow_negative_numbers = true)]
    pub charge: Option<i64>,
    /// Electronic structure of the generated inputs.
    #[arg(long, value_enum, default_value_t = Method::Dft)]
    pub method: Method,
    /// SCF solver (DFT only).
    #[arg(long, value_enum, default_value_t = Scf::Diag)]
    pub scf: Scf,
    /// Poisson solver of the isolated cluster.
    #[arg(long, value_enum, default_value_t = Poisson::Mt)]
    pub poisson: Poisson,
    /// MD temperature, K.
    #[arg(long, value_name = "K", default_value_t = 300.0)]
    pub temperature_k: f64,
    /// Freeze atoms with depth < T u.c. (frozen shell; multiple of 0.5).
    #[arg(long, value_name = "T", conflicts_with = "frozen_core_uc")]
    pub frozen_shell_uc: Option<f64>,
    /// Freeze atoms with depth ≥ T u.c. (frozen core under a free shell of T u.c.).
    #[arg(long, value_name = "T")]
    pub frozen_core_uc: Option<f64>,
    /// MD time step, fs (default 10 for DFT, 5 for xTB).
    #[arg(long, value_name = "FS")]
    pub timestep_fs: Option<f64>,
    /// Equilibration steps (CSVR τ = 15 fs); 0 = none.
    #[arg(long, value_name = "N", default_value_t = 300)]
    pub equil_steps: usize,
    /// Production steps (CSVR τ = --timecon-fs).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub steps: usize,
    /// Production thermostat time constant, fs (default 1000 for DFT, 100 for xTB).
    #[arg(long, value_name = "FS")]
    pub timecon_fs: Option<f64>,
    /// MOs printed beyond HOMO and LUMO on each side.
    #[arg(long, value_name = "M", default_value_t = 2)]
    pub mo_margin: i64,
    /// Output directory.
    #[arg(short, long = "output", value_name = "DIR")]
    pub output: PathBuf,
}

#[derive(Serialize)]
struct Layer {
    depth_uc: f64,
    element: &'static str,
    count: usize,
}

#[derive(Serialize)]
struct Composition<'a> {
    qdscope_version: &'static str,
    model: String,
    formula: String,
    size_uc: usize,
    size_label_nm: f64,
    edge_angstrom: f64,
    shell_uc: usize,
    balance: Balance,
    lattice_angstrom: f64,
    atoms: usize,
    counts: std::collections::BTreeMap<&'static str, usize>,
    formal_charge_q: i64,
    cp2k_charge: i64,
    closed_shell: bool,
    electrons_gth: Electrons,
    electrons_xtb: Electrons,
    homo_index: i64,
    method: Method,
    cell_nm: f64,
    removed_cs_lattice_units: &'a [[f64; 3]],
    layers: Vec<Layer>,
    frozen: Option<Frozen>,
    md: Vec<MdPhase>,
    notes: Vec<String>,
    warnings: Vec<String>,
}

fn check_positive(flag: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::param(
            flag,
            format!("must be a positive number, got {v}"),
        ))
    }
}

/// The MD time step and thermostat time constant (method defaults), with
/// the other MD flags checked.
fn md_settings(a: &Args) -> Result<(f64, f64)> {
    check_positive("--temperature-k", a.temperature_k)?;
    let xtb = a.method == Method::Xtb;
    let timestep = a.timestep_fs.unwrap_or(if xtb { 5.0 } else { 10.0 });
    check_positive("--timestep-fs", timestep)?;
    let timecon = a.timecon_fs.unwrap_or(if xtb { 100.0 } else { 1000.0 });
    check_positive("--timecon-fs", timecon)?;
    if a.steps == 0 {
        return Err(Error::param("--steps", "must be ≥ 1"));
    }
    if a.mo_margin < 0 {
        return Err(Error::param("--mo-margin", "must be ≥ 0"));
    }
    Ok((timestep, timecon))
}

/// The warning for a CHARGE other than the closed-shell ionic charge `q`.
fn open_shell_warning(charge: i64, q: i64) -> String {
    let carriers = if charge < q {
        format!("{} extra electron(s) in the conduction band", q - charge)
    } else {
        format!("{} hole(s) in the valence band", charge - q)
    };
    format!(
        "CHARGE {charge} is not the closed-shell ionic charge {q}: {carriers}; the HOMO–LUMO gap collapses and the SCF needs smearing"
    )
}

/// The MD phases: an optional equilibration (CSVR τ = 15 fs) restarting
/// from the geometry optimisation, then production restarting from it.
fn md_phases(a: &Args, timestep: f64, timecon: f64, model: &str) -> Vec<MdPhase> {
    let geo_project = format!("{}_geo", model);
    let mut phases = Vec::new();
    if a.equil_steps > 0 {
        phases.push(MdPhase {
            name: "equil",
            steps: a.equil_steps,
            timestep_fs: timestep,
            temperature_k: a.temperature_k,
            timecon_fs: 15.0,
            restart_from: Some((geo_project.clone(), false)),
        });
    }
    phases.push(MdPhase {
        name: "md",
        steps: a.steps,
        timestep_fs: timestep,
        temperature_k: a.temperature_k,
        timecon_fs: timecon,
        restart_from: Some(match a.equil_steps {
            0 => (geo_project, false),
            _ => (format!("{}_equil", model), true),
        }),
    });
    phases
}

/// The CP2K MD input of each phase, named `cp2k-md.inp` (production) or
/// `cp2k-md-<phase>.inp`.
fn md_inputs(settings: &Settings, phases: &[MdPhase]) -> Vec<(String, String)> {
    phases
        .iter()
        .map(|p| {
            let name = if p.name == "md" {
                "cp2k-md.inp".to_string()
            } else {
                format!("cp2k-md-{}.inp", p.name)
            };
            (name, cp2k_input::md(settings, p))
        })
        .collect()
}

/// Run `qdscope build-qd`.
///
/// # Errors
/// Invalid flags (size < 2, shell thicker than the dot, negative lattice
/// constant, …) and I/O errors; nothing is written when any check fails.
pub fn run(a: &Args, _quiet: bool) -> Result<()> {
    let dot = qd::build(&QdParams {
        n: a.size,
        shell_uc: a.shell,
        balance: a.balance,
        lattice_angstrom: a.lattice_angstrom,
        cell_nm: a.cell_nm,
        remove_cs_list: a.remove_cs_list.clone(),
    })?;
    let xtb = a.method == Method::Xtb;
    let (timestep, timecon) = md_settings(a)?;
    let frozen = match (a.frozen_shell_uc, a.frozen_core_uc) {
        (Some(s), _) => Some(dot.frozen_shell(s)?),
        (None, Some(s)) => Some(dot.frozen_core(s)?),
        (None, None) => None,
    };
    let q = dot.formal_charge();
    let charge = a.charge.unwrap_or(q);
    let el_gth = dot.electrons(charge, false);
    let el_xtb = dot.electrons(charge, true);
    let mut warnings: Vec<String> = dot
        .warnings
        .0
        .iter()
        .map(|w| super::flags::words(w))
        .collect();
    let closed = charge == q;
    if !closed {
        warnings.push(open_shell_warning(charge, q));
    }
    let electrons = if xtb { el_xtb } else { el_gth };
    let settings = Settings {
        model: dot.model_name(),
        method: a.method,
        charge,
        cell_angstrom: dot.cell_nm * 10.0,
        coord_file: "qd.xyz".into(),
        elements: Element::ALL
            .into_iter()
            .filter(|&e| dot.atoms.count(e) > 0)
            .collect(),
        n_atoms: dot.atoms.len(),
        homo_index: electrons.homo_index,
        mo_margin: a.mo_margin,
        scf: a.scf,
        poisson: a.poisson,
        fixed: frozen.as_ref().map(|f| (f.first, f.last)),
    };
    let phases = md_phases(a, timestep, timecon, &settings.model);
    let geo = cp2k_input::geo_opt(&settings);
    let md_inputs = md_inputs(&settings, &phases);
    let composition = composition(
        &dot,
        a,
        charge,
        closed,
        el_gth,
        el_xtb,
        electrons,
        frozen.clone(),
        phases,
        warnings.clone(),
    );
    let frozen_flags: Vec<bool> = (0..dot.atoms.len())
        .map(|i| frozen.as_ref().is_some_and(|f| f.range().contains(&i)))
        .collect();

    let set = report::OutputSet::new(&a.output)?;
    let out = |f: &str| set.dir().join(f);
    write_xyz(
        &out("qd.xyz"),
        &dot.atoms,
        &format!(
            "{} {} — qdscope build-qd, sorted by layer depth",
            dot.model_name(),
            dot.formula()
        ),
    )?;
    write_extxyz(
        &out("qd.extxyz"),
        &dot.atoms,
        &[
            ExtColumn::Real("layer", &dot.depth_uc),
            ExtColumn::Logical("frozen", &frozen_flags),
        ],
    )?;
    report::write_json(&out("composition.json"), &composition)?;
    qdscope::io::write_text(&out("cp2k-geo.inp"), &geo)?;
    let mut script = String::from(
        "#!/bin/sh\n# Run the chain geo → equilibration → production (qdscope build-qd).\n# CP2K is fastest here with one OpenMP thread per MPI rank and an optimised BLAS.\nset -e\ncd \"$(dirname \"$0\")\"\nCP2K=${CP2K:-cp2k.psmp}\nexport OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}\n$CP2K -i cp2k-geo.inp -o cp2k-geo.out\n",
    );
    for (name, text) in &md_inputs {
        qdscope::io::write_text(&out(name), text)?;
        script.push_str(&format!(
            "$CP2K -i {name} -o {}.out\n",
            name.trim_end_matches(".inp")
        ));
    }
    qdscope::io::write_text(&out("run-cp2k.sh"), &script)?;
    report::view::cluster_png(
        &out("qd.png"),
        &dot.atoms,
        &format!("{} ({} atoms)", dot.formula(), dot.atoms.len()),
    )?;
    set.commit()?;
    for w in &warnings {
        eprintln!("qdscope: warning: {w}");
    }
    println!(
        "{}: {} atoms, q = {q}, CHARGE {charge}, {} electrons ({}), HOMO {} → {}",
        dot.model_name(),
        dot.atoms.len(),
        electrons.count,
        if xtb { "GFN1-xTB" } else { "GTH" },
        electrons.homo_index,
        a.output.display()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn composition<'a>(
    dot: &'a Qd,
    a: &Args,
    charge: i64,
    closed: bool,
    el_gth: Electrons,
    el_xtb: Electrons,
    electrons: Electrons,
    frozen: Option<Frozen>,
    md: Vec<MdPhase>,
    warnings: Vec<String>,
) -> Composition<'a> {
    Composition {
        qdscope_version: env!("CARGO_PKG_VERSION"),
        model: dot.model_name(),
        formula: dot.formula(),
        size_uc: a.size,
        size_label_nm: a.size as f64 * 0.6,
        edge_angstrom: a.size as f64 * a.lattice_angstrom,
        shell_uc: a.shell,
        balance: a.balance,
        lattice_angstrom: a.lattice_angstrom,
        atoms: dot.atoms.len(),
        counts: Element::ALL
            .into_iter()
            .map(|e| (e.symbol(), dot.atoms.count(e)))
            .collect(),
        formal_charge_q: dot.formal_charge(),
        cp2k_charge: charge,
        closed_shell: closed,
        electrons_gth: el_gth,
        electrons_xtb: el_xtb,
        homo_index: electrons.homo_index,
        method: a.method,
        cell_nm: dot.cell_nm,
        removed_cs_lattice_units: &dot.removed_cs,
        layers: dot
            .layer_counts()
            .into_iter()
            .map(|(d, e, c)| Layer {
                depth_uc: d,
                element: e.symbol(),
                count: c,
            })
            .collect(),
        frozen,
        md,
        notes: vec![
            "CHARGE = +q removes the 3n−7 surplus electrons: the closed-shell ionic count (the SI's 'add electrons' reads the other way; see docs/methods/structure.md)".into(),
            "atoms are sorted by layer depth, then element (Cs, Pb, Ca, Br), then z, y, x: frozen shells are ranges 1..N".into(),
            "a global CSVR thermostat with a 1-ps constant is a weak perturbation of the dynamics; NVE is the purist alternative".into(),
        ],
        warnings,
    }
}
