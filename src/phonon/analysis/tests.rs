use std::path::PathBuf;

use super::*;
use crate::error::Error;
use crate::phonon::coupling::Band;
use crate::phonon::dos::Route;
use crate::phonon::synth::{gap_series, write_gap, SPEC_GRID};

/// `validate()` refuses `p`, naming `field`.
fn refuses<T>(what: &str, r: crate::Result<T>, field: &str) {
    match r {
        Err(Error::InvalidParameter { name, reason }) => {
            assert_eq!(name, field, "{what}: {reason}");
        }
        Err(e) => panic!("{what}: not an InvalidParameter: {e}"),
        Ok(_) => panic!("{what}: accepted"),
    }
}

fn gap_params() -> GapParams {
    GapParams::default()
}

fn traj_params() -> TrajParams {
    TrajParams {
        velocities: Some(PathBuf::from("vel.xyz")),
        ..TrajParams::default()
    }
}

#[test]
fn defaults_are_valid() {
    gap_params().validate().unwrap();
    TrajParams::default().validate().unwrap();
    CouplingParams::default().validate().unwrap();
    DephasingParams::default().validate().unwrap();
    HistogramParams::default().validate().unwrap();
    RmsfParams::default().validate().unwrap();
    crate::phonon::dos::DosParams::default().validate().unwrap();
    // The default route needs a velocity file, as on the command line.
    refuses(
        "dos default",
        DosRunParams::default().validate(),
        "velocities",
    );
    DosRunParams {
        input: traj_params(),
        ..DosRunParams::default()
    }
    .validate()
    .unwrap();
}

#[test]
fn gap_and_trajectory_inputs_name_their_fields() {
    for skip in [-1.0, f64::NAN, f64::INFINITY] {
        let g = GapParams {
            skip_fs: skip,
            ..gap_params()
        };
        refuses("gap skip", g.validate(), "skip_fs");
        let t = TrajParams {
            skip_fs: skip,
            ..traj_params()
        };
        refuses("traj skip", t.validate(), "skip_fs");
    }
    for dt in [0.0, -2.0, f64::NAN] {
        let t = TrajParams {
            dt_fs: Some(dt),
            ..traj_params()
        };
        refuses("traj dt", t.validate(), "dt_fs");
    }
}

#[test]
fn coupling_params_name_their_fields() {
    let d = CouplingParams::default;
    let bad_input = CouplingParams {
        input: GapParams {
            skip_fs: -1.0,
            ..gap_params()
        },
        ..d()
    };
    refuses("skip", bad_input.validate(), "skip_fs");
    for t in [0.0, -5.0, f64::NAN] {
        let p = CouplingParams {
            temperature_k: t,
            ..d()
        };
        refuses("temperature", p.validate(), "temperature_k");
    }
    let band = |lo_mev, hi_mev| Band { lo_mev, hi_mev };
    for bands in [
        vec![],
        vec![band(4.0, 2.0)],
        vec![band(-1.0, 2.0)],
        vec![band(0.0, 4.0), band(3.0, 5.0)],
    ] {
        let p = CouplingParams {
            bands_mev: bands.clone(),
            ..d()
        };
        refuses(&format!("{bands:?}"), p.validate(), "bands_mev");
    }
    let p = CouplingParams {
        gamma_temperatures_k: vec![10.0, 0.0],
        ..d()
    };
    refuses("Γ temperatures", p.validate(), "gamma_temperatures_k");
}

#[test]
fn dephasing_histogram_dos_rmsf_params_name_their_fields() {
    let skip = GapParams {
        skip_fs: -1.0,
        ..gap_params()
    };
    let p = DephasingParams {
        input: skip.clone(),
        ..DephasingParams::default()
    };
    refuses("dephasing skip", p.validate(), "skip_fs");
    let p = DephasingParams {
        temperature_k: 0.0,
        ..DephasingParams::default()
    };
    refuses("dephasing T", p.validate(), "temperature_k");
    let p = HistogramParams {
        input: skip,
        ..HistogramParams::default()
    };
    refuses("histogram skip", p.validate(), "skip_fs");
    // The labels are counted against the runs before anything is read.
    let p = HistogramParams {
        labels: vec!["a".into()],
        ..HistogramParams::default()
    };
    let runs = [PathBuf::from("absent-1.dat"), PathBuf::from("absent-2.dat")];
    refuses("labels", histograms(&runs, &p, &mut Vec::new()), "labels");

    let dos = || DosRunParams {
        input: traj_params(),
        ..DosRunParams::default()
    };
    let mut p = dos();
    p.spectrum.temperature_k = -1.0;
    refuses("dos T", p.validate(), "temperature_k");
    let mut p = dos();
    p.spectrum.segment_frames = 3;
    refuses("dos segment", p.validate(), "segment_frames");
    let mut p = dos();
    p.input.skip_fs = -1.0;
    refuses("dos skip", p.validate(), "skip_fs");
    let mut p = dos();
    p.input.dt_fs = Some(0.0);
    refuses("dos dt", p.validate(), "dt_fs");
    let mut p = dos();
    p.t_norm = TNorm::Measured;
    refuses("dos t_norm", p.validate(), "t_norm");
    p.ener = Some(PathBuf::from("run.ener"));
    p.validate().unwrap();
    let mut p = dos();
    p.input.velocities = None;
    refuses("dos velocities", p.validate(), "velocities");
    p.spectrum.route = Route::Positions;
    p.validate().unwrap();

    let p = RmsfParams {
        lattice_angstrom: 0.0,
        ..RmsfParams::default()
    };
    refuses("rmsf lattice", p.validate(), "lattice_angstrom");
    let mut p = RmsfParams::default();
    p.input.dt_fs = Some(-1.0);
    refuses("rmsf dt", p.validate(), "dt_fs");
}

/// A skip or MO offset that drops the whole series is refused naming the
/// field; the coupling of a written series matches the one in memory.
#[test]
fn read_gap_checks_and_coupling_of_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("gap.dat");
    let g = SPEC_GRID;
    write_gap(&f, &g, &gap_series(&g, 2400.0, &[(5.0, 20.0)], 1)).unwrap();
    let mut remarks = Vec::new();
    let p = GapParams {
        skip_fs: 1e12,
        ..gap_params()
    };
    refuses("skip all", read_gap(&f, &p, &mut remarks), "skip_fs");
    let p = CouplingParams {
        temperature_k: 10.0,
        ..CouplingParams::default()
    };
    let c = coupling(&f, &p, &mut remarks).unwrap();
    assert!(remarks.is_empty(), "{remarks:?}");
    assert_eq!(c.bands.len(), 3);
    let series = read_gap(&f, &p.input, &mut remarks).unwrap().series;
    assert_eq!(coupling_of(series, &p).unwrap(), c);
    // A band beyond the Nyquist energy is refused with the data at hand.
    let far = CouplingParams {
        bands_mev: vec![Band {
            lo_mev: 900.0,
            hi_mev: 1000.0,
        }],
        ..p
    };
    refuses("nyquist", coupling(&f, &far, &mut remarks), "bands_mev");
}
