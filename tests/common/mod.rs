//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;
use qdscope::image::{Calibration, Image};
use qdscope::stem::synth::{render_scene, SynthParams};

/// The built `qdscope` binary.
pub fn qdscope() -> Command {
    Command::cargo_bin("qdscope").unwrap()
}

/// A path as `&str` for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Run `qdscope ARGS…` and expect the bad-input contract: exit code 1 and
/// exactly one stderr line `qdscope: error: …` that contains `needle`.
pub fn fail(args: &[&str], needle: &str) {
    let a = qdscope().args(args).assert().failure().code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("qdscope: error: ") && err.contains(needle),
        "{args:?}: {err}"
    );
}

/// A clean 192² synthetic QD image (one frame, 6 cells, no pedestal and no
/// support), calibrated at 0.25 Å/px.
pub fn clean_scene_192() -> Image {
    let p = SynthParams {
        rows: 192,
        cols: 192,
        frames: 1,
        n_cells: 6,
        pedestal: 0.0,
        support_level: 0.0,
        support_variation: 0.0,
        ..SynthParams::default()
    };
    let (img, _) = render_scene(&p).unwrap();
    Image::new(
        img.mapv(|v| v as f32),
        Calibration::from_pixel_size(0.25).unwrap(),
    )
}
