//! `stem::analyze` as a library: parameter checks, config provenance, the
//! file's microscope values, and a small end-to-end run.
use std::fs;

use qdscope::image::{Calibration, Image, Stack};
use qdscope::stem::analyze::{
    analyze, prepare_input, AnalyzeParams, Input, PixelSource, Source, Sources,
};
use qdscope::stem::synth::{generate, SynthParams};
use qdscope::Error;

fn small() -> Stack {
    let p = SynthParams {
        rows: 128,
        cols: 128,
        frames: 3,
        n_cells: 5,
        ..SynthParams::default()
    };
    generate(&p).unwrap().0
}

/// The parameter an error names (`InvalidParameter`).
fn named(e: Error) -> String {
    match e {
        Error::InvalidParameter { name, .. } => name,
        other => panic!("not a parameter error: {other}"),
    }
}

#[test]
fn defaults_are_valid_and_the_clis() {
    let p = AnalyzeParams::default();
    p.validate().unwrap();
    assert_eq!(p.sources, Sources::default());
    assert_eq!(p.sources.high_tension_kv, Source::Default);
    assert_eq!(p.prepare.microscope.high_tension_kv, 300.0);
    assert!(p.prepare.denoise_enabled && p.prepare.deconvolve_enabled);
    assert_eq!(p.columns.lattice_angstrom, 5.87);
}

/// A change to the default parameters.
type Edit = fn(&mut AnalyzeParams);

#[test]
fn each_microscope_check_rejects() {
    let cases: [(&str, Edit); 7] = [
        ("kv", |p| p.prepare.microscope.high_tension_kv = 0.0),
        ("convergence", |p| {
            p.prepare.microscope.convergence_mrad = -2.0
        }),
        ("convergence", |p| {
            p.prepare.microscope.convergence_mrad = 150.0
        }),
        ("defocus", |p| {
            p.prepare.microscope.defocus_angstrom = f64::NAN
        }),
        ("cs", |p| p.prepare.microscope.cs_mm = f64::INFINITY),
        ("cc", |p| p.prepare.microscope.cc_mm = -1.0),
        ("source", |p| {
            p.prepare.microscope.source_size_angstrom = -0.1
        }),
    ];
    for (what, set) in cases {
        let mut p = AnalyzeParams::default();
        set(&mut p);
        let name = named(p.validate().unwrap_err());
        assert!(name.contains(what), "{what}: {name}");
    }
}

#[test]
fn the_microscope_is_checked_when_used_or_given_by_flag() {
    let mut p = AnalyzeParams::default();
    p.prepare.deconvolve_enabled = false;
    p.prepare.microscope.high_tension_kv = -1.0;
    // Unused, from a config or code: not checked (as the command line).
    p.validate().unwrap();
    p.sources.high_tension_kv = Source::Config;
    p.validate().unwrap();
    // Typed on the command line: checked.
    p.sources.high_tension_kv = Source::Flag;
    assert!(named(p.validate().unwrap_err()).contains("kv"));
    // And analyze checks before any work.
    p.prepare.deconvolve_enabled = true;
    p.sources.high_tension_kv = Source::Default;
    let img = Image::new(
        ndarray::Array2::zeros((8, 8)),
        Calibration::from_pixel_size(0.25).unwrap(),
    );
    assert!(named(analyze(img, &p).unwrap_err()).contains("kv"));
}

#[test]
fn config_keys_set_the_provenance() {
    let set = AnalyzeParams::from_toml(
        "[prepare]\npixel_size_angstrom = 0.3\n[prepare.microscope]\nhigh_tension_kv = 200\n\
         [columns]\ninclude_edge = true\n",
    )
    .unwrap();
    assert_eq!(set.prepare.microscope.high_tension_kv, 200.0);
    assert_eq!(set.prepare.pixel_size_angstrom, Some(0.3));
    assert!(set.columns.include_edge);
    assert_eq!(
        set.sources,
        Sources {
            pixel_size_angstrom: Source::Config,
            high_tension_kv: Source::Config,
            convergence_mrad: Source::Default,
        }
    );
    // Set to the default value is still set; an inline table counts too.
    let inline =
        AnalyzeParams::from_toml("[prepare]\nmicroscope = { convergence_mrad = 18.0 }\n").unwrap();
    assert_eq!(inline.sources.convergence_mrad, Source::Config);
    assert_eq!(inline.sources.high_tension_kv, Source::Default);
    // Not set: a key elsewhere or in a comment does not count.
    let unset = AnalyzeParams::from_toml(
        "# high_tension_kv = 200\n[prepare.denoise]\niterations = 5\n[columns]\nseed = 1\n",
    )
    .unwrap();
    assert_eq!(unset.sources, Sources::default());
    assert_eq!(unset.prepare.denoise.iterations, 5);
    // The prepare-only config: the same keys at the top level.
    let prep = AnalyzeParams::from_prepare_toml("[microscope]\nhigh_tension_kv = 80\n").unwrap();
    assert_eq!(prep.sources.high_tension_kv, Source::Config);
    assert_eq!(prep.sources.pixel_size_angstrom, Source::Default);
    assert_eq!(prep.prepare.microscope.high_tension_kv, 80.0);
}

