//! Projected atomic potentials from the Kirkland parametrisation
//! (docs/methods/multislice.md): electron scattering factors
//! `f_e(q) = Σ a_i/(q² + b_i) + Σ c_i exp(−d_i q²)` (Å, q in 1/Å) and
//! projected potentials `v_z(r) = 4π²a₀e Σ a_i K₀(2πr√b_i) +
//! 2π²a₀e Σ (c_i/d_i) exp(−π²r²/d_i)` (V·Å), and the slice potential built
//! band-limited in Fourier space, `V(k) = (2πa₀e/L²) Σ_atoms f_e(|k|)
//! exp(−2πi k·r_a)`, so there is no r = 0 singularity.
//!
//! Parameters: E. J. Kirkland, *Advanced Computing in Electron Microscopy*,
//! 2nd ed. (Springer 2010), Appendix C (3 Lorentzians + 3 Gaussians fitted
//! to Dirac–Fock scattering factors), as tabulated in Kirkland (2010), Appendix C.
//! Elements: every element the structure builder makes — Cs, Pb, Br (the
//! crystal of the thickness series) and Ca (the B site of the CsCaBr3
//! shell, Kirkland's Z = 20 row).

use std::sync::{Arc, PoisonError};

use num_complex::Complex;
use num_traits::Zero;

use crate::error::{Error, Result};
use crate::fft::{fftfreq, FftFloat, Plane2, Plane2Scratch};
use crate::multislice::propagate::{c, Engine, Grid};
use crate::structure::Element;

/// a₀·e in V·Å² (Bohr radius × elementary charge, Kirkland's units).
pub const A0E_V_A2: f64 = 7.619_96;

/// 2π a₀e: the 2-D Fourier transform of v_z is this × f_e (V·Å²).
pub const TWO_PI_A0E: f64 = std::f64::consts::TAU * A0E_V_A2;

/// Kirkland's 12 parameters of one element.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kirkland {
    /// Lorentzian amplitudes a₁..a₃.
    pub a: [f64; 3],
    /// Lorentzian widths b₁..b₃ (Å⁻²).
    pub b: [f64; 3],
    /// Gaussian amplitudes c₁..c₃.
    pub c: [f64; 3],
    /// Gaussian widths d₁..d₃ (Å²).
    pub d: [f64; 3],
}

/// Kirkland parameters of `e`.
///
/// # Errors
/// An element without tabulated parameters (none of the builder's
/// elements; kept for elements added to [`Element`] later).
pub fn kirkland(e: Element) -> Result<Kirkland> {
    Ok(match e {
        Element::Cs => Kirkland {
            a: [2.95236854, 0.428105721, 1.89599233],
            b: [6.01461952, 46.4151246, 0.180109756],
            c: [0.0548012938, 4.708386, 0.590356719],
            d: [0.0712799633, 45.6702799, 0.47023631],
        },
        Element::Pb => Kirkland {
            a: [1.00795975, 3.09796153, 3.61296864],
            b: [0.117268427, 0.880453235, 14.7325812],
            c: [0.262401476, 0.405621995, 0.0131812509],
            d: [0.143491014, 1.04103506, 0.0239575415],
        },
        Element::Br => Kirkland {
            a: [1.1413617, 0.518118737, 1.85731975],
            b: [0.21870871, 193.916682, 2.65755396],
            c: [0.168217399, 0.975705606, 0.0072418787],
            d: [0.271719918, 4.194825, 0.0199325718],
        },
        Element::Ca => Kirkland {
            a: [0.366902871, 0.866378999, 0.6672033],
            b: [0.0614274129, 0.570881727, 7.82965639],
            c: [0.487743636, 1.82406314, 0.0220248453],
            d: [1.32531318, 21.0056032, 0.091185345],
        },
    })
}

impl Kirkland {
    /// Electron scattering factor f_e(q) in Å, q = |k| in 1/Å.
    #[must_use]
    pub fn fe(&self, q: f64) -> f64 {
        let q2 = q * q;
        (0..3)
            .map(|i| self.a[i] / (q2 + self.b[i]) + self.c[i] * (-self.d[i] * q2).exp())
            .sum()
    }

