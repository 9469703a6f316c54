//! Robust weights of the volume refit: Tukey biweights of the residual,
//! scaled by the counting noise at each pixel's model value (split from
//! `linear.rs`, which holds the linear solve), and the noise model itself.

use ndarray::{Array2, ArrayView2};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

/// Tukey biweight of each residual: (1 − (r/(c·s(m)))²)² for |r| < c·s(m),
/// 0 beyond, with c = 4.685 (95 % efficiency for Gaussian noise) and s(m)
/// the noise scale at the pixel's model value m = data − r.
///
/// The scale follows the counting statistics: the variance of a detector
/// pixel is affine in its mean (Poisson counts plus read noise), so
/// s(m)² = α + β·m is fitted to the squared normal-equivalent MADs
/// (1.4826 · median |r|) of [`NOISE_BINS`] equal-count bins of pixels
/// sorted by m (weights 1/s⁴, β ≥ 0; α + β·m at least a quarter of the
/// smallest bin variance). With one scale for all pixels (the MAD of every
/// residual), set by the dark background, the peaks of bright columns —
/// whose counting noise is several times the background's — lost weight
/// to their own noise. The gain is small (joint chain, 60 testbed cases:
/// MAE 0.0146 → 0.0141; docs/benchmarks.md); the chain's positive bias
/// under noise has another source. Returns false (weights left as they
/// are) when no scale can be measured.
pub(super) fn tukey_weights(resid: &[f64], data: &[f64], weight: &mut [f64]) -> bool {
    let Some(noise) = noise_model(resid, data) else {
        return false;
    };
    for ((w, r), d) in weight.iter_mut().zip(resid).zip(data) {
        let t = r / (4.685 * noise.variance(d - r).sqrt());
        *w = if t.abs() < 1.0 {
            (1.0 - t * t).powi(2)
        } else {
            0.0
        };
    }
    true
}

/// Bins of the noise model of [`tukey_weights`] (at least 64 pixels each;
/// fewer pixels give fewer bins, one bin a constant scale).
pub(super) const NOISE_BINS: usize = 12;

/// The counting noise of an image as a function of its mean value m:
/// variance α + β·m (Poisson counts plus read noise), at least `floor`.
/// Measured on a fit's residual ([`noise_model`]); used for the robust
/// weights and for the noise check of the volume ratio
/// ([`NoiseModel::perturbed`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NoiseModel {
    /// Variance at m = 0 (image units²).
    pub alpha: f64,
    /// Variance per unit of m (image units).
    pub beta: f64,
    /// Smallest variance (a quarter of the smallest binned variance).
    pub floor: f64,
}

impl NoiseModel {
    /// Noise variance at mean value `m`.
    #[must_use]
    pub fn variance(&self, m: f64) -> f64 {
        (self.alpha + self.beta * m).max(self.floor)
    }
    /// `image` plus independent Gaussian noise of this model's variance
    /// at each pixel's value (a fixed `seed`: the same image every run).
    /// Fitting the result doubles the noise variance of the data: if an
    /// estimate's bias grows in proportion to the noise variance, its
    /// change from `image` to the result measures its bias at `image`'s
    /// noise (as a half-dose jackknife does), plus one draw of its noise
    /// error.
    #[must_use]
    pub fn perturbed(&self, image: ArrayView2<f64>, seed: u64) -> Array2<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        image.mapv(|v| {
            let z: f64 = StandardNormal.sample(&mut rng);
            v + z * self.variance(v).sqrt()
        })
    }
}

/// The noise model s(m)² = α + β·m fitted to binned MADs (see
/// [`tukey_weights`]) of `resid` = `data` − model; None when every residual
/// is zero or not finite.
pub(super) fn noise_model(resid: &[f64], data: &[f64]) -> Option<NoiseModel> {
    let n = resid.len();
    // (model value, pixel), ordered by value then pixel (the order of a
    // stable sort by value); only the bins' members matter, so the bins'
    // edges are selected (O(n log bins)) instead of sorting every pixel.
    let mut keyed: Vec<(f64, usize)> = (0..n).map(|i| (data[i] - resid[i], i)).collect();
    let bins = NOISE_BINS.min(n / 64).max(1);
    let edges: Vec<usize> = (0..=bins).map(|b| b * n / bins).collect();
    partition_at(&mut keyed, &edges, 0);
    let mut pts: Vec<(f64, f64)> = Vec::with_capacity(bins);
    for b in 0..bins {
        let bin = &keyed[edges[b]..edges[b + 1]];
        if bin.is_empty() {
            continue;
        }
        let s = 1.4826 * upper_median(bin.iter().map(|&(_, i)| resid[i].abs()).collect());
        let m = upper_median(bin.iter().map(|&(m, _)| m).collect());
        if s.is_finite() && s > 0.0 && m.is_finite() {
            pts.push((m, s * s));
        }
    }
    if pts.is_empty() {
        return None;
    }
    let floor = 0.25 * pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    // Weighted by 1/s⁴: a binned variance is known to a fixed relative
    // error, so the bright bins must not set the dark end's intercept.
    let w: Vec<f64> = pts.iter().map(|p| 1.0 / (p.1 * p.1)).collect();
    let k: f64 = w.iter().sum();
    let mx = pts.iter().zip(&w).map(|(p, w)| w * p.0).sum::<f64>() / k;
    let my = pts.iter().zip(&w).map(|(p, w)| w * p.1).sum::<f64>() / k;
    let sxx: f64 = pts
        .iter()
        .zip(&w)
        .map(|(p, w)| w * (p.0 - mx).powi(2))
        .sum();
    let sxy: f64 = pts
        .iter()
        .zip(&w)
        .map(|(p, w)| w * (p.0 - mx) * (p.1 - my))
        .sum();
    let beta = if sxx > 0.0 { (sxy / sxx).max(0.0) } else { 0.0 };
    Some(NoiseModel {
        alpha: my - beta * mx,
        beta,
        floor,
    })
}

