//! All-or-nothing output sets. Each file qdscope writes is atomic
//! ([`crate::io::atomic_write`]); a command's *set* of files is made so by
//! [`OutputSet`]: the command writes everything under a temporary directory
//! next to its output directory, and [`OutputSet::commit`] moves the files
//! into place only once all of them exist. Before moving anything it checks
//! that every destination can be replaced (no directory where a file goes,
//! no file where a directory goes); a move that still fails puts back what
//! was already moved. On any failure, or when the set is dropped without a
//! commit, the temporary directory is removed and the output directory is
//! left exactly as it was (a directory that did not exist is not created).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A command's outputs, staged in a temporary directory until [`commit`](Self::commit).
#[derive(Debug)]
pub struct OutputSet {
    dest: PathBuf,
    stage: PathBuf,
    /// Ancestors of `dest` created by [`OutputSet::new`], outermost first.
    created: Vec<PathBuf>,
    done: bool,
}

/// Every file under `dir`, as paths relative to it, sorted.
fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(dir.join(&rel))? {
            let e = e?;
            let r = rel.join(e.file_name());
            if e.file_type()?.is_dir() {
                stack.push(r);
            } else {
                out.push(r);
            }
        }
    }
    out.sort();
    Ok(out)
}

impl OutputSet {
    /// Stage the outputs of a command writing into `dest`: creates the
    /// missing parents of `dest` and a temporary directory beside it.
    ///
    /// # Errors
    /// `dest` exists and is not a directory; I/O errors creating the
    /// parents or the staging directory.
    pub fn new(dest: &Path) -> Result<Self> {
        if dest.exists() && !dest.is_dir() {
            return Err(Error::io(
                dest,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ),
            ));
        }
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut created = Vec::new();
        let mut p = parent.as_path();
        while !p.as_os_str().is_empty() && !p.exists() {
            created.push(p.to_path_buf());
            p = p.parent().unwrap_or(Path::new(""));
        }
        created.reverse();
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let name = dest
            .file_name()
            .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let k = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stage = parent.join(format!(".{name}.partial-{}-{k}", std::process::id()));
        let set = OutputSet {
            dest: dest.to_path_buf(),
            stage,
            created,
            done: false,
        };
        fs::create_dir(&set.stage).map_err(|e| Error::io(&set.stage, e))?;
        Ok(set)
    }

    /// The directory to write into (the staging directory): `dir().join(name)`.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.stage
    }

    /// The final output directory.
    #[must_use]
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Where a staged file `name` will end up.
    #[must_use]
    pub fn final_path(&self, name: &str) -> PathBuf {
        self.dest.join(name)
    }

    /// Check that each staged file can take its place: the error names the
    /// first destination that cannot be replaced.
    fn check(&self, files: &[PathBuf]) -> Result<()> {
        let blocked = |p: &Path, why: &str| {
            Error::io(
                p,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, why.to_string()),
            )
        };
        for rel in files {
            let target = self.dest.join(rel);
            if target.is_dir() {
                return Err(blocked(
                    &target,
                    "is a directory: cannot be replaced by the output file",
                ));
            }
            for a in rel
                .ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty())
            {
                let d = self.dest.join(a);
                if d.exists() && !d.is_dir() {
                    return Err(blocked(&d, "is not a directory: cannot hold the outputs"));
                }
            }
        }
        Ok(())
    }

    /// Move every staged file into the output directory, or none.
    ///
    /// # Errors
    /// A destination that cannot be replaced (named), or an I/O error while
    /// moving; the output directory is then as it was before the command.
    pub fn commit(mut self) -> Result<()> {
        let files = files_under(&self.stage).map_err(|e| Error::io(&self.stage, e))?;
        self.check(&files)?;
        if !self.dest.exists() {
            // Nothing to merge with: the staging directory becomes the
            // output directory in one rename.
            fs::rename(&self.stage, &self.dest).map_err(|e| Error::io(&self.dest, e))?;
            self.done = true;
            return Ok(());
        }
        let backup = self.stage.join(".replaced");
        let mut moved: Vec<(PathBuf, bool)> = Vec::new();
        let mut made_dirs: Vec<PathBuf> = Vec::new();
        let result = (|| -> std::result::Result<(), (PathBuf, std::io::Error)> {
            for rel in &files {
                let target = self.dest.join(rel);
                if let Some(parent) = target.parent() {
                    let mut missing: Vec<PathBuf> = parent
                        .ancestors()
                        .take_while(|a| !a.exists())
                        .map(Path::to_path_buf)
                        .collect();
                    fs::create_dir_all(parent).map_err(|e| (parent.to_path_buf(), e))?;
                    missing.reverse();
                    made_dirs.extend(missing);
                }
                let had = target.exists();
                if had {
                    let b = backup.join(rel);
                    if let Some(p) = b.parent() {
                        fs::create_dir_all(p).map_err(|e| (p.to_path_buf(), e))?;
                    }
                    fs::rename(&target, &b).map_err(|e| (target.clone(), e))?;
                }
                moved.push((rel.clone(), had));
                fs::rename(self.stage.join(rel), &target).map_err(|e| (target.clone(), e))?;
            }
            Ok(())
        })();
        if let Err((path, e)) = result {
            self.roll_back(&moved, &backup, &made_dirs);
            return Err(Error::io(path, e));
        }
        self.done = true;
        let _ = fs::remove_dir_all(&self.stage);
        Ok(())
    }

    /// Undo a partial commit: staged files go back, replaced ones return.
    fn roll_back(&self, moved: &[(PathBuf, bool)], backup: &Path, made_dirs: &[PathBuf]) {
        for (rel, had) in moved.iter().rev() {
            let target = self.dest.join(rel);
            let _ = fs::remove_file(&target);
            if *had {
                let _ = fs::rename(backup.join(rel), &target);
            }
        }
        for d in made_dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let _ = fs::remove_dir_all(&self.stage);
        for d in self.created.iter().rev() {
            let _ = fs::remove_dir(d); // only when empty
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_merges_and_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("a/b/out");
        let set = OutputSet::new(&dest).unwrap();
        fs::write(set.dir().join("x.csv"), "1").unwrap();
        fs::create_dir(set.dir().join("images")).unwrap();
        fs::write(set.dir().join("images/t1.npy"), "2").unwrap();
        set.commit().unwrap();
        assert_eq!(fs::read_to_string(dest.join("images/t1.npy")).unwrap(), "2");
        // Second run: replaces x.csv, keeps other content, adds y.csv.
        fs::write(dest.join("keep.txt"), "k").unwrap();
        let set = OutputSet::new(&dest).unwrap();
        fs::write(set.dir().join("x.csv"), "3").unwrap();
        fs::write(set.dir().join("y.csv"), "4").unwrap();
        set.commit().unwrap();
        assert_eq!(fs::read_to_string(dest.join("x.csv")).unwrap(), "3");
        assert_eq!(fs::read_to_string(dest.join("keep.txt")).unwrap(), "k");
        let left: Vec<_> = fs::read_dir(dest.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "staging directory removed");
    }

    #[test]
    fn blocked_destination_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("out");
        fs::create_dir_all(dest.join("z.json")).unwrap();
        fs::write(dest.join("x.csv"), "old").unwrap();
        let set = OutputSet::new(&dest).unwrap();
        for n in ["x.csv", "y.csv", "z.json"] {
            fs::write(set.dir().join(n), "new").unwrap();
        }
        let e = set.commit().unwrap_err().to_string();
        assert!(e.contains("z.json") && e.contains("is a directory"), "{e}");
        assert_eq!(fs::read_to_string(dest.join("x.csv")).unwrap(), "old");
        assert!(!dest.join("y.csv").exists());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
        // Dropped without commit: nothing created, not even the parents.
        let deep = tmp.path().join("p/q/out");
        let set = OutputSet::new(&deep).unwrap();
        fs::write(set.dir().join("x.csv"), "1").unwrap();
        drop(set);
        assert!(!tmp.path().join("p").exists());
    }
}
