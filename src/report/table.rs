//! Reading the text tables users hand to qdscope (gap series, RMSF tables,
//! anything a script wrote): `#` comments and blank lines skipped, an
//! optional header line naming the columns, and one separator per file —
//! comma, tab or runs of whitespace — taken from the first data line.
//!
//! Errors name the file and the line (`file: line N: …`) on one line.

use std::path::Path;

use crate::error::{Error, Result};

/// The column separator of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separator {
    /// `,` (fields trimmed).
    Comma,
    /// `\t` (fields trimmed).
    Tab,
    /// Runs of spaces and tabs.
    Whitespace,
}

impl Separator {
    fn detect(line: &str) -> Self {
        if line.contains(',') {
            Separator::Comma
        } else if line.contains('\t') && !line.trim().contains(' ') {
            Separator::Tab
        } else {
            Separator::Whitespace
        }
    }

    fn split(self, line: &str) -> Vec<String> {
        let f: Vec<&str> = match self {
            Separator::Comma => line.split(',').map(str::trim).collect(),
            Separator::Tab => line.split('\t').map(str::trim).collect(),
            Separator::Whitespace => line.split_whitespace().collect(),
        };
        f.into_iter().map(str::to_string).collect()
    }

    /// The separator in words, for messages.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Separator::Comma => "comma",
            Separator::Tab => "tab",
            Separator::Whitespace => "whitespace",
        }
    }
}

/// A text table: optional header, rows of fields with their line numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Column names from a header line (the first non-comment line when
    /// none of its fields is a number).
    pub header: Option<Vec<String>>,
    /// Fields of the last `#` comment line before the first data line
    /// (numpy's `savetxt(header=…)` writes the names there), if any.
    pub comment_header: Option<Vec<String>>,
    /// The separator found on the first line that is not a comment.
    pub separator: Separator,
    /// (1-based line number, fields) of every data row.
    pub rows: Vec<(usize, Vec<String>)>,
}

fn is_number(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

/// Parse `text` (read from `path`, named in errors) as a table.
///
/// # Errors
/// A data row whose field count differs from the first row's (file, line
/// and the separator named); no data rows.
pub fn parse(path: &Path, text: &str) -> Result<Table> {
    let mut table = Table {
        header: None,
        comment_header: None,
        separator: Separator::Whitespace,
        rows: Vec::new(),
    };
    let mut last_comment: Option<&str> = None;
    let mut width = 0;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if let Some(c) = t.strip_prefix('#') {
            if table.rows.is_empty() && table.header.is_none() {
                last_comment = Some(c.trim());
            }
            continue;
        }
        if table.rows.is_empty() {
            let sep = Separator::detect(t);
            let fields = sep.split(t);
            if table.header.is_none() && fields.iter().all(|f| !is_number(f)) {
                table.header = Some(fields);
                continue;
            }
            table.separator = sep;
            width = table.header.as_ref().map_or(fields.len(), Vec::len);
            if let (None, Some(c)) = (&table.header, last_comment) {
                let names = [sep.split(c), Separator::Whitespace.split(c)]
                    .into_iter()
                    .find(|n| n.len() == width);
                table.comment_header = names.filter(|n| n.iter().all(|f| !is_number(f)));
            }
        }
        let fields = table.separator.split(t);
        if fields.len() != width {
            let expected = if table.header.is_some() {
                format!("the header names {width}")
            } else {
                format!("expected {width} as on the first row")
            };
            return Err(Error::format(
                path,
                format!(
                    "line {}: {} {}-separated field(s), {expected}",
                    i + 1,
                    fields.len(),
                    table.separator.name(),
                ),
            ));
        }
        table.rows.push((i + 1, fields));
    }
    if table.rows.is_empty() {
        return Err(Error::format(path, "no data rows"));
    }
    Ok(table)
}

/// Read and parse the table at `path`.
///
/// # Errors
/// I/O errors naming `path`; the errors of [`parse`].
pub fn read(path: &Path) -> Result<Table> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(path, &String::from_utf8_lossy(&bytes))
}

impl Table {
    /// The names of the columns: the header's, else the comment header's.
    #[must_use]
    pub fn names(&self) -> Option<&[String]> {
        self.header.as_deref().or(self.comment_header.as_deref())
    }

    /// Index of the first column whose name satisfies `pred` (names
    /// compared in lower case).
    pub fn column(&self, pred: impl Fn(&str) -> bool) -> Option<usize> {
        self.names()?
            .iter()
            .position(|n| pred(&n.to_ascii_lowercase()))
    }

    /// Field `col` of a row parsed as a finite number.
    ///
    /// # Errors
    /// `file: line N: 'x' is not a number` (or non-finite).
    pub fn number(&self, path: &Path, row: &(usize, Vec<String>), col: usize) -> Result<f64> {
        let (line, f) = row;
        let s = f.get(col).map_or("", String::as_str);
        let v: f64 = s
            .parse()
            .map_err(|_| Error::format(path, format!("line {line}: '{s}' is not a number")))?;
        if !v.is_finite() {
            return Err(Error::format(
                path,
                format!("line {line}: non-finite value"),
            ));
        }
        Ok(v)
    }
}

/// Unit factor of a column name's suffix (`time_ps`, `gap [meV]`, …):
/// `units` lists (suffix, factor), matched case-insensitively after `_`,
/// `(`, `[`, ` ` or `/`; a bare alphabetic name gives `default`; `None`
/// for a suffix not in the list.
pub fn unit_factor(name: &str, units: &[(&str, f64)], default: f64) -> Option<f64> {
    let n = name.trim_end_matches([')', ']']);
    for (u, f) in units {
        let k = n.len().saturating_sub(u.len());
        if k > 0 && n.get(k..).is_some_and(|t| t.eq_ignore_ascii_case(u)) {
            let before = n[..k].chars().last();
            if matches!(before, Some('_' | '(' | '[' | ' ' | '/')) {
                return Some(*f);
            }
        }
    }
    let bare = n.chars().all(|c| c.is_ascii_alphabetic());
    bare.then_some(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Table> {
        parse(Path::new("t.csv"), text)
    }

    #[test]
    fn separators_headers_and_comments() {
        let t = p("time_fs,gap_eV\n0, 2.4\n1,2.5\n").unwrap();
        assert_eq!(t.separator, Separator::Comma);
        assert_eq!(t.header.as_deref().unwrap(), ["time_fs", "gap_eV"]);
        assert_eq!(t.rows[1], (3, vec!["1".to_string(), "2.5".to_string()]));
        let t = p("# made by x\n\n0\t2.4\n1\t2.5\n").unwrap();
        assert_eq!(t.separator, Separator::Tab);
        assert!(t.header.is_none() && t.comment_header.is_none());
        let t = p("#  t   gap\n0  2.4\n  1 2.5 \n").unwrap();
        assert_eq!(t.separator, Separator::Whitespace);
        assert_eq!(t.comment_header.as_deref().unwrap(), ["t", "gap"]);
        assert_eq!(t.column(|n| n == "gap"), Some(1));
        let e = p("0,1\n2\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "t.csv: line 2: 1 comma-separated field(s), expected 2 as on the first row"
        );
        let e = p("a b c\n0 1\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("header names 3"), "{e}");
        assert!(p("# only\n").is_err());
        let t = p("0 1\n").unwrap();
        let e = t.number(Path::new("t.csv"), &(4, vec!["x".into()]), 0);
        assert_eq!(
            e.unwrap_err().to_string(),
            "t.csv: line 4: 'x' is not a number"
        );
    }
}