/// Reorder `v` (offset `at` into the whole) so that every edge of `edges`
/// (indices into the whole, ascending) separates smaller from larger keys,
/// as a sort by (value, index) would: the middle edge by selection, then
/// each side.
fn partition_at(v: &mut [(f64, usize)], edges: &[usize], at: usize) {
    let inner: Vec<usize> = edges
        .iter()
        .copied()
        .filter(|&e| e > at && e < at + v.len())
        .collect();
    if inner.is_empty() {
        return;
    }
    let mid = inner[inner.len() / 2];
    v.select_nth_unstable_by(mid - at, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (left, right) = v.split_at_mut(mid - at);
    partition_at(left, &inner[..inner.len() / 2], at);
    partition_at(right, &inner[inner.len() / 2 + 1..], mid);
}

/// The element at index n/2 of `v` sorted (the upper median; `v` not
/// empty).
fn upper_median(mut v: Vec<f64>) -> f64 {
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, f64::total_cmp).1
}

#[cfg(test)]
mod noise_tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};
    use rand_distr::{Distribution, Normal};

    /// Residuals drawn with variance 4 + 0.5·m over m in 0…400: the fitted
    /// scale is within 10 % of the truth at both ends, and a residual of
    /// 3 true s.d. keeps a weight > 0.3 at the bright end (one global MAD
    /// scale gave it weight 0 there).
    #[test]
    fn noise_scale_follows_an_affine_variance() {
        let mut rng = StdRng::seed_from_u64(3);
        let n = 20_000;
        let model: Vec<f64> = (0..n)
            .map(|i| 400.0 * (i as f64 / n as f64).powi(3))
            .collect();
        let sd = |m: f64| (4.0 + 0.5 * m).sqrt();
        let resid: Vec<f64> = model
            .iter()
            .map(|&m| Normal::new(0.0, sd(m)).unwrap().sample(&mut rng))
            .collect();
        let data: Vec<f64> = model.iter().zip(&resid).map(|(m, r)| m + r).collect();
        let s = noise_model(&resid, &data).unwrap();
        for m in [2.0, 100.0, 390.0] {
            let rel = s.variance(m).sqrt() / sd(m) - 1.0;
            assert!(
                rel.abs() < 0.10,
                "m = {m}: scale {} vs {}",
                s.variance(m).sqrt(),
                sd(m)
            );
        }
        let mut r = resid.clone();
        let mut d = data.clone();
        r[n - 1] = 3.0 * sd(model[n - 1]);
        d[n - 1] = model[n - 1] + r[n - 1];
        let mut w = vec![1.0; n];
        assert!(tukey_weights(&r, &d, &mut w));
        assert!(w[n - 1] > 0.3, "weight {}", w[n - 1]);
        assert!(noise_model(&[0.0; 100], &[1.0; 100]).is_none());
    }

    /// The bins' edges by selection hold the same pixels as a stable sort
    /// by value would put there, ties across an edge included.
    #[test]
    fn partition_at_matches_a_stable_sort() {
        let mut rng = StdRng::seed_from_u64(5);
        for n in [1usize, 7, 64, 1000, 5003] {
            let vals: Vec<f64> = (0..n)
                .map(|_| f64::from(rand::Rng::gen_range(&mut rng, 0..9u8)))
                .collect();
            let mut keyed: Vec<(f64, usize)> = vals.iter().copied().zip(0..).collect();
            let edges: Vec<usize> = (0..=12).map(|b| b * n / 12).collect();
            partition_at(&mut keyed, &edges, 0);
            let mut sorted: Vec<usize> = (0..n).collect();
            sorted.sort_by(|&i, &j| vals[i].total_cmp(&vals[j]));
            for b in 0..12 {
                let mut got: Vec<usize> =
                    keyed[edges[b]..edges[b + 1]].iter().map(|k| k.1).collect();
                let mut want = sorted[edges[b]..edges[b + 1]].to_vec();
                got.sort_unstable();
                want.sort_unstable();
                assert_eq!(got, want, "n {n} bin {b}");
            }
        }
    }

    /// The added noise has the model's variance at each pixel's value
    /// (within 3 % over 40 000 pixels per level), mean 0, and the same
    /// seed gives the same image.
    #[test]
    fn perturbed_adds_the_model_variance() {
        let nm = NoiseModel {
            alpha: 4.0,
            beta: 0.5,
            floor: 1.0,
        };
        let mut img = ndarray::Array2::<f64>::zeros((400, 200));
        img.slice_mut(ndarray::s![200.., ..]).fill(100.0);
        let a = nm.perturbed(img.view(), 7);
        assert_eq!(a, nm.perturbed(img.view(), 7));
        for (rows, m) in [(0..200, 0.0), (200..400, 100.0)] {
            let d: Vec<f64> = a
                .slice(ndarray::s![rows, ..])
                .iter()
                .map(|v| v - m)
                .collect();
            let mean = d.iter().sum::<f64>() / d.len() as f64;
            let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d.len() as f64;
            let want = nm.variance(m);
            assert!((var / want - 1.0).abs() < 0.03, "m {m}: {var} vs {want}");
            assert!(
                mean.abs() < 4.0 * (want / d.len() as f64).sqrt(),
                "mean {mean}"
            );
        }
    }
}
