//! CP2K inputs for the study's runs (docs/methods/structure.md):
//! geometry optimisation and NVT AIMD of a quantum dot, PBE/GTH/MOLOPT DFT
//! or the cheap GFN1-xTB variant, frozen shells or cores, and the per-step
//! HOMO/LUMO print the phonon half reads.
//!
//! Inputs are assembled from a small tree of [`Section`]s (keyword names
//! from the CP2K 2023.1 input reference) and rendered with two-space
//! indentation; nothing is copied from example inputs. Decisions the SI does
//! not fix are stated in comments inside the generated file.
//!
//! The run chain is geo → equilibration (τ = 15 fs) → production (τ =
//! 1000 fs), each phase an external restart of the previous one. A global
//! CSVR thermostat with a 1-ps constant perturbs the dynamics only weakly;
//! NVE is the purist alternative for spectra.

use serde::Serialize;

/// Electronic-structure method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// PBE, GTH pseudopotentials, DZVP-MOLOPT-SR basis, 300 Ry (the study).
    Dft,
    /// GFN1-xTB in Quickstep (cheap; for fixtures and tests, not physics).
    Xtb,
}

/// SCF solver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scf {
    /// Diagonalisation + Broyden mixing with added MOs (prints the LUMO every step).
    Diag,
    /// Orbital transformation; LUMOs from CP2K's OT eigensolver (untested).
    Ot,
}

/// Poisson solver of the isolated cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Poisson {
    /// Martyna–Tuckerman (needs L ≥ 2 × extent).
    Mt,
    /// Wavelet solver.
    Wavelet,
}

/// Everything a generated input depends on besides the run phase.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Model name (`qd_n5`); project names add `_geo`, `_equil`, `_md`.
    pub model: String,
    /// Method.
    pub method: Method,
    /// CP2K `CHARGE`.
    pub charge: i64,
    /// Cubic cell edge, Å.
    pub cell_angstrom: f64,
    /// Coordinate file (XMOL XYZ, next to the input).
    pub coord_file: String,
    /// Elements present (for the KIND sections).
    pub elements: Vec<crate::structure::Element>,
    /// Atoms (BFGS below 1000 atoms, LBFGS above).
    pub n_atoms: usize,
    /// 1-based HOMO index for the MO print.
    pub homo_index: i64,
    /// MOs printed on each side of the gap beyond HOMO/LUMO (m).
    pub mo_margin: i64,
    /// SCF solver.
    pub scf: Scf,
    /// Poisson solver.
    pub poisson: Poisson,
    /// Frozen atoms, 1-based inclusive range.
    pub fixed: Option<(usize, usize)>,
}

/// One MD phase.
#[derive(Debug, Clone, Serialize)]
pub struct MdPhase {
    /// `equil` or `md` (project suffix).
    pub name: &'static str,
    /// Steps of this phase.
    pub steps: usize,
    /// Time step, fs.
    pub timestep_fs: f64,
    /// Temperature, K.
    pub temperature_k: f64,
    /// CSVR time constant, fs.
    pub timecon_fs: f64,
    /// Project whose `-1.restart` starts this phase, and whether velocities
    /// and counters continue (`true`) or only positions are taken (`false`).
    pub restart_from: Option<(String, bool)>,
}

/// A CP2K input section: `&NAME param`, keywords, subsections, `&END NAME`.
#[derive(Debug, Clone, Default)]
pub struct Section {
    name: String,
    param: String,
    comments: Vec<String>,
    keywords: Vec<(String, String)>,
    children: Vec<Section>,
}

impl Section {
    /// A section with an optional parameter (`&KIND Cs`, `&SMEAR ON`).
    #[must_use]
    pub fn new(name: &str, param: &str) -> Self {
        Section {
            name: name.into(),
            param: param.into(),
            ..Section::default()
        }
    }

    /// Add a keyword.
    #[must_use]
    pub fn kw(mut self, k: &str, v: impl std::fmt::Display) -> Self {
        self.keywords.push((k.into(), v.to_string()));
        self
    }

    /// Add a `#` comment line at the top of the section.
    #[must_use]
    pub fn note(mut self, text: &str) -> Self {
        self.comments.push(text.into());
        self
    }

