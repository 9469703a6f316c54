//! `analyze`: one stack or image from raw frames to columns and ratios —
//! [`prepare`](crate::stem::pipeline::prepare) (registration, background,
//! denoising, deconvolution), then the column analysis
//! ([`analyse_with`](crate::stem::columns::analyse_with): lattice, sites,
//! fits, classes), then the summary of counts, Cs : Pb/Br ratios and
//! spacing. `qdscope analyze` and `qdscope prepare` are this module plus
//! argument parsing and file writing (docs/guide/analyze.md,
//! docs/guide/prepare.md; the methods in docs/methods/).
//!
//! The microscope values of the deconvolution PSF (high tension,
//! convergence angle) come from the input file's metadata unless the
//! caller chose them ([`Source`]); the pixel size from the caller, else
//! from the file. Where each value came from is part of the result
//! ([`ParamSources`], `parameter_sources` in `prepare.json`).
//!
//! The column volumes are measured on the registered average (linear in
//! the counts), the columns found on the prepared image
//! (docs/methods/columns.md).

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array2, Axis};
use serde::{Serialize, Serializer};

use crate::error::{Result, Warnings};
use crate::image::{Image, Stack};
use crate::io::{self, signal::Acquisition};
use crate::stem::columns::{self, ColumnsResult};
use crate::stem::pipeline::{self, CalibrationSource, PrepareParams, Prepared};

mod params;
mod summary;

pub use params::{AnalyzeParams, ParamSources, Source, Sources};
pub use summary::{summarise, PixelSource, Summary};

/// One input of [`analyze`]: frames with what their file said about the
/// acquisition. `From<Stack>` and `From<Image>` give in-memory inputs
/// without metadata; [`Input::read`] reads a file.
#[derive(Debug, Clone)]
pub struct Input {
    /// Name in errors and in the summary (the path, for a file).
    pub name: String,
    /// The frames (one frame for an image).
    pub stack: Stack,
    /// Acquisition values of the file; high tension and convergence angle
    /// are used unless the parameters give them.
    pub acquisition: Acquisition,
    /// Title of the signal read (`image` for NPY, TIFF and in-memory input).
    pub signal: String,
    /// The reader's remarks.
    pub warnings: Warnings,
}

impl Input {
    /// An in-memory stack called `name`, without acquisition metadata.
    #[must_use]
    pub fn new(name: impl Into<String>, stack: Stack) -> Self {
        Input {
            name: name.into(),
            stack,
            acquisition: Acquisition::default(),
            signal: "image".into(),
            warnings: Warnings::default(),
        }
    }

    /// Read signal `signal` (index or title; `None` = the only one) of a
    /// file in any supported format ([`io::load_stack`]).
    ///
    /// # Errors
    /// The reader's errors, naming the file.
    pub fn read(path: &Path, signal: Option<&str>) -> Result<Self> {
        let loaded = io::load_stack(path, signal)?;
        Ok(Input {
            name: path.display().to_string(),
            stack: loaded.stack,
            acquisition: loaded.acquisition,
            signal: loaded.title,
            warnings: loaded.warnings,
        })
    }
}

impl From<Stack> for Input {
    fn from(stack: Stack) -> Self {
        Input::new("stack", stack)
    }
}

impl From<Image> for Input {
    fn from(image: Image) -> Self {
        let stack = Stack {
            data: image.data.insert_axis(Axis(0)),
            calibration: image.calibration,
        };
        Input::new("image", stack)
    }
}

/// The prepare stage of one input: what `qdscope prepare` writes.
#[derive(Debug, Clone)]
pub struct Preparation {
    /// The input's name.
    pub input: String,
    /// Shape of the input, (frames, y, x).
    pub input_shape_frames_y_x: [usize; 3],
    /// The parameters used: the caller's, with the file's microscope
    /// values where the caller gave none.
    pub params: PrepareParams,
    /// Where the pixel size and microscope values came from.
    pub sources: ParamSources,
    /// Every stage's output.
    pub prepared: Prepared,
}

