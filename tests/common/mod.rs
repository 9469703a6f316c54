//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;

/// The built `qdscope` binary.
pub fn qdscope() -> Command {
    Command::cargo_bin("qdscope").unwrap()
}

/// A path as `&str` for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Run `qdscope ARGS…` and expect the bad-input contract: exit code 1 and
/// exactly one stderr line `qdscope: error: …` that contains `needle`.
pub fn fail(args: &[&str], needle: &str) {
    let a = qdscope().args(args).assert().failure().code(1);
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("qdscope: error: ") && err.contains(needle),
        "{args:?}: {err}"
    );
}