#[test]
fn bad_configs_are_refused() {
    for text in [
        "[prepare\nx=",
        "[bogus]\na = 1\n",
        "[prepare.microscope]\nhigh_tension_kv = \"high\"\n",
    ] {
        let e = AnalyzeParams::from_toml(text).unwrap_err().to_string();
        assert!(e.starts_with("config: invalid config: "), "{e}");
    }
    assert!(AnalyzeParams::from_prepare_toml("[background\n").is_err());
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.toml");
    fs::write(&path, "[columns]\nthreshold_rel = [1]\n").unwrap();
    let e = AnalyzeParams::load_config(&path).unwrap_err().to_string();
    assert!(
        e.contains("bad.toml") && e.contains("invalid config"),
        "{e}"
    );
    let e = AnalyzeParams::load_prepare_config(&tmp.path().join("missing.toml")).unwrap_err();
    assert!(e.to_string().contains("missing.toml"));
}

#[test]
fn file_microscope_values_replace_defaults_only() {
    let mut input = Input::new("qd", small());
    input.acquisition.high_tension_kv = Some(200.0);
    input.acquisition.convergence_mrad = Some(21.0);
    let mut p = AnalyzeParams::default();
    p.prepare.denoise_enabled = false;
    p.prepare.deconvolve.iterations = 2;
    p.prepare.microscope.convergence_mrad = 18.0;
    p.sources.convergence_mrad = Source::Config;
    let r = prepare_input(input.clone(), &p, None).unwrap();
    assert_eq!(r.params.microscope.high_tension_kv, 200.0);
    assert_eq!(r.params.microscope.convergence_mrad, 18.0);
    let s = r.sources.sources;
    assert_eq!(s.high_tension_kv, Source::File);
    assert_eq!(s.convergence_mrad, Source::Config);
    assert_eq!(s.pixel_size_angstrom, Source::File);
    assert_eq!(r.input_shape_frames_y_x, [3, 128, 128]);
    // As prepare.json records them.
    let json = serde_json::to_value(&r.sources).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"signal": "image", "pixel_size_angstrom": "file",
            "high_tension_kv": "file", "convergence_mrad": "config"})
    );
    // A corrupt voltage tag is refused.
    input.acquisition.high_tension_kv = Some(-5.0);
    assert!(named(prepare_input(input, &p, None).unwrap_err()).contains("kv"));
}

#[test]
fn pixel_size_provenance() {
    let mut p = AnalyzeParams::default();
    p.prepare.denoise_enabled = false;
    p.prepare.deconvolve_enabled = false;
    let src = |p: &AnalyzeParams, s: Stack| {
        prepare_input(Input::new("qd", s), p, None)
            .unwrap()
            .sources
            .sources
            .pixel_size_angstrom
    };
    assert_eq!(src(&p, small()), Source::File);
    let mut uncal = small();
    uncal.calibration = Calibration::Uncalibrated;
    p.prepare.background.radius = qdscope::stem::pipeline::Radius::Px(40.0);
    assert_eq!(src(&p, uncal), Source::Absent);
    p.prepare.pixel_size_angstrom = Some(0.3);
    assert_eq!(src(&p, small()), Source::Config);
    p.sources.pixel_size_angstrom = Source::Flag;
    assert_eq!(src(&p, small()), Source::Flag);
    let json = serde_json::to_value(Source::Absent).unwrap();
    assert_eq!(json, "none");
}

#[test]
fn empty_and_uncalibrated_inputs_fail_naming_the_input() {
    let p = AnalyzeParams::default();
    let empty = Image::new(ndarray::Array2::zeros((0, 4)), Calibration::Uncalibrated);
    let e = analyze(empty, &p).unwrap_err().to_string();
    assert!(e.starts_with("image: ") && e.contains("zero size"), "{e}");
    let mut s = small();
    s.calibration = Calibration::Uncalibrated;
    let e = analyze(Input::new("uncal.tif", s), &p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("uncal.tif") && e.contains("uncalibrated"), "{e}");
}

#[test]
fn analyze_gives_a_serialisable_result() {
    let synth = SynthParams {
        rows: 160,
        cols: 160,
        frames: 3,
        n_cells: 5,
        ..SynthParams::default()
    };
    let (stack, _) = generate(&synth).unwrap();
    let mut p = AnalyzeParams::default();
    p.prepare.denoise.iterations = 10;
    let a = analyze(stack, &p).unwrap();
    let s = &a.summary;
    assert!(s.n_cs > 0 && s.n_pbbr > 0);
    assert_eq!(s.pixel_size_source, "file");
    assert_eq!(s.input, "stack");
    assert_eq!(
        PixelSource::of(a.prepared.calibration_source),
        PixelSource::File
    );
    assert_eq!(a.params.prepare.microscope.high_tension_kv, 300.0);
    let j = serde_json::to_value(&a).unwrap();
    let (ny, nx) = a.prepared.prepared.shape();
    assert_eq!(
        j["prepared"]["prepared"]["shape_y_x"],
        serde_json::json!([ny, nx])
    );
    assert_eq!(
        j["prepared"]["prepared"]["data"].as_array().unwrap().len(),
        ny * nx
    );
    assert_eq!(
        j["columns"]["columns"].as_array().unwrap().len(),
        a.columns.columns.len()
    );
    assert_eq!(j["summary"]["n_cs"], s.n_cs);
    assert_eq!(j["sources"]["high_tension_kv"], "default");
    assert_eq!(j["params"]["columns"]["lattice_angstrom"], 5.87);
    assert!(j["params"].get("sources").is_none());
}