/// Everything [`analyze`] produces. Serialises to JSON with the images as
/// `{shape_y_x, data}` (row-major) and every column, ratio and warning.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// The input's name.
    pub input: String,
    /// Shape of the input, (frames, y, x).
    pub input_shape_frames_y_x: [usize; 3],
    /// The parameters used (the file's microscope values applied).
    pub params: AnalyzeParams,
    /// Where the pixel size and microscope values came from.
    pub sources: ParamSources,
    /// The prepare stage: registered average, background, prepared image,
    /// registration, calibration.
    #[serde(serialize_with = "serial::prepared")]
    pub prepared: Prepared,
    /// The column analysis: columns, classes, ratios, spacings, lattice.
    #[serde(serialize_with = "serial::columns")]
    pub columns: ColumnsResult,
    /// Counts, ratios and spacing as `summary.json` gives them.
    pub summary: Summary,
    /// Every non-fatal remark: the reader's, prepare's, the columns'.
    pub warnings: Warnings,
}

/// Run `prepare` and the column analysis on `input` (a [`Stack`], an
/// [`Image`] or an [`Input`]).
///
/// # Errors
/// [`AnalyzeParams::validate`]; an empty input; a microscope value of the
/// file out of range; every error of `prepare` and of the column analysis
/// (no lattice, one sublattice only, too few columns, …), naming the input.
///
/// # Examples
/// ```
/// use qdscope::stem::analyze::{analyze, AnalyzeParams};
/// use qdscope::stem::synth::{generate, SynthParams};
///
/// // A small synthetic QD: 2 noisy frames of 160 × 160 px at 0.25 Å/px.
/// let synth = SynthParams { rows: 160, cols: 160, frames: 2, n_cells: 5, ..SynthParams::default() };
/// let (stack, _truth) = generate(&synth)?;
/// let mut params = AnalyzeParams::default();
/// params.prepare.denoise.iterations = 10;
/// let a = analyze(stack, &params)?;
/// assert!(a.summary.n_cs > 0 && a.summary.n_pbbr > 0);
/// assert!(a.summary.ratio_volume_mean > 0.0);
/// # Ok::<(), qdscope::Error>(())
/// ```
pub fn analyze(input: impl Into<Input>, params: &AnalyzeParams) -> Result<Analysis> {
    let input = input.into();
    let mut warnings = input.warnings.clone();
    let p = prepare_input(input, params, None)?;
    let r = columns::analyse_with(
        &p.input,
        &p.prepared.prepared,
        Some(&p.prepared.averaged),
        &params.columns,
    )?;
    let source = PixelSource::of(p.prepared.calibration_source);
    let summary = summarise(Path::new(&p.input), &r, source);
    warnings.extend(p.prepared.warnings.clone());
    warnings.extend(r.warnings.clone());
    Ok(Analysis {
        input: p.input,
        input_shape_frames_y_x: p.input_shape_frames_y_x,
        params: AnalyzeParams {
            prepare: p.params,
            columns: params.columns.clone(),
            sources: params.sources,
        },
        sources: p.sources,
        prepared: p.prepared,
        columns: r,
        summary,
        warnings,
    })
}

/// [`analyze`] on signal `signal` (`None` = the only one) of a file.
///
/// # Errors
/// The reader's errors; those of [`analyze`].
pub fn analyze_file(path: &Path, signal: Option<&str>, params: &AnalyzeParams) -> Result<Analysis> {
    analyze(Input::read(path, signal)?, params)
}

/// The prepare stage of [`analyze`]: check the parameters, take the file's
/// microscope values where the caller gave none, run
/// [`pipeline::prepare`] (`psf` replaces the PSF computed from the
/// microscope) and record where each value came from.
///
/// # Errors
/// As [`analyze`], up to the end of `prepare`.
pub fn prepare_input(
    input: Input,
    params: &AnalyzeParams,
    psf: Option<Array2<f64>>,
) -> Result<Preparation> {
    params.validate()?;
    let Input {
        name,
        stack,
        acquisition,
        signal,
        ..
    } = input;
    let mut prepare = params.prepare.clone();
    let mut sources = apply_acquisition(&mut prepare, params.sources, &acquisition)?;
    let stack = Stack::new(stack.data, stack.calibration).map_err(|e| e.context(&name))?;
    let (f, ny, nx) = stack.data.dim();
    let prepared = pipeline::prepare(stack, &prepare, psf).map_err(|e| e.context(&name))?;
    sources.pixel_size_angstrom = match prepared.calibration_source {
        CalibrationSource::User if params.sources.pixel_size_angstrom == Source::Flag => {
            Source::Flag
        }
        CalibrationSource::User => Source::Config,
        CalibrationSource::File => Source::File,
        CalibrationSource::None => Source::Absent,
    };
    Ok(Preparation {
        input: name,
        input_shape_frames_y_x: [f, ny, nx],
        params: prepare,
        sources: ParamSources { signal, sources },
        prepared,
    })
}