    /// Add a subsection.
    #[must_use]
    pub fn child(mut self, s: Section) -> Self {
        self.children.push(s);
        self
    }

    fn render(&self, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        let head = if self.param.is_empty() {
            format!("{pad}&{}\n", self.name)
        } else {
            format!("{pad}&{} {}\n", self.name, self.param)
        };
        out.push_str(&head);
        for c in &self.comments {
            out.push_str(&format!("{pad}  # {c}\n"));
        }
        for (k, v) in &self.keywords {
            out.push_str(&format!("{pad}  {k} {v}\n"));
        }
        for c in &self.children {
            c.render(depth + 1, out);
        }
        out.push_str(&format!("{pad}&END {}\n", self.name));
    }
}

fn render(header: &str, sections: &[Section]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(&format!("# {line}\n"));
    }
    for s in sections {
        s.render(0, &mut out);
    }
    out
}

fn global(project: &str, run_type: &str) -> Section {
    Section::new("GLOBAL", "")
        .kw("PROJECT", project)
        .kw("RUN_TYPE", run_type)
        .kw("PRINT_LEVEL", "LOW")
}

/// `&EACH <iteration level> 1` for the MO print; never inside the SCF.
fn mo_print(s: &Settings, level: &str) -> Section {
    let lo = (s.homo_index - s.mo_margin).max(1);
    let hi = s.homo_index + 1 + s.mo_margin;
    Section::new("PRINT", "").child(
        Section::new("MO", "")
            .note(
                "HOMO/LUMO of every step for the phonon half (docs/methods/phonon.md); one file, PROJECT-mo.MOLog",
            )
            .kw("ENERGIES", "T")
            .kw("OCCUPATION_NUMBERS", "T")
            .kw("NDIGITS", 8)
            .kw("MO_INDEX_RANGE", format!("{lo} {hi}"))
            .kw("FILENAME", "mo")
            .kw("COMMON_ITERATION_LEVELS", 3)
            .child(Section::new("EACH", "").kw(level, 1).kw("QS_SCF", 0)),
    )
}

fn scf(s: &Settings) -> Section {
    match (s.method, s.scf) {
        (Method::Xtb, _) => Section::new("SCF", "")
            .note("settings found necessary for xTB CsPbBr3 clusters (docs/methods/structure.md, CP2K inputs)")
            .kw("EPS_SCF", "1.0E-6")
            .kw("MAX_SCF", 200)
            .kw("ADDED_MOS", 20.max(s.mo_margin + 1))
            .child(
                Section::new("SMEAR", "ON")
                    .kw("METHOD", "FERMI_DIRAC")
                    .kw("ELECTRONIC_TEMPERATURE", "[K] 300"),
            )
            .child(Section::new("DIAGONALIZATION", "").kw("ALGORITHM", "STANDARD"))
            .child(
                Section::new("MIXING", "")
                    .kw("METHOD", "BROYDEN_MIXING")
                    .kw("ALPHA", 0.1)
                    .kw("NBROYDEN", 8),
            ),
        (Method::Dft, Scf::Diag) => Section::new("SCF", "")
            .note("diagonalisation with added MOs: the LUMO is printed every MD step")
            .kw("EPS_SCF", "1.0E-8")
            .kw("MAX_SCF", 100)
            .kw("ADDED_MOS", s.mo_margin + 1)
            .child(Section::new("DIAGONALIZATION", "").kw("ALGORITHM", "STANDARD"))
            .child(
                Section::new("MIXING", "")
                    .kw("METHOD", "BROYDEN_MIXING")
                    .kw("ALPHA", 0.2)
                    .kw("NBROYDEN", 8),
            ),
        (Method::Dft, Scf::Ot) => Section::new("SCF", "")
            .note("orbital transformation; LUMOs from the OT eigensolver (EPS_LUMO, MAX_ITER_LUMO) — untested route")
            .kw("EPS_SCF", "1.0E-8")
            .kw("MAX_SCF", 50)
            .kw("EPS_LUMO", "1.0E-6")
            .kw("MAX_ITER_LUMO", 1000)
            .child(
                Section::new("OT", "")
                    .kw("MINIMIZER", "DIIS")
                    .kw("PRECONDITIONER", "FULL_SINGLE_INVERSE"),
            )
            .child(Section::new("OUTER_SCF", "").kw("EPS_SCF", "1.0E-8").kw("MAX_SCF", 20)),
    }
}

