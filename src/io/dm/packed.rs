//! DM "packed complex" (DataType 5) images.

/// Unpack DM's "packed complex" (DataType 5): the Fourier transform of a
/// real 2N × 2N image stored as 2N × 2N `f32` values (little-endian bytes
/// in, little-endian `complex64` bytes out).
///
/// Layout (Boothroyd's DM2 notes, "Packed complex (data type 5)"; the same
/// layout is read by HyperSpy): the output is the centred transform, row
/// `r` ↔ k_y = r − N, column `c` ↔ k_x = c − N. Stored row `r` holds
/// (re, im) pairs; pair `k` = 1 … N−1 is k_x = k at the same row, for every
/// row. Pair 0 holds the column that the half plane k_x ≥ 0 does not:
/// rows N+1 … 2N−1 keep k_x = 0 there, rows 1 … N−1 the Nyquist column
/// k_x = −N at k_y = r (the lower half of that column), and the four purely
/// real values sit in rows 0 and N: (−N, 0), (−N, −N), DC and (0, −N).
/// Everything else follows from F(−k) = F(k)* of a real image.
pub(super) fn unpack_packed_complex(
    bytes: &[u8],
    dims: &[usize],
) -> std::result::Result<Vec<u8>, String> {
    let (w, h) = match dims {
        [w, h] => (*w, *h),
        _ => {
            return Err(format!(
                "packed complex (DataType 5) needs a 2-D image, got dimensions {dims:?}"
            ))
        }
    };
    if w != h || w % 2 != 0 {
        return Err(format!(
            "packed complex (DataType 5) needs a square image of even size, got {w} × {h}"
        ));
    }
    let m = w;
    let n = m / 2;
    let p = |r: usize, s: usize| {
        let o = 4 * (r * m + s);
        f32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]])
    };
    let mut out = vec![(0f32, 0f32); m * m];
    let mut set = vec![false; m * m];
    let mut put = |r: usize, c: usize, v: (f32, f32)| {
        out[r * m + c] = v;
        set[r * m + c] = true;
    };
    put(n, 0, (p(0, 0), 0.0));
    put(0, 0, (p(0, 1), 0.0));
    put(n, n, (p(n, 0), 0.0));
    put(0, n, (p(n, 1), 0.0));
    for r in 0..m {
        for k in 1..n {
            put(r, n + k, (p(r, 2 * k), p(r, 2 * k + 1)));
        }
    }
    for j in 1..n {
        put(n + j, 0, (p(j, 0), p(j, 1)));
        put(n + j, n, (p(n + j, 0), p(n + j, 1)));
    }
    for r in 0..m {
        for c in 0..m {
            if !set[r * m + c] {
                let (re, im) = out[((m - r) % m) * m + (m - c) % m];
                out[r * m + c] = (re, -im);
            }
        }
    }
    Ok(out
        .iter()
        .flat_map(|(re, im)| [re.to_le_bytes(), im.to_le_bytes()].concat())
        .collect())
}
