//! Streaming XYZ reader: CP2K XMOL files (`-pos-1.xyz`, `-vel-1.xyz`; the
//! comment ` i = <step>, time = <fs>, E = <Ha>`) and extended XYZ
//! (`Lattice="…"`, `Properties=species:S:1:pos:R:3…`, `Step=`, `Time=`),
//! frame by frame so memory does not grow with the trajectory.
//!
//! The reader returns the file's numbers; unit conversion (CP2K velocities
//! in bohr/a.u.t → Å/fs) is the caller's choice through [`VelocityUnit`].
//! Errors name the file and the line: a truncated last frame, a frame with
//! another atom count, non-numeric or non-finite coordinates.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::structure::Atoms;
use crate::units::AU_VELOCITY_ANGSTROM_PER_FS;

/// One frame of an XYZ file.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// MD step, if the comment gives it.
    pub step: Option<i64>,
    /// Time in fs, if the comment gives it.
    pub time_fs: Option<f64>,
    /// Element symbols.
    pub species: Vec<String>,
    /// The three numbers of each atom (positions Å, or velocities in the
    /// file's unit).
    pub xyz: Vec<[f64; 3]>,
    /// Cell rows a, b, c (Å), from an extended-XYZ `Lattice`.
    pub lattice: Option<[[f64; 3]; 3]>,
    /// Line of the frame's atom count (1-based).
    pub line: usize,
}

/// Unit of the numbers in a velocity file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum VelocityUnit {
    /// bohr per atomic time unit (CP2K's default velocity print).
    BohrPerAut,
    /// Å/fs.
    AngstromPerFs,
}

impl VelocityUnit {
    /// Factor to Å/fs.
    #[must_use]
    pub fn to_angstrom_per_fs(self) -> f64 {
        match self {
            VelocityUnit::BohrPerAut => AU_VELOCITY_ANGSTROM_PER_FS,
            VelocityUnit::AngstromPerFs => 1.0,
        }
    }
}

/// Write `atoms` as an XMOL XYZ file (count, comment, `El x y z` in Å with
/// 10 decimals, as CP2K writes them), atomically.
///
/// # Errors
/// I/O errors naming `path`.
pub fn write_xyz(path: &Path, atoms: &Atoms, comment: &str) -> Result<()> {
    let mut s = format!("{}\n{}\n", atoms.len(), comment.replace('\n', " "));
    for (e, p) in atoms.species.iter().zip(&atoms.positions) {
        s.push_str(&format!(
            "{:<2} {:20.10} {:20.10} {:20.10}\n",
            e.symbol(),
            p[0],
            p[1],
            p[2]
        ));
    }
    crate::io::write_text(path, &s)
}

/// Extra per-atom columns of an extended-XYZ file.
#[derive(Debug, Clone, Copy)]
pub enum ExtColumn<'a> {
    /// A real column (`name:R:1`).
    Real(&'a str, &'a [f64]),
    /// A logical column (`name:L:1`, written T/F).
    Logical(&'a str, &'a [bool]),
}

