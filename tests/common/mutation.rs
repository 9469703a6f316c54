//! Harness of `tests/mutation.rs`: a counting allocator, the readers
//! under test as `fn(&Path) -> Result<(), String>`, and the corpus runner.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use qdscope::io::signal::FileSignals;
use qdscope::io::{cp2k, read_npy, read_signals, read_tiff, xyz};
use rand::{Rng, SeedableRng};

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, noting the largest single request per thread.
pub struct Counting;

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        note(new);
        System.realloc(p, l, new)
    }
}

pub fn note(n: usize) {
    let _ = LARGEST.try_with(|c| c.set(c.get().max(n)));
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Fixed buffers readers may take whatever the input (a 1 MiB line
/// buffer for trajectories, capped reservations): allowed on top of the
/// size factor.
pub const FLOOR: usize = 4 << 20;
/// Allowed bytes per input byte: reading the file (1), its conversion to
/// f32 (4 per u8), Vec doubling.
pub const FACTOR: usize = 16;
/// Compressed formats: the readers' stated caps (deflate 1032, TIFF 4096).
pub const COMPRESSED_FACTOR: usize = 4096 * 4;

pub type Reader = fn(&Path) -> Result<(), String>;

pub fn one_line(e: qdscope::Error) -> Result<(), String> {
    let m = e.to_string();
    if m.is_empty() || m.contains('\n') {
        panic!("error is not one line: {m:?}");
    }
    Err(m)
}

/// Consistent signals: elements match the shape, unreadable ones are
/// empty with a one-line reason, and each readable image converts.
pub fn check_signals(path: &Path, fs_: &FileSignals) -> Result<(), String> {
    for s in &fs_.signals {
        if let Some(r) = &s.unreadable {
            assert!(s.bytes.is_empty() && !r.contains('\n'), "unreadable: {r:?}");
            continue;
        }
        let n: usize = s.shape.iter().product();
        assert_eq!(s.bytes.len(), n * s.dtype.size(), "signal '{}'", s.title);
        if matches!(s.shape.len(), 2 | 3) && n > 0 {
            let _ = s.to_stack(path);
        }
    }
    Ok(())
}

pub fn signals(p: &Path) -> Result<(), String> {
    match read_signals(p) {
        Ok(fs_) => check_signals(p, &fs_),
        Err(e) => one_line(e),
    }
}

pub fn tiff(p: &Path) -> Result<(), String> {
    read_tiff(p).map(|_| ()).or_else(one_line)?;
    signals(p)
}

pub fn npy(p: &Path) -> Result<(), String> {
    read_npy(p).map(|_| ()).or_else(one_line)
}

pub fn ener(p: &Path) -> Result<(), String> {
    let rows = cp2k::read_ener(p).or_else(|e| one_line(e).map(|()| Vec::new()))?;
    cp2k::ener_time_step(p, &rows).map(|_| ()).or_else(one_line)
}

pub fn molog(p: &Path) -> Result<(), String> {
    let a = cp2k::read_molog(&[p], None).map(|_| ()).or_else(one_line);
    let b = cp2k::read_gap_series(p, Some(0.5), None)
        .map(|_| ())
        .or_else(one_line);
    a.and(b)
}

pub fn xyz_frames(p: &Path) -> Result<(), String> {
    let r = xyz::XyzReader::open(p).or_else(|e| one_line(e).map(|()| unreachable!()))?;
    for f in r.take(1000) {
        if let Err(e) = f {
            return one_line(e);
        }
    }
    Ok(())
}

/// Run `reader` on `bytes` written to `target`: a panic or an oversized
/// allocation fails the test naming `case`.
pub fn run(case: &str, target: &Path, bytes: &[u8], reader: Reader, factor: usize) -> bool {
    fs::write(target, bytes).unwrap();
    LARGEST.with(|c| c.set(0));
    let out = catch_unwind(AssertUnwindSafe(|| reader(target)));
    let largest = LARGEST.with(Cell::get);
    match out {
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{case}: reader panicked: {msg}");
        }
        Ok(r) => {
            let limit = bytes.len() * factor + FLOOR;
            assert!(
                largest <= limit,
                "{case}: allocated {largest} bytes at once for a {}-byte input (limit {limit})",
                bytes.len()
            );
            r.is_ok()
        }
    }
}

/// Cuts at many lengths and seeded byte flips of `good`, then `attacks`.
pub fn corpus(
    name: &str,
    target: &Path,
    good: &[u8],
    reader: Reader,
    factor: usize,
    attacks: &[(&str, Vec<u8>)],
) {
    assert!(run(
        &format!("{name}: intact"),
        target,
        good,
        reader,
        factor
    ));
    let n = good.len();
    let step = (n / 400).max(1);
    for cut in (0..n).step_by(step).chain(n.saturating_sub(64)..n) {
        run(
            &format!("{name}: cut at {cut}"),
            target,
            &good[..cut],
            reader,
            factor,
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    for k in 0..300 {
        let mut b = good.to_vec();
        let mut at = Vec::new();
        for _ in 0..rng.gen_range(1..=4) {
            let i = rng.gen_range(0..n);
            b[i] = match k % 3 {
                0 => rng.gen(),
                1 => 0xff,
                _ => b[i] ^ 0x80,
            };
            at.push(i);
        }
        run(
            &format!("{name}: flip {k} at {at:?}"),
            target,
            &b,
            reader,
            factor,
        );
    }
    for (what, b) in attacks {
        run(&format!("{name}: {what}"), target, b, reader, factor);
    }
}

pub fn patch(mut b: Vec<u8>, at: usize, with: &[u8]) -> Vec<u8> {
    b[at..at + with.len()].copy_from_slice(with);
    b
}

pub fn npy_bytes(header: &str, payload: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    h.push(b'\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend(h);
    b.extend_from_slice(payload);
    b
}