/// Take high tension and convergence angle from the file's metadata unless
/// the caller gave them; the sources of both (the pixel size's is decided
/// after `prepare`).
///
/// # Errors
/// A file value out of range (e.g. a corrupt voltage tag).
fn apply_acquisition(p: &mut PrepareParams, given: Sources, acq: &Acquisition) -> Result<Sources> {
    let mut src = given;
    if let (Source::Default, Some(v)) = (given.high_tension_kv, acq.high_tension_kv) {
        p.microscope.high_tension_kv = v;
        src.high_tension_kv = Source::File;
    }
    if let (Source::Default, Some(v)) = (given.convergence_mrad, acq.convergence_mrad) {
        p.microscope.convergence_mrad = v;
        src.convergence_mrad = Source::File;
    }
    if src.high_tension_kv == Source::File || src.convergence_mrad == Source::File {
        p.microscope = p.microscope.validated()?;
    }
    Ok(src)
}

/// Serialisation of the stage results that are not `Serialize` themselves.
mod serial {
    use super::*;

    /// A 2-D image as `{shape_y_x, data}`, data row-major.
    struct Pixels<'a>(&'a Array2<f32>);

    impl Serialize for Pixels<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            #[derive(Serialize)]
            struct View<'a> {
                shape_y_x: [usize; 2],
                data: Data<'a>,
            }
            struct Data<'a>(&'a Array2<f32>);
            impl Serialize for Data<'_> {
                fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                    s.collect_seq(self.0.iter())
                }
            }
            let (ny, nx) = self.0.dim();
            View {
                shape_y_x: [ny, nx],
                data: Data(self.0),
            }
            .serialize(s)
        }
    }

    pub(super) fn prepared<S: Serializer>(
        p: &Prepared,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            prepared: Pixels<'a>,
            averaged: Pixels<'a>,
            calibration: &'a crate::image::Calibration,
            calibration_source: CalibrationSource,
            registered: bool,
            shifts: &'a [crate::stem::register::PairShift],
            rejected_frames: &'a [usize],
            registration_passes: usize,
            background_radius_px: usize,
            crop_offset_yx: [usize; 2],
            stage_seconds: BTreeMap<&'a str, f64>,
            warnings: &'a Warnings,
        }
        View {
            prepared: Pixels(&p.prepared.data),
            averaged: Pixels(&p.averaged.data),
            calibration: &p.calibration,
            calibration_source: p.calibration_source,
            registered: p.registered,
            shifts: &p.registration.shifts,
            rejected_frames: &p.registration.rejected,
            registration_passes: p.registration.passes,
            background_radius_px: p.background_radius_px,
            crop_offset_yx: [p.crop_offset_yx.0, p.crop_offset_yx.1],
            stage_seconds: p.stage_seconds.iter().copied().collect(),
            warnings: &p.warnings,
        }
        .serialize(s)
    }

    pub(super) fn columns<S: Serializer>(
        r: &ColumnsResult,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            pixel_size_angstrom: f64,
            lengths_px: &'a columns::Lengths,
            columns: &'a [columns::Column],
            assignment: &'a crate::stem::sublattice::Assignment,
            ratio_volume: &'a crate::stem::ratio::RatioStats,
            ratio_height: &'a crate::stem::ratio::RatioStats,
            spacing: &'a [columns::Spacing],
            local_lattice: &'a [(usize, crate::stem::lattice::LocalLattice)],
            mask_threshold: Option<f64>,
            mask_pixels: usize,
            lattice: &'a crate::stem::detect::LatticeReport,
            warnings: &'a Warnings,
        }
        View {
            pixel_size_angstrom: r.pixel_size_angstrom,
            lengths_px: &r.lengths,
            columns: &r.columns,
            assignment: &r.assignment,
            ratio_volume: &r.ratio_volume,
            ratio_height: &r.ratio_height,
            spacing: &r.spacing,
            local_lattice: &r.local,
            mask_threshold: r.mask_threshold,
            mask_pixels: r.mask_pixels,
            lattice: &r.lattice,
            warnings: &r.warnings,
        }
        .serialize(s)
    }
}