    /// Projected potential v_z(r) in V·Å at radius r (Å, > 0).
    #[must_use]
    pub fn vz(&self, r: f64) -> f64 {
        let pi = std::f64::consts::PI;
        let mut s = 0.0;
        for i in 0..3 {
            s += 4.0 * pi * pi * A0E_V_A2 * self.a[i] * bessel_k0(2.0 * pi * r * self.b[i].sqrt());
            s += 2.0 * pi * pi * A0E_V_A2 * self.c[i] / self.d[i]
                * (-pi * pi * r * r / self.d[i]).exp();
        }
        s
    }
}

/// Modified Bessel function I₀ (Abramowitz & Stegun 9.8.1–9.8.2).
fn bessel_i0(x: f64) -> f64 {
    let t = x / 3.75;
    if x.abs() < 3.75 {
        let t2 = t * t;
        1.0 + t2
            * (3.515_622_9
                + t2 * (3.089_942_4
                    + t2 * (1.206_749_2
                        + t2 * (0.265_973_2 + t2 * (0.036_076_8 + t2 * 0.004_581_3)))))
    } else {
        let u = 1.0 / t;
        (x.exp() / x.sqrt())
            * (0.398_942_28
                + u * (0.013_285_92
                    + u * (0.002_253_19
                        + u * (-0.001_575_65
                            + u * (0.009_162_81
                                + u * (-0.020_577_06
                                    + u * (0.026_355_37
                                        + u * (-0.016_476_33 + u * 0.003_923_77))))))))
    }
}

/// Modified Bessel function K₀ for x > 0 (Abramowitz & Stegun 9.8.5–9.8.6;
/// |ε| < 1e-8 for x ≤ 2, < 2e-7 relative above).
#[must_use]
pub fn bessel_k0(x: f64) -> f64 {
    if x <= 2.0 {
        let t2 = (x / 2.0) * (x / 2.0);
        -(x / 2.0).ln() * bessel_i0(x)
            + (-0.577_215_66
                + t2 * (0.422_784_20
                    + t2 * (0.230_697_56
                        + t2 * (0.034_885_90
                            + t2 * (0.002_626_98 + t2 * (0.000_107_50 + t2 * 0.000_007_40))))))
    } else {
        let u = 2.0 / x;
        ((-x).exp() / x.sqrt())
            * (1.253_314_14
                + u * (-0.078_323_58
                    + u * (0.021_895_68
                        + u * (-0.010_624_46
                            + u * (0.005_878_72 + u * (-0.002_515_40 + u * 0.000_532_08))))))
    }
}

/// exp(−2πi k·r) of one atom as its ky and kx factors.
type SeparablePhase = (Vec<Complex<f64>>, Vec<Complex<f64>>);

/// Slice potentials and transmission functions on an engine's grids.
impl<T: FftFloat> Engine<T> {
    /// Projected potential of a slice (V·Å, real space), built in Fourier
    /// space from the atoms' (element, (y, x) Å) positions, scaled by `s`.
    ///
    /// # Errors
    /// An element without Kirkland parameters.
    pub fn slice_potential(&self, atoms: &[(Element, [f64; 2])], s: f64) -> Result<Vec<f64>> {
        let mut spec = self.potential_spectrum(self.grid, atoms, s)?;
        // v(r) = Σ_k V(k) e^{2πik·r} = N²·IFFT(V).
        let n = self.grid.n;
        let plane = Plane2::<f64>::new(n, n);
        plane.inverse(&mut spec, &mut plane.scratch());
        let nn = (n * n) as f64;
        Ok(spec.iter().map(|v| v.re * nn).collect())
    }