/// Write `atoms` as extended XYZ: `Lattice` (when the cell is known),
/// `Properties=species:S:1:pos:R:3` plus `extra` columns, `pbc="F F F"`
/// (isolated clusters), atomically.
///
/// # Errors
/// A column whose length is not the atom count; I/O errors naming `path`.
pub fn write_extxyz(path: &Path, atoms: &Atoms, extra: &[ExtColumn<'_>]) -> Result<()> {
    let mut props = String::from("species:S:1:pos:R:3");
    for c in extra {
        let (name, len, t) = match c {
            ExtColumn::Real(n, v) => (n, v.len(), "R"),
            ExtColumn::Logical(n, v) => (n, v.len(), "L"),
        };
        if len != atoms.len() {
            return Err(Error::shape(
                format!("{}: column {name}", path.display()),
                format!("{} values", atoms.len()),
                format!("{len}"),
            ));
        }
        props.push_str(&format!(":{name}:{t}:1"));
    }
    let mut s = format!("{}\n", atoms.len());
    if let Some(c) = atoms.cell_angstrom {
        s.push_str(&format!(
            "Lattice=\"{} 0 0 0 {} 0 0 0 {}\" ",
            c[0], c[1], c[2]
        ));
    }
    s.push_str(&format!("Properties={props} pbc=\"F F F\"\n"));
    for (i, (e, p)) in atoms.species.iter().zip(&atoms.positions).enumerate() {
        s.push_str(&format!(
            "{:<2} {:16.8} {:16.8} {:16.8}",
            e.symbol(),
            p[0],
            p[1],
            p[2]
        ));
        for c in extra {
            match c {
                ExtColumn::Real(_, v) => s.push_str(&format!(" {:6.2}", v[i])),
                ExtColumn::Logical(_, v) => s.push_str(if v[i] { " T" } else { " F" }),
            }
        }
        s.push('\n');
    }
    crate::io::write_text(path, &s)
}

/// Frame-by-frame reader.
pub struct XyzReader {
    path: PathBuf,
    lines: std::iter::Peekable<std::io::Lines<BufReader<std::fs::File>>>,
    line: usize,
    n_atoms: Option<usize>,
}

impl XyzReader {
    /// Open `path`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn open(path: &Path) -> Result<Self> {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(XyzReader {
            path: path.to_path_buf(),
            lines: BufReader::with_capacity(1 << 20, f).lines().peekable(),
            line: 0,
            n_atoms: None,
        })
    }

    fn err(&self, line: usize, msg: impl std::fmt::Display) -> Error {
        Error::format(&self.path, format!("line {line}: {msg}"))
    }

    /// The last frame (starting at `start`) was cut off: [`Error::Truncated`].
    fn truncated(&self, start: usize, what: impl std::fmt::Display) -> Error {
        Error::Truncated {
            path: self.path.clone(),
            line: start,
            what: format!("frame ({what})"),
        }
    }

    fn next_line(&mut self) -> Option<Result<String>> {
        self.line += 1;
        self.lines
            .next()
            .map(|r| r.map_err(|e| Error::io(&self.path, e)))
    }

    fn read_frame(&mut self, count_line: String) -> Result<Frame> {
        let start = self.line;
        let n: usize = count_line.trim().parse().map_err(|_| {
            self.err(
                start,
                format!("expected an atom count, found '{}'", count_line.trim()),
            )
        })?;
        if let Some(n0) = self.n_atoms {
            if n != n0 {
                return Err(self.err(
                    start,
                    format!("frame has {n} atoms, the first frame had {n0}"),
                ));
            }
        }
        self.n_atoms = Some(n);
        let comment = match self.next_line() {
            Some(l) => l?,
            None => return Err(self.truncated(start, "no comment line")),
        };
        let meta = parse_comment(&comment);
        // A corrupt count must not reserve gigabytes before the lines fail.
        let mut species = Vec::with_capacity(n.min(1 << 16));
        let mut xyz = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let l = match self.next_line() {
                Some(l) => l?,
                None => return Err(self.truncated(start, format!("{} of {n} atoms", xyz.len()))),
            };
            // A malformed last line of the file is a line cut by the kill.
            let last = self.lines.peek().is_none();
            let bad = |msg: String| {
                if last {
                    self.truncated(start, format!("last line cut: '{}'", l.trim()))
                } else {
                    self.err(self.line, msg)
                }
            };
            let mut f = l.split_whitespace();
            let el = f.next().ok_or_else(|| bad("empty atom line".into()))?;
            let mut v = [0.0; 3];
            for (k, vk) in v.iter_mut().enumerate() {
                let tok = f
                    .nth(if k == 0 { meta.skip } else { 0 })
                    .ok_or_else(|| bad("malformed atom line: fewer than 3 numbers".into()))?;
                *vk = tok
                    .parse::<f64>()
                    .map_err(|_| bad(format!("'{tok}' is not a number")))?;
                if !vk.is_finite() {
                    return Err(self.err(self.line, "non-finite coordinate"));
                }
            }
            species.push(el.to_string());
            xyz.push(v);
        }
        Ok(Frame {
            step: meta.step,
            time_fs: meta.time_fs,
            species,
            xyz,
            lattice: meta.lattice,
            line: start,
        })
    }
}

impl Iterator for XyzReader {
    type Item = Result<Frame>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let l = match self.next_line()? {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            if l.trim().is_empty() {
                continue; // trailing blank lines
            }
            return Some(self.read_frame(l));
        }
    }
}

