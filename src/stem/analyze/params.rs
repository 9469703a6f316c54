//! The parameters of [`analyze`](super::analyze): `prepare`'s and the column
//! analysis's, where the values a file can also supply came from, the checks
//! made before any work, and the TOML configs of `qdscope prepare` and
//! `qdscope analyze` (docs/guide/prepare.md, docs/guide/analyze.md).

use std::path::Path;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stem::columns::ColumnsParams;
use crate::stem::pipeline::PrepareParams;

/// Where a parameter's value came from. Serialised as `prepare.json`
/// records it in `parameter_sources`: `default`, `config`, `flag`, `file`,
/// `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The built-in default: a value the input file states replaces it.
    #[default]
    Default,
    /// A config file, or a program that chose the value in code: the
    /// file's value does not replace it.
    Config,
    /// A command-line flag: as `Config`, and checked even when unused.
    Flag,
    /// The input file's metadata.
    File,
    /// No value at all (the pixel size of an uncalibrated input).
    #[serde(rename = "none")]
    Absent,
}

/// The provenance of the parameters an input file can also supply. In
/// [`AnalyzeParams`] each is `Default`, `Config` or `Flag`; after a run
/// ([`ParamSources`]) also `File` or `Absent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Sources {
    /// Pixel size, Å/px.
    pub pixel_size_angstrom: Source,
    /// High tension of the deconvolution PSF, kV.
    pub high_tension_kv: Source,
    /// Convergence semi-angle of the deconvolution PSF, mrad.
    pub convergence_mrad: Source,
}

/// Where the values of a run came from, with the signal read:
/// `parameter_sources` of `prepare.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamSources {
    /// Title of the signal read from the input.
    pub signal: String,
    /// Provenance of each value.
    #[serde(flatten)]
    pub sources: Sources,
}

/// Every parameter of [`analyze`](super::analyze): `prepare` then the
/// column analysis. Deserialises from a pipeline TOML with `[prepare]` and
/// `[columns]` tables (unknown top-level tables are refused); `Default`
/// is the command line's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyzeParams {
    /// Parameters of `prepare` (registration, background, denoising,
    /// deconvolution).
    pub prepare: PrepareParams,
    /// Parameters of the column analysis.
    pub columns: ColumnsParams,
    /// Who chose the values a file can also supply; not a config key (the
    /// config loaders fill it).
    #[serde(skip)]
    pub sources: Sources,
}

/// The keys of a `prepare` table that decide provenance: `Some` when the
/// key is present, whatever its value (the full parse checks the value).
#[derive(Debug, Default, Deserialize)]
struct PrepareKeys {
    pixel_size_angstrom: Option<IgnoredAny>,
    #[serde(default)]
    microscope: MicroscopeKeys,
}

#[derive(Debug, Default, Deserialize)]
struct MicroscopeKeys {
    high_tension_kv: Option<IgnoredAny>,
    convergence_mrad: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
struct PipelineKeys {
    #[serde(default)]
    prepare: PrepareKeys,
}

impl PrepareKeys {
    fn sources(&self) -> Sources {
        let of = |set: bool| if set { Source::Config } else { Source::Default };
        Sources {
            pixel_size_angstrom: of(self.pixel_size_angstrom.is_some()),
            high_tension_kv: of(self.microscope.high_tension_kv.is_some()),
            convergence_mrad: of(self.microscope.convergence_mrad.is_some()),
        }
    }
}

/// Parse TOML text into `T`, the error as one line.
fn parse<T: serde::de::DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
    toml::from_str(text).map_err(|e| format!("invalid config: {}", e.message().replace('\n', " ")))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

impl AnalyzeParams {
    /// Check the parameters before any work: the iteration counts of the
    /// stages that run (1 … [`MAX_ITERATIONS`](crate::stem::limits::MAX_ITERATIONS)),
    /// the microscope of the deconvolution PSF (high tension 1 … 3000 kV, convergence in (0, 100] mrad,
    /// aberrations finite) when deconvolution runs or a value came from a
    /// flag. The stages check the rest against the image (radii, pixel
    /// size, lattice); the file's microscope values are checked when read.
    ///
    /// # Errors
    /// The first invalid value, naming its field.
    pub fn validate(&self) -> Result<()> {
        let s = &self.sources;
        if self.prepare.denoise_enabled {
            crate::stem::limits::iterations("denoise_iterations", self.prepare.denoise.iterations)?;
        }
        if self.prepare.deconvolve_enabled {
            crate::stem::limits::iterations(
                "deconv_iterations",
                self.prepare.deconvolve.iterations,
            )?;
        }
        if self.prepare.deconvolve_enabled
            || s.high_tension_kv == Source::Flag
            || s.convergence_mrad == Source::Flag
        {
            self.prepare.microscope.validated()?;
        }
        Ok(())
    }

    /// Parse a pipeline TOML (`[prepare]` and `[columns]` tables); the
    /// pixel size, high tension and convergence angle it sets are marked
    /// [`Source::Config`].
    ///
    /// # Errors
    /// Invalid TOML, a value of the wrong type, an unknown top-level table
    /// (as `Error::InvalidParameter` named `config`).
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::parse_pipeline(text).map_err(|e| Error::param("config", e))
    }

    /// [`from_toml`](Self::from_toml) on a file.
    ///
    /// # Errors
    /// I/O errors; the errors of `from_toml`, naming the file.
    pub fn load_config(path: &Path) -> Result<Self> {
        Self::parse_pipeline(&read(path)?).map_err(|e| Error::format(path, e))
    }

    /// Parse a `prepare` TOML (every parameter of `prepare` at the top
    /// level; the columns keep their defaults), marking the values set as in
    /// [`from_toml`](Self::from_toml).
    ///
    /// # Errors
    /// Invalid TOML or a value of the wrong type (`InvalidParameter`
    /// named `config`).
    pub fn from_prepare_toml(text: &str) -> Result<Self> {
        Self::parse_prepare(text).map_err(|e| Error::param("config", e))
    }

    /// [`from_prepare_toml`](Self::from_prepare_toml) on a file.
    ///
    /// # Errors
    /// I/O errors; the errors of `from_prepare_toml`, naming the file.
    pub fn load_prepare_config(path: &Path) -> Result<Self> {
        Self::parse_prepare(&read(path)?).map_err(|e| Error::format(path, e))
    }

    fn parse_pipeline(text: &str) -> std::result::Result<Self, String> {
        let mut p: AnalyzeParams = parse(text)?;
        p.sources = parse::<PipelineKeys>(text)?.prepare.sources();
        Ok(p)
    }

    fn parse_prepare(text: &str) -> std::result::Result<Self, String> {
        Ok(AnalyzeParams {
            prepare: parse(text)?,
            columns: ColumnsParams::default(),
            sources: parse::<PrepareKeys>(text)?.sources(),
        })
    }
}
