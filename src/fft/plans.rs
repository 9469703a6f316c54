//! Plan cache: one complex and one real planner per float type, behind a lock.
//!
//! rustfft and realfft planners already memoise plans by length; the lock
//! only guards the planner while a plan is looked up, never while a
//! transform runs (plans are `Arc`s, used concurrently by rayon workers).

use std::sync::{Arc, Mutex, OnceLock};

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftNum, FftPlanner};

/// Cached planners for one float type.
pub struct Plans<T: FftNum> {
    complex: Mutex<FftPlanner<T>>,
    real: Mutex<RealFftPlanner<T>>,
}

impl<T: FftNum> Default for Plans<T> {
    fn default() -> Self {
        Plans {
            complex: Mutex::new(FftPlanner::new()),
            real: Mutex::new(RealFftPlanner::new()),
        }
    }
}

impl<T: FftNum> Plans<T> {
    /// Forward complex plan of length `n`.
    pub fn forward(&self, n: usize) -> Arc<dyn Fft<T>> {
        lock(&self.complex).plan_fft_forward(n)
    }
    /// Inverse (unnormalised) complex plan of length `n`.
    pub fn inverse(&self, n: usize) -> Arc<dyn Fft<T>> {
        lock(&self.complex).plan_fft_inverse(n)
    }
    /// Real-to-complex plan of length `n`.
    pub fn r2c(&self, n: usize) -> Arc<dyn RealToComplex<T>> {
        lock(&self.real).plan_fft_forward(n)
    }
    /// Complex-to-real (unnormalised) plan of length `n`.
    pub fn c2r(&self, n: usize) -> Arc<dyn ComplexToReal<T>> {
        lock(&self.real).plan_fft_inverse(n)
    }
}

/// A poisoned lock only means another thread panicked while planning; the
/// planner's cache is still valid, so keep using it.
fn lock<P>(m: &Mutex<P>) -> std::sync::MutexGuard<'_, P> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Float types the FFT layer supports (`f32`, `f64`), each with its global
/// plan cache.
pub trait FftFloat: FftNum + num_traits::Float + Send + Sync {
    /// The process-wide plan cache for this type.
    fn plans() -> &'static Plans<Self>;
}

impl FftFloat for f32 {
    fn plans() -> &'static Plans<f32> {
        static P: OnceLock<Plans<f32>> = OnceLock::new();
        P.get_or_init(Plans::default)
    }
}

impl FftFloat for f64 {
    fn plans() -> &'static Plans<f64> {
        static P: OnceLock<Plans<f64>> = OnceLock::new();
        P.get_or_init(Plans::default)
    }
}