/// An [`XyzReader`] parsing on its own thread, a few frames ahead (a
/// bounded channel keeps memory constant): reading positions and velocities
/// this way parses both files in parallel.
pub struct Prefetch {
    rx: std::sync::mpsc::Receiver<Result<Frame>>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl Prefetch {
    /// Open `path` and start parsing.
    ///
    /// # Errors
    /// I/O errors opening the file.
    pub fn open(path: &Path) -> Result<Self> {
        let reader = XyzReader::open(path)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let thread = std::thread::spawn(move || {
            for f in reader {
                let stop = f.is_err();
                if tx.send(f).is_err() || stop {
                    break;
                }
            }
        });
        Ok(Prefetch {
            rx,
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }
}

impl Iterator for Prefetch {
    type Item = Result<Frame>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.recv() {
            Ok(f) => Some(f),
            // The channel closes at the end, or when the parser died: a
            // panic there must not pass for the end of the file.
            Err(_) => match self.thread.take().map(std::thread::JoinHandle::join) {
                Some(Err(_)) => Some(Err(Error::format(
                    &self.path,
                    "internal error: the reader thread stopped",
                ))),
                _ => None,
            },
        }
    }
}

struct Meta {
    step: Option<i64>,
    time_fs: Option<f64>,
    lattice: Option<[[f64; 3]; 3]>,
    /// Extra columns between the species and the three numbers wanted.
    skip: usize,
}

fn parse_comment(c: &str) -> Meta {
    let mut m = Meta {
        step: None,
        time_fs: None,
        lattice: None,
        skip: 0,
    };
    // CP2K XMOL: " i =        5, time =       25.000, E = ..."
    for part in c.split(',') {
        let p = part.trim();
        if let Some(v) = p.strip_prefix("i =").or_else(|| p.strip_prefix("i=")) {
            m.step = v.trim().parse().ok();
        } else if let Some(v) = p.strip_prefix("time =").or_else(|| p.strip_prefix("time=")) {
            m.time_fs = v.trim().parse().ok();
        }
    }
    // Extended XYZ key=value pairs (values may be quoted).
    let mut rest = c.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq]
            .split_whitespace()
            .last()
            .unwrap_or("")
            .to_string();
        let after = &rest[eq + 1..];
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], &q[(end + 1).min(q.len())..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        match key.to_ascii_lowercase().as_str() {
            "step" => m.step = val.trim_end_matches(',').parse().ok().or(m.step),
            "time" => m.time_fs = val.trim_end_matches(',').parse().ok().or(m.time_fs),
            "lattice" => {
                let v: Vec<f64> = val
                    .split_whitespace()
                    .filter_map(|s| s.parse().ok())
                    .collect();
                if v.len() == 9 {
                    m.lattice = Some([[v[0], v[1], v[2]], [v[3], v[4], v[5]], [v[6], v[7], v[8]]]);
                }
            }
            "properties" => {
                // species:S:1:pos:R:3 …: columns before the first R:3 block
                // after the species.
                let f: Vec<&str> = val.split(':').collect();
                let mut col = 0usize;
                let mut found = None;
                for t in f.chunks(3) {
                    if t.len() < 3 {
                        break;
                    }
                    let nc: usize = t[2].parse().unwrap_or(1);
                    if t[1] == "R" && nc == 3 && col > 0 {
                        found = Some(col);
                        break;
                    }
                    col += nc;
                }
                if let Some(c0) = found {
                    m.skip = c0 - 1;
                }
            }
            _ => {}
        }
        rest = next;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp2k_xmol_frames_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x-pos-1.xyz");
        let frame = |i: i64| {
            format!(
                "       2\n i =        {i}, time =       {:.3}, E =      -1.0\n  Cs    0.0 0.0 {}\n  Br    1.0 2.0 3.0\n",
                i as f64 * 5.0,
                i as f64 * 0.1
            )
        };
        std::fs::write(&p, format!("{}{}", frame(0), frame(1))).unwrap();
        let fr: Vec<Frame> = XyzReader::open(&p).unwrap().collect::<Result<_>>().unwrap();
        assert_eq!(fr.len(), 2);
        assert_eq!((fr[1].step, fr[1].time_fs), (Some(1), Some(5.0)));
        assert_eq!(fr[1].species, vec!["Cs", "Br"]);
        assert!((fr[1].xyz[0][2] - 0.1).abs() < 1e-12);
        // Truncated last frame.
        std::fs::write(&p, format!("{}       2\n i = 1\n  Cs 0 0 0\n", frame(0))).unwrap();
        let e = XyzReader::open(&p)
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated") && e.contains("line"), "{e}");
        // Different atom count.
        std::fs::write(&p, format!("{}       1\n i = 1\n  Cs 0 0 0\n", frame(0))).unwrap();
        let e = XyzReader::open(&p)
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 5") && e.contains("first frame had 2"),
            "{e}"
        );
        // A corrupt, enormous atom count fails on the missing lines.
        std::fs::write(&p, "99999999999\nc\nCs 0 0 0\n").unwrap();
        let e = XyzReader::open(&p)
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
        std::fs::write(&p, "1\nc\nCs 0 nan 0\n").unwrap();
        assert!(XyzReader::open(&p).unwrap().next().unwrap().is_err());
    }

    #[test]
    fn extended_xyz_with_lattice_and_properties() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.extxyz");
        std::fs::write(
            &p,
            "2\nLattice=\"30 0 0 0 30 0 0 0 30\" Properties=species:S:1:id:I:1:velo:R:3 Step=7 Time=35.0 pbc=\"F F F\"\nPb 1 0.5 0.25 0.125\nBr 2 1 2 3\n",
        )
        .unwrap();
        let f = XyzReader::open(&p).unwrap().next().unwrap().unwrap();
        assert_eq!((f.step, f.time_fs), (Some(7), Some(35.0)));
        assert_eq!(f.xyz[0], [0.5, 0.25, 0.125]);
        assert_eq!(f.lattice.unwrap()[1][1], 30.0);
        assert!((VelocityUnit::BohrPerAut.to_angstrom_per_fs() - 21.876913).abs() < 1e-5);
    }
}
