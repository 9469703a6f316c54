use qdscope::multislice::series::{positions, run_shard, SimParams};
use qdscope::optics::Microscope;
fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (m, sc) = (args[0], args[1]);
    for &n in &args[2..] {
        let p = SimParams {
            microscope: Microscope {
                energy_spread_ev: 0.0,
                source_size_angstrom: 0.0,
                ..Microscope::default()
            },
            detectors: vec![(35.0, 190.0)],
            blur_angstrom: 0.0,
            max_thickness_uc: 4,
            lattice_angstrom: 5.87,
            supercell_uc: sc,
            grid_n: n,
            probe_per_cell: 24,
            symmetry_wedge: true,
            phonons: 1,
            defocus_nodes: 1,
            displacement_angstrom: [0.0; 3],
            seed: 1,
            prism_interpolation: None,
            potential_oversampling: m,
        };
        let t0 = std::time::Instant::now();
        let part = run_shard(&p, (0, 1), &|| {}).unwrap();
        let (sums, w) = part.totals();
        let (pos, _) = positions(24, true);
        let qc = pos.iter().position(|&q| q == (0, 0)).unwrap();
        let qp = pos.iter().position(|&q| q == (12, 12)).unwrap();
        let line: Vec<String> = (0..4)
            .map(|t| {
                format!(
                    "t{} Cs {:.5} Pb {:.5}",
                    t + 1,
                    sums[0][t][qc] / w,
                    sums[0][t][qp] / w
                )
            })
            .collect();
        println!(
            "m={m} sc={sc} n={n} ({:.2} px/cell) {:.1}s: {}",
            n as f64 / sc as f64,
            t0.elapsed().as_secs_f64(),
            line.join(" | ")
        );
    }
}