/// `wfn_from`: the project whose converged wavefunction starts the SCF
/// (a phase continued from a thermalised structure does not converge from
/// the atomic guess reliably — seen with xTB).
fn force_eval(s: &Settings, level: &str, wfn_from: Option<&str>) -> Section {
    let mut dft = Section::new("DFT", "").kw("CHARGE", s.charge);
    if let Some(p) = wfn_from {
        dft = dft.kw("WFN_RESTART_FILE_NAME", format!("{p}-RESTART.wfn"));
    }
    let mut scf = scf(s);
    if wfn_from.is_some() {
        scf = scf.kw("SCF_GUESS", "RESTART");
    }
    let poisson = Section::new("POISSON", "").kw("PERIODIC", "NONE").kw(
        "POISSON_SOLVER",
        match s.poisson {
            Poisson::Mt => "MT",
            Poisson::Wavelet => "WAVELET",
        },
    );
    match s.method {
        Method::Dft => {
            dft = dft
                .note("CHARGE = +q: the closed-shell ionic electron count (docs/methods/structure.md)")
                .kw("BASIS_SET_FILE_NAME", "BASIS_MOLOPT")
                .kw("POTENTIAL_FILE_NAME", "GTH_POTENTIALS")
                .child(
                    Section::new("MGRID", "")
                        .note("300 Ry as in the SI; REL_CUTOFF is CP2K's default (SI silent)")
                        .kw("CUTOFF", 300)
                        .kw("REL_CUTOFF", 40),
                )
                .child(Section::new("QS", "").kw("METHOD", "GPW"))
                .child(poisson)
                .child(scf.clone())
                .child(Section::new("XC", "").child(Section::new("XC_FUNCTIONAL", "PBE")));
        }
        Method::Xtb => {
            dft = dft
                .child(
                    Section::new("QS", "").kw("METHOD", "XTB").child(
                        Section::new("XTB", "")
                            .note(
                                "GFN1-xTB; isolated cluster: no Ewald; charge check off (docs/methods/structure.md)",
                            )
                            .kw("DO_EWALD", "F")
                            .kw("CHECK_ATOMIC_CHARGES", "F"),
                    ),
                )
                .child(poisson)
                .child(scf.clone());
        }
    }
    dft = dft.child(mo_print(s, level));
    let mut subsys = Section::new("SUBSYS", "")
        .child(
            Section::new("CELL", "")
                .kw(
                    "ABC",
                    format!("[angstrom] {0:.4} {0:.4} {0:.4}", s.cell_angstrom),
                )
                .kw("PERIODIC", "NONE"),
        )
        .child(
            Section::new("TOPOLOGY", "")
                .kw("COORD_FILE_NAME", &s.coord_file)
                .kw("COORD_FILE_FORMAT", "XYZ"),
        );
    // xTB needs no KIND sections (element parameters come from xTB_parameters).
    if s.method == Method::Dft {
        for e in &s.elements {
            subsys = subsys.child(
                Section::new("KIND", e.symbol())
                    .kw("BASIS_SET", "DZVP-MOLOPT-SR-GTH")
                    .kw("POTENTIAL", e.gth_potential()),
            );
        }
    }
    Section::new("FORCE_EVAL", "")
        .kw("METHOD", "QUICKSTEP")
        .child(dft)
        .child(subsys)
}

fn fixed_atoms(s: &Settings) -> Option<Section> {
    s.fixed.map(|(a, b)| {
        Section::new("CONSTRAINT", "").child(
            Section::new("FIXED_ATOMS", "")
                .note("frozen layer: a contiguous range, atoms are sorted by depth")
                .kw("LIST", format!("{a}..{b}"))
                .kw("COMPONENTS_TO_FIX", "XYZ"),
        )
    })
}

fn header(s: &Settings, what: &str) -> String {
    format!(
        "{what} of {} — generated by qdscope {} (docs/methods/structure.md)\nmethod {:?}, CHARGE {}, HOMO index {}, cell {:.2} Å, {} atoms{}",
        s.model,
        env!("CARGO_PKG_VERSION"),
        s.method,
        s.charge,
        s.homo_index,
        s.cell_angstrom,
        s.n_atoms,
        match s.fixed {
            Some((a, b)) => format!(", atoms {a}..{b} fixed"),
            None => String::new(),
        }
    )
}

