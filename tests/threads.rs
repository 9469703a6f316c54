//! Thread-count independence, tested for real: each stage runs in forced
//! rayon pools of 1 and of 3 threads (not 1 against the default pool, which
//! proves nothing on a 1-CPU runner) and the outputs must agree bit for bit
//! (compared through their full `Debug` text, which prints every float's
//! shortest round-trip form, so any differing bit shows).
mod common;
use common::clean_scene_192;

use qdscope::fft::Window;
use qdscope::io::xyz::VelocityUnit;
use qdscope::multislice::series::{run_shard, SimParams, RNG_SCHEME};
use qdscope::optics::Microscope;
use qdscope::phonon::coupling::{huang_rhys, SpectrumOptions};
use qdscope::phonon::dos::{vdos, DosParams, Route};
use qdscope::phonon::synth::{gap_series, write_cluster, Grid, SPEC_GRID};
use qdscope::phonon::trajectory::Source;
use qdscope::stem::columns::{analyse, ColumnsParams};
use qdscope::stem::pipeline::{prepare, PrepareParams};
use qdscope::stem::synth::{generate, SynthParams};

/// `f` in a pool of 1 thread and in one of 3: the two results.
fn in_pools<T: Send>(f: impl Fn() -> T + Sync) -> (T, T) {
    let run = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
            .install(&f)
    };
    (run(1), run(3))
}

fn same<T: std::fmt::Debug>(what: &str, (a, b): (T, T)) {
    // `{:#?}`: ndarray prints every element only in the alternate form.
    let (a, b) = (format!("{a:#?}"), format!("{b:#?}"));
    assert!(a == b, "{what}: 1 and 3 threads differ");
}

fn scene() -> SynthParams {
    SynthParams {
        rows: 128,
        cols: 128,
        frames: 3,
        n_cells: 5,
        ..SynthParams::default()
    }
}

#[test]
fn prepare_is_thread_count_independent() {
    let (stack, _) = generate(&scene()).unwrap();
    let params = PrepareParams {
        pixel_size_angstrom: Some(0.25),
        ..PrepareParams::default()
    };
    same(
        "prepare",
        in_pools(|| {
            let p = prepare(stack.clone(), &params, None).unwrap();
            (
                p.averaged.data,
                p.background,
                p.denoised,
                p.deconvolved,
                p.psf,
                p.prepared.data,
                format!("{:?}", p.registration),
            )
        }),
    );
}

#[test]
fn columns_are_thread_count_independent() {
    let image = clean_scene_192();
    same(
        "columns",
        in_pools(|| analyse("scene", &image, &ColumnsParams::default()).unwrap()),
    );
}

#[test]
fn dos_is_thread_count_independent() {
    let dir = tempfile::tempdir().unwrap();
    let g = Grid {
        frames: 300,
        dt_fs: 5.0,
        temperature_k: 300.0,
    };
    let k_of = |el: &str| if el == "Pb" { 3.0 } else { 8.0 };
    write_cluster(dir.path(), "c", 3, &g, &k_of, 7).unwrap();
    let src = Source {
        positions: dir.path().join("c-pos-1.xyz"),
        velocities: Some(dir.path().join("c-vel-1.xyz")),
        velocity_unit: VelocityUnit::BohrPerAut,
        dt_fs: None,
        skip_fs: 0.0,
        progress: None,
        allow_truncated: false,
    };
    let p = DosParams {
        segment_frames: 100,
        window: Window::Rect,
        route: Route::Velocities,
        temperature_k: 300.0,
    };
    same("dos", in_pools(|| vdos(&src, None, &p).unwrap()));
}

#[test]
fn coupling_is_thread_count_independent() {
    let g = SPEC_GRID;
    let gap = gap_series(&g, 2400.0, &[(5.0, 20.0), (40.0, 0.5)], 3);
    same(
        "coupling",
        in_pools(|| {
            huang_rhys(&gap, g.dt_fs, g.temperature_k, SpectrumOptions::default()).unwrap()
        }),
    );
}

#[test]
fn simulate_is_thread_count_independent() {
    let p = SimParams {
        microscope: Microscope {
            energy_spread_ev: 0.8,
            source_size_angstrom: 0.25,
            ..Microscope::default()
        },
        detectors: vec![(35.0, 190.0)],
        blur_angstrom: 0.3,
        max_thickness_uc: 2,
        lattice_angstrom: 5.87,
        supercell_uc: 1,
        grid_n: 180,
        probe_per_cell: 24,
        symmetry_wedge: true,
        phonons: 2,
        defocus_nodes: 3,
        displacement_angstrom: [0.1, 0.08, 0.12],
        seed: 5,
        prism_interpolation: None,
        potential_oversampling: 1,
        double_precision: false,
        rng_scheme: RNG_SCHEME,
    };
    let (a, b) = in_pools(|| run_shard(&p, (0, 1), &|| {}).unwrap());
    // The wall-clock time is the one field allowed to differ.
    same(
        "simulate",
        ((&a.items, a.min_intensity), (&b.items, b.min_intensity)),
    );
}