    /// The `f_e` table of `element` on the `n × n` grid of side L (cached).
    fn fe_table(&self, n: usize, element: Element) -> Result<Arc<Vec<f64>>> {
        let mut cache = self.fe_cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, t)) = cache.iter().find(|(m, e, _)| *m == n && *e == element) {
            return Ok(Arc::clone(t));
        }
        let kp = kirkland(element)?;
        let l2 = self.grid.l_angstrom * self.grid.l_angstrom;
        let f = fftfreq(n, self.grid.l_angstrom / n as f64);
        let t: Arc<Vec<f64>> = Arc::new(
            f.iter()
                .flat_map(|&ky| f.iter().map(move |&kx| (ky * ky + kx * kx).sqrt()))
                .map(|q| kp.fe(q) * TWO_PI_A0E / l2)
                .collect(),
        );
        cache.push((n, element, Arc::clone(&t)));
        Ok(t)
    }

    /// Fourier coefficients V(k) (FFT order) of the projected potential of
    /// `atoms` ((element, (y, x) Å)) on `grid` (this engine's side L),
    /// scaled by `s`: `V(k) = Σ_atoms f_e(|k|)·2πa₀e/L² · e^{−2πik·r}`,
    /// built row by row so a row stays in cache over all atoms.
    pub(super) fn potential_spectrum(
        &self,
        grid: Grid,
        atoms: &[(Element, [f64; 2])],
        s: f64,
    ) -> Result<Vec<Complex<f64>>> {
        let n = grid.n;
        let f = fftfreq(n, grid.dx());
        let ph = |kk: f64, r: f64| Complex::from_polar(1.0, -std::f64::consts::TAU * kk * r);
        // Per element present: its table and the separable phases
        // exp(−2πi k·r) = ey(ky)·ex(kx) of its atoms.
        let mut groups = Vec::new();
        for e in Element::ALL {
            let here: Vec<[f64; 2]> = atoms.iter().filter(|a| a.0 == e).map(|a| a.1).collect();
            if here.is_empty() {
                continue;
            }
            let fe = self.fe_table(n, e)?;
            let phases: Vec<SeparablePhase> = here
                .iter()
                .map(|&[y, x]| {
                    (
                        f.iter().map(|&kk| ph(kk, y)).collect(),
                        f.iter().map(|&kk| ph(kk, x)).collect(),
                    )
                })
                .collect();
            groups.push((fe, phases));
        }
        let mut spec = vec![Complex::<f64>::zero(); n * n];
        let mut acc = vec![Complex::<f64>::zero(); n];
        // The potential is real: V(−k) = V(k)*, so rows ky < 0 (i > n/2)
        // are mirrored from rows n − i instead of summed.
        for (i, row) in spec.chunks_mut(n).enumerate().take(n / 2 + 1) {
            for (fe, phases) in &groups {
                acc.iter_mut().for_each(|v| *v = Complex::zero());
                for (ey, ex) in phases {
                    let c = ey[i];
                    for (a, &e) in acc.iter_mut().zip(ex) {
                        *a += c * e;
                    }
                }
                for ((v, a), &w) in row.iter_mut().zip(&acc).zip(&fe[i * n..(i + 1) * n]) {
                    *v += a * (w * s);
                }
            }
        }
        let (top, bottom) = spec.split_at_mut((n / 2 + 1) * n);
        for (k, row) in bottom.chunks_mut(n).enumerate() {
            let i = n / 2 + 1 + k;
            let src = &top[(n - i) * n..][..n];
            for (x, v) in row.iter_mut().enumerate() {
                *v = src[(n - x) % n].conj();
            }
            // Even n: the Nyquist column −n/2 is its own mirror only on
            // pixel positions, so it is summed like the top rows.
            if n.is_multiple_of(2) {
                let x = n / 2;
                row[x] = groups
                    .iter()
                    .map(|(fe, phases)| {
                        phases
                            .iter()
                            .map(|(ey, ex)| ey[i] * ex[x])
                            .sum::<Complex<f64>>()
                            * (fe[i * n + x] * s)
                    })
                    .sum();
            }
        }
        Ok(spec)
    }

    /// Transmission of a slice computed on an `m`-times finer grid and
    /// band-limited onto this one: `exp(iσ v)` of the finely sampled
    /// potential, Fourier coefficients |k| ≤ k_max kept (the 2/3 limit of
    /// this grid). The projected potential is singular (logarithmically) at
    /// the nuclei, so its samples on the working grid depend on where the
    /// atom sits between pixels; exponentiating on a finer grid removes most
    /// of that aliasing. `m = 1` is [`Engine::transmission`] of
    /// [`Engine::slice_potential`].
    ///
    /// # Errors
    /// An element without Kirkland parameters; `m = 0`.
    pub fn transmission_of(
        &self,
        atoms: &[(Element, [f64; 2])],
        m: usize,
        sc: &mut Plane2Scratch<T>,
    ) -> Result<Vec<Complex<T>>> {
        if m == 0 {
            return Err(Error::param("potential oversampling", "must be ≥ 1"));
        }
        if m == 1 {
            let v = self.slice_potential(atoms, 1.0)?;
            return Ok(self.transmission(&v, sc));
        }
        let n = self.grid.n;
        let nf = m * n;
        let fine = Grid {
            n: nf,
            l_angstrom: self.grid.l_angstrom,
        };
        // v(r) = nf²·IFFT(V) and t = exp(iσv), in place.
        let mut t = self.potential_spectrum(fine, atoms, 1.0)?;
        let plane = Plane2::<f64>::new(nf, nf);
        let mut fs = plane.scratch();
        plane.inverse(&mut t, &mut fs);
        let k = self.sigma * (nf * nf) as f64;
        t.iter_mut()
            .for_each(|v| *v = Complex::from_polar(1.0, k * v.re));
        plane.forward(&mut t, &mut fs);
        // Fourier coefficients T(k) = FFT/nf²; the working grid's index i
        // (FFT order) is the fine grid's i (k ≥ 0) or i + nf − n (k < 0).
        let map = |i: usize| if i < n.div_ceil(2) { i } else { i + nf - n };
        let norm = (n * n) as f64 / (nf * nf) as f64;
        let mut out = vec![Complex::<T>::zero(); n * n];
        for (idx, (o, &b)) in out.iter_mut().zip(&self.band).enumerate() {
            if b {
                let v = t[map(idx / n) * nf + map(idx % n)] * norm;
                *o = c(v.re, v.im);
            }
        }
        // w(r) = Σ_k T(k) e^{2πik·r} = n²·IFFT(T) (normalised inverse).
        self.plane.inverse(&mut out, sc);
        Ok(out)
    }

    /// Transmission `exp(iσ v)` band-limited to |k| ≤ k_max (real space).
    #[must_use]
    pub fn transmission(&self, v: &[f64], s: &mut Plane2Scratch<T>) -> Vec<Complex<T>> {
        let mut t: Vec<Complex<T>> = v
            .iter()
            .map(|&p| {
                let ph = self.sigma * p;
                c(ph.cos(), ph.sin())
            })
            .collect();
        self.plane.forward(&mut t, s);
        for (x, &b) in t.iter_mut().zip(&self.band) {
            if !b {
                *x = Complex::zero();
            }
        }
        self.plane.inverse(&mut t, s);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs()
    }

    #[test]
    fn scattering_factors_and_potentials_match_the_spec() {
        // (element, f_e(0), f_e(0.5), f_e(2), v_z(0.1), v_z(0.5), v_z(1.0), ∫v_z)
        let table = [
            (
                Element::Cs,
                16.38050,
                5.46737,
                0.88808,
                1223.535,
                167.669,
                41.7111,
                784.259,
            ),
            (
                Element::Pb,
                13.04036,
                6.30501,
                1.23854,
                1515.942,
                154.539,
                30.0024,
                624.341,
            ),
            (
                Element::Br,
                7.07136,
                3.58283,
                0.61557,
                804.332,
                97.653,
                16.1440,
                338.560,
            ),
        ];
        for (e, f0, f05, f2, v01, v05, v1, integral) in table {
            let k = kirkland(e).unwrap();
            assert!(rel(k.fe(0.0), f0) < 1e-5, "{e:?} fe(0) {}", k.fe(0.0));
            assert!(rel(k.fe(0.5), f05) < 1e-5, "{e:?} fe(0.5) {}", k.fe(0.5));
            assert!(rel(k.fe(2.0), f2) < 1e-5, "{e:?} fe(2) {}", k.fe(2.0));
            assert!(rel(k.vz(0.1), v01) < 1e-4, "{e:?} vz(0.1) {}", k.vz(0.1));
            assert!(rel(k.vz(0.5), v05) < 1e-4, "{e:?} vz(0.5) {}", k.vz(0.5));
            assert!(rel(k.vz(1.0), v1) < 1e-4, "{e:?} vz(1) {}", k.vz(1.0));
            // ∫ v_z d²r = 2π ∫ r v_z dr, r = e^u (log-spaced trapezoid).
            let (u0, u1, n) = (-14.0f64, 3.5f64, 200_000);
            let h = (u1 - u0) / n as f64;
            let mut s = 0.0;
            for i in 0..=n {
                let r = (u0 + i as f64 * h).exp();
                let w = if i == 0 || i == n { 0.5 } else { 1.0 };
                s += w * r * r * k.vz(r);
            }
            let num = std::f64::consts::TAU * s * h;
            assert!(rel(num, integral) < 1e-4, "{e:?} ∫v_z = {num}");
            assert!(rel(TWO_PI_A0E * k.fe(0.0), integral) < 1e-4);
        }
    }

    /// Mott–Bethe: at large q the Lorentzians give f_e q² → Σa_i, which
    /// must approach Z/(2π²a₀) (a₀ = 0.529177 Å; the fits end at
    /// q ≈ 12 Å⁻¹, so within 6 %). Catches a swapped or mistyped row,
    /// Ca's included (its row has no reference test values).
    #[test]
    fn lorentzian_amplitudes_follow_mott_bethe() {
        for (e, z) in [
            (Element::Cs, 55.0),
            (Element::Pb, 82.0),
            (Element::Ca, 20.0),
            (Element::Br, 35.0),
        ] {
            let k = kirkland(e).unwrap();
            let sum: f64 = k.a.iter().sum();
            let want = z / (2.0 * std::f64::consts::PI.powi(2) * 0.529_177);
            assert!(
                rel(sum, want) < 0.06,
                "{e:?}: Σa = {sum}, Z/(2π²a₀) = {want}"
            );
            // At q = 20 Å⁻¹ the Gaussians are gone: f_e = Σ a_i/(q² + b_i).
            let lor: f64 = (0..3).map(|i| k.a[i] / (400.0 + k.b[i])).sum();
            assert!(rel(k.fe(20.0), lor) < 1e-3, "{e:?}");
        }
        // Ca: f_e(0) = Σ a/b + Σ c.
        let ca = kirkland(Element::Ca).unwrap();
        let f0: f64 = (0..3).map(|i| ca.a[i] / ca.b[i] + ca.c[i]).sum();
        assert!(
            rel(ca.fe(0.0), f0) < 1e-12 && (9.90..9.92).contains(&f0),
            "{f0}"
        );
    }

    #[test]
    fn k0_values() {
        // K₀(0.5) = 0.9244190712, K₀(1) = 0.4210244382, K₀(3) = 0.0347395044.
        assert!(rel(bessel_k0(0.5), 0.924_419_071_2) < 1e-7);
        assert!(rel(bessel_k0(1.0), 0.421_024_438_2) < 1e-7);
        assert!(rel(bessel_k0(3.0), 0.034_739_504_4) < 3e-7);
    }

    /// The spectrum built for ky ≥ 0 and mirrored equals the full
    /// structure-factor sum on odd and even grids (1e-12 relative).
    #[test]
    fn mirrored_potential_spectrum_equals_the_full_sum() {
        for n in [15usize, 16] {
            let grid = Grid { n, l_angstrom: 7.3 };
            let e = Engine::<f64>::new(grid, 300.0, 2.0).unwrap();
            let atoms = [
                (Element::Cs, [0.3, 1.7]),
                (Element::Br, [5.2, 0.9]),
                (Element::Br, [2.5, 6.6]),
                (Element::Pb, [3.65, 3.65]),
            ];
            let got = e.potential_spectrum(grid, &atoms, 1.5).unwrap();
            let f = fftfreq(n, grid.dx());
            let l2 = 7.3f64 * 7.3;
            let mut worst = 0.0f64;
            let mut peak = 0.0f64;
            for (i, &ky) in f.iter().enumerate() {
                for (j, &kx) in f.iter().enumerate() {
                    let q = (ky * ky + kx * kx).sqrt();
                    let want: Complex<f64> = atoms
                        .iter()
                        .map(|&(el, [y, x])| {
                            let fe = kirkland(el).unwrap().fe(q) * TWO_PI_A0E / l2 * 1.5;
                            Complex::from_polar(fe, -std::f64::consts::TAU * (ky * y + kx * x))
                        })
                        .sum();
                    worst = worst.max((got[i * n + j] - want).norm());
                    peak = peak.max(want.norm());
                }
            }
            assert!(worst < 1e-12 * peak, "n = {n}: {worst} of {peak}");
        }
    }
}