/// The geometry optimisation input (project `<model>_geo`).
#[must_use]
pub fn geo_opt(s: &Settings) -> String {
    let mut motion = Section::new("MOTION", "").child(
        Section::new("GEO_OPT", "")
            .note("max force 24 meV/Å = 4.667E-4 Ha/bohr (SI)")
            .kw("OPTIMIZER", if s.n_atoms > 1000 { "LBFGS" } else { "BFGS" })
            .kw("MAX_FORCE", "4.667E-4")
            .kw("MAX_ITER", 500),
    );
    if let Some(c) = fixed_atoms(s) {
        motion = motion.child(c);
    }
    motion = motion.child(
        Section::new("PRINT", "").child(
            Section::new("TRAJECTORY", "")
                .kw("FORMAT", "XMOL")
                .child(Section::new("EACH", "").kw("GEO_OPT", 1)),
        ),
    );
    render(
        &header(s, "Geometry optimisation"),
        &[
            global(&format!("{}_geo", s.model), "GEO_OPT"),
            motion,
            force_eval(s, "GEO_OPT", None),
        ],
    )
}

/// An NVT MD phase (project `<model>_<phase.name>`).
#[must_use]
pub fn md(s: &Settings, p: &MdPhase) -> String {
    let mut sections = vec![global(&format!("{}_{}", s.model, p.name), "MD")];
    if let Some((from, full)) = &p.restart_from {
        let mut r =
            Section::new("EXT_RESTART", "").kw("RESTART_FILE_NAME", format!("{from}-1.restart"));
        r = if *full {
            r.note("continue positions, velocities, step counter and thermostat state")
                .kw("RESTART_DEFAULT", "T")
        } else {
            r.note("start from the optimised positions only")
                .kw("RESTART_DEFAULT", "F")
                .kw("RESTART_POS", "T")
        };
        sections.push(r);
    }
    let mut mdsec = Section::new("MD", "")
        .kw("ENSEMBLE", "NVT")
        .kw("STEPS", p.steps)
        .kw("TIMESTEP", format!("[fs] {}", p.timestep_fs))
        .kw("TEMPERATURE", format!("[K] {}", p.temperature_k));
    let fresh = !matches!(p.restart_from, Some((_, true)));
    if s.fixed.is_none() && fresh {
        mdsec = mdsec.kw("ANGVEL_ZERO", "T");
    }
    mdsec = mdsec.child(
        Section::new("THERMOSTAT", "")
            .note("global CSVR (Bussi, Donadio & Parrinello 2007); a 1-ps constant is a weak perturbation, NVE the purist alternative")
            .kw("TYPE", "CSVR")
            .kw("REGION", "GLOBAL")
            .child(Section::new("CSVR", "").kw("TIMECON", format!("[fs] {}", p.timecon_fs))),
    );
    let mut motion = Section::new("MOTION", "").child(mdsec);
    if let Some(c) = fixed_atoms(s) {
        motion = motion.child(c);
    }
    let each_md = |n: usize| Section::new("EACH", "").kw("MD", n);
    motion = motion.child(
        Section::new("PRINT", "")
            .child(
                Section::new("TRAJECTORY", "")
                    .kw("FORMAT", "XMOL")
                    .child(each_md(1)),
            )
            .child(
                Section::new("VELOCITIES", "")
                    .kw("FORMAT", "XMOL")
                    .child(each_md(1)),
            )
            .child(Section::new("RESTART", "").child(each_md(100)))
            .child(Section::new("RESTART_HISTORY", "OFF")),
    );
    sections.push(motion);
    sections.push(force_eval(
        s,
        "MD",
        p.restart_from.as_ref().map(|(from, _)| from.as_str()),
    ));
    let what = format!(
        "NVT MD ({}, {} steps × {} fs at {} K, CSVR τ = {} fs)",
        p.name, p.steps, p.timestep_fs, p.temperature_k, p.timecon_fs
    );
    render(&header(s, &what), &sections)
}
