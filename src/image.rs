//! Calibrated images and frame stacks.
//!
//! [`Image`] is an `Array2<f32>` indexed `[row (y), column (x)]`; [`Stack`] is
//! an `Array3<f32>` indexed `[frame, y, x]`. Both carry a [`Calibration`]:
//! either a pixel size in Å or an explicit "uncalibrated" state. Length
//! parameters given in Å are converted through [`Calibration::angstrom_to_px`],
//! which fails on an uncalibrated image instead of guessing.

use ndarray::{Array2, Array3, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{check_finite, Error, Result};

/// Pixel size of the study's ADF-STEM images, Å (0.1 Å/px,
/// docs/methods/multislice.md): the default sampling of the simulated images
/// whose columns are fitted, and the scale at which the px defaults of the
/// peak search and the column fits are set.
pub const STUDY_PIXEL_ANGSTROM: f64 = 0.1;

/// Pixel size of an image, or the explicit absence of one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Calibration {
    /// No pixel size known: every length must be given in pixels.
    #[default]
    Uncalibrated,
    /// Square pixels of the given size.
    Calibrated {
        /// Pixel size in Å per pixel.
        pixel_size_angstrom: f64,
    },
}

impl Calibration {
    /// A calibrated pixel size; errors unless it is finite and positive.
    pub fn from_pixel_size(pixel_size_angstrom: f64) -> Result<Self> {
        if pixel_size_angstrom.is_finite() && pixel_size_angstrom > 0.0 {
            Ok(Calibration::Calibrated {
                pixel_size_angstrom,
            })
        } else {
            Err(Error::param(
                "pixel_size_angstrom",
                format!("must be a positive finite number, got {pixel_size_angstrom}"),
            ))
        }
    }

    /// The pixel size in Å, if known.
    #[must_use]
    pub fn pixel_size_angstrom(&self) -> Option<f64> {
        match self {
            Calibration::Uncalibrated => None,
            Calibration::Calibrated {
                pixel_size_angstrom,
            } => Some(*pixel_size_angstrom),
        }
    }

    /// Convert a length in Å to pixels; `what` names the parameter for the error.
    pub fn angstrom_to_px(&self, length_angstrom: f64, what: &str) -> Result<f64> {
        match self.pixel_size_angstrom() {
            Some(p) => Ok(length_angstrom / p),
            None => Err(Error::Uncalibrated {
                what: what.to_string(),
            }),
        }
    }
}

/// One calibrated 2-D image, `[y, x]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Pixel values, `[row (y), column (x)]`.
    pub data: Array2<f32>,
    /// Pixel size.
    pub calibration: Calibration,
}

impl Image {
    /// Wrap an array with its calibration.
    #[must_use]
    pub fn new(data: Array2<f32>, calibration: Calibration) -> Self {
        Image { data, calibration }
    }

    /// `(rows, cols)`.
    #[must_use]
    pub fn shape(&self) -> (usize, usize) {
        self.data.dim()
    }

    /// Error naming the first NaN/Inf pixel as `(y, x)`.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        let (_, nx) = self.data.dim();
        check_finite(what, self.data.iter(), |i| {
            format!("pixel (y={}, x={})", i / nx, i % nx)
        })
    }
}

/// A stack of equally shaped frames, `[frame, y, x]`, with one calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// Pixel values, `[frame, y, x]`.
    pub data: Array3<f32>,
    /// Pixel size shared by all frames.
    pub calibration: Calibration,
}

impl Stack {
    /// Wrap an array; errors if there are no frames or the frames are empty.
    pub fn new(data: Array3<f32>, calibration: Calibration) -> Result<Self> {
        let (f, ny, nx) = data.dim();
        if f == 0 {
            return Err(Error::Empty {
                what: "stack".into(),
                reason: "no frames".into(),
            });
        }
        if ny == 0 || nx == 0 {
            return Err(Error::Empty {
                what: "stack".into(),
                reason: format!("frames have zero size ({ny}x{nx})"),
            });
        }
        Ok(Stack { data, calibration })
    }

    /// Build a stack from separate frames; errors naming the first frame whose
    /// shape differs from frame 0.
    pub fn from_frames(frames: &[Array2<f32>], calibration: Calibration) -> Result<Self> {
        let first = frames.first().ok_or_else(|| Error::Empty {
            what: "stack".into(),
            reason: "no frames".into(),
        })?;
        let (ny, nx) = first.dim();
        let mut data = Array3::<f32>::zeros((frames.len(), ny, nx));
        for (i, f) in frames.iter().enumerate() {
            if f.dim() != (ny, nx) {
                return Err(Error::shape(
                    format!("frame {i}"),
                    format!("{ny}x{nx} like frame 0"),
                    format!("{}x{}", f.nrows(), f.ncols()),
                ));
            }
            data.index_axis_mut(Axis(0), i).assign(f);
        }
        Stack::new(data, calibration)
    }

    /// A single image as a one-frame stack.
    pub fn from_image(image: Image) -> Result<Self> {
        let data = image.data.insert_axis(Axis(0));
        Stack::new(data, image.calibration)
    }

    /// Number of frames.
    #[must_use]
    pub fn n_frames(&self) -> usize {
        self.data.len_of(Axis(0))
    }

    /// `(rows, cols)` of each frame.
    #[must_use]
    pub fn frame_shape(&self) -> (usize, usize) {
        let (_, ny, nx) = self.data.dim();
        (ny, nx)
    }

    /// A view of frame `i` (programmer error if out of range).
    #[must_use]
    pub fn frame(&self, i: usize) -> ArrayView2<'_, f32> {
        self.data.index_axis(Axis(0), i)
    }

    /// Error naming the first NaN/Inf pixel as `(frame, y, x)`.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        let (_, ny, nx) = self.data.dim();
        check_finite(what, self.data.iter(), |i| {
            format!(
                "frame {} pixel (y={}, x={})",
                i / (ny * nx),
                (i / nx) % ny,
                i % nx
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_conversions() {
        let c = Calibration::from_pixel_size(0.1).unwrap();
        assert!((c.angstrom_to_px(12.0, "r").unwrap() - 120.0).abs() < 1e-9);
        let e = Calibration::Uncalibrated
            .angstrom_to_px(12.0, "background_radius_angstrom")
            .unwrap_err();
        assert!(e.to_string().starts_with("background_radius_angstrom"));
        assert!(Calibration::from_pixel_size(0.0).is_err());
        assert!(Calibration::from_pixel_size(f64::NAN).is_err());
    }

    #[test]
    fn stack_validation() {
        let a = Array2::<f32>::zeros((4, 5));
        let b = Array2::<f32>::zeros((4, 4));
        let e = Stack::from_frames(&[a.clone(), b], Calibration::Uncalibrated).unwrap_err();
        assert_eq!(e.to_string(), "frame 1: expected 4x5 like frame 0, got 4x4");
        assert!(Stack::from_frames(&[], Calibration::Uncalibrated).is_err());
        let s = Stack::from_frames(&[a.clone(), a], Calibration::Uncalibrated).unwrap();
        assert_eq!(s.n_frames(), 2);
        assert_eq!(s.frame_shape(), (4, 5));
        let mut d = s.data.clone();
        d[[1, 2, 3]] = f32::NAN;
        let s = Stack::new(d, Calibration::Uncalibrated).unwrap();
        let e = s.check_finite("x.npy").unwrap_err().to_string();
        assert!(e.contains("frame 1 pixel (y=2, x=3)"), "{e}");
    }
}
