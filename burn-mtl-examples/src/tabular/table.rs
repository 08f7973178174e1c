//! Reading a delimited text file into a column-major [`Table`] of strings.
//!
//! - `.gz` files are decompressed on the fly (`flate2`'s multi-member gzip decoder).
//! - **Separators.** The `csv` crate splits on one byte. A separator of one ASCII character
//!   followed only by spaces or tabs (e.g. `", "`, as in the UCI "adult" and "census-income"
//!   files) is handled by pre-processing: outside double quotes, the spaces and tabs right
//!   after that character are removed (the whole file is read into memory for that), then the
//!   `csv` crate splits on the character. So `a, "b, c"` is two fields, `a` and `b, c`. Every
//!   field is also trimmed of surrounding whitespace. `\t` and `tab` mean a tab. Any other
//!   multi-character separator is refused with an error.
//! - Quoting follows RFC 4180 (`"a, b"` is one field); blank lines are skipped; every other
//!   row must have as many fields as the first one.
//! - Without a header the columns are named `"0"`, `"1"`, ...; either way a column can be
//!   named by its header or by its 0-based index ([`Table::resolve`]).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::TabularError;

/// How to read a delimited file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// Whether the first row holds the column names.
    pub has_header: bool,
    /// The field separator as given by the user (see the [module docs](self)).
    pub separator: String,
}

impl Default for CsvOptions {
    /// A header row and `,`.
    fn default() -> Self {
        Self {
            has_header: true,
            separator: ",".to_string(),
        }
    }
}

/// The byte the `csv` crate splits on for the user's separator (see the [module docs](self)).
///
/// ```
/// use burn_mtl_examples::tabular::table::separator_byte;
/// assert_eq!(separator_byte(", ").unwrap(), b',');
/// assert_eq!(separator_byte("\\t").unwrap(), b'\t');
/// assert!(separator_byte("::").is_err());
/// ```
///
/// # Errors
/// An empty separator, a non-ASCII first character, or a first character followed by
/// anything but spaces and tabs.
pub fn separator_byte(sep: &str) -> Result<u8, TabularError> {
    match sep {
        "\\t" | "tab" | "\t" => return Ok(b'\t'),
        "" => return Err(TabularError::new("the separator is empty")),
        _ => {}
    }
    let first = sep.as_bytes()[0];
    if !first.is_ascii() || first == b'"' || first == b'\n' || first == b'\r' {
        return Err(TabularError::new(format!(
            "separator {sep:?}: its first character must be an ASCII character other than a quote or a line break"
        )));
    }
    if !sep[1..].bytes().all(|b| b == b' ' || b == b'\t') {
        return Err(TabularError::new(format!(
            "separator {sep:?}: only one character, optionally followed by spaces, is supported \
             (fields are trimmed, so \", \" works as \",\")"
        )));
    }
    Ok(first)
}

/// Whether a (trimmed) cell counts as a missing value: empty or `?`.
pub fn is_missing(cell: &str) -> bool {
    cell.is_empty() || cell == "?"
}

/// A cell as a finite number, `None` when it is missing or not a (finite) number.
pub fn parse_number(cell: &str) -> Option<f64> {
    if is_missing(cell) {
        return None;
    }
    cell.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `bytes` with the spaces and tabs that follow `sep` outside double quotes removed (see the
/// [module docs](self)).
fn squeeze_after_separator(bytes: &[u8], sep: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let (mut quoted, mut skipping) = (false, false);
    for &b in bytes {
        if skipping && (b == b' ' || b == b'\t') {
            continue;
        }
        skipping = false;
        if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            skipping = true;
        }
        out.push(b);
    }
    out
}

/// A table of strings, column-major, every cell trimmed of surrounding whitespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// Column names (the header, or `"0"`, `"1"`, ... without one).
    pub names: Vec<String>,
    /// `columns[c][r]`: the cell of row `r` in column `c`.
    pub columns: Vec<Vec<String>>,
}

impl Table {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// Number of columns.
    pub fn num_columns(&self) -> usize {
        self.names.len()
    }

    /// The index of the column called `name`: a header name first (exact match), otherwise a
    /// 0-based index.
    ///
    /// # Errors
    /// Neither a column name nor an index in range.
    pub fn resolve(&self, name: &str) -> Result<usize, TabularError> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Ok(i);
        }
        if let Ok(i) = name.parse::<usize>()
            && i < self.names.len()
        {
            return Ok(i);
        }
        let shown: Vec<&str> = self.names.iter().take(12).map(String::as_str).collect();
        let more = if self.names.len() > 12 { ", ..." } else { "" };
        Err(TabularError::new(format!(
            "no column {name:?}: give a header name or a 0-based index below {} (columns: {}{more})",
            self.names.len(),
            shown.join(", ")
        )))
    }

    /// The rows `rows` (in that order), as a new table.
    pub fn select_rows(&self, rows: &[usize]) -> Table {
        Table {
            names: self.names.clone(),
            columns: self
                .columns
                .iter()
                .map(|col| rows.iter().map(|&r| col[r].clone()).collect())
                .collect(),
        }
    }

    /// Reads a table from `reader` (already decompressed).
    ///
    /// # Errors
    /// Malformed CSV, an empty input, or a row whose number of fields differs from the first
    /// row's.
    pub fn from_reader<R: Read>(
        mut reader: R,
        options: &CsvOptions,
    ) -> Result<Table, TabularError> {
        let sep = separator_byte(&options.separator)?;
        if options.separator.len() > 1 && sep != b'\t' {
            let mut bytes = Vec::new();
            reader
                .read_to_end(&mut bytes)
                .map_err(|e| TabularError::new(format!("reading the CSV: {e}")))?;
            return Self::parse(&squeeze_after_separator(&bytes, sep)[..], sep, options);
        }
        Self::parse(reader, sep, options)
    }

    fn parse<R: Read>(reader: R, sep: u8, options: &CsvOptions) -> Result<Table, TabularError> {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(sep)
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let mut names: Option<Vec<String>> = None;
        let mut columns: Vec<Vec<String>> = Vec::new();
        for (i, record) in rdr.records().enumerate() {
            let record = record.map_err(|e| TabularError::new(format!("reading the CSV: {e}")))?;
            let line = record.position().map_or(i as u64 + 1, |p| p.line());
            if record.iter().all(str::is_empty) {
                continue;
            }
            match &names {
                None => {
                    let n = record.len();
                    if options.has_header {
                        names = Some(record.iter().map(str::to_string).collect());
                        columns = vec![Vec::new(); n];
                        continue;
                    }
                    names = Some((0..n).map(|c| c.to_string()).collect());
                    columns = vec![Vec::new(); n];
                }
                Some(names) if record.len() != names.len() => {
                    return Err(TabularError::new(format!(
                        "line {line}: {} fields, but the first row has {} (wrong --sep?)",
                        record.len(),
                        names.len()
                    )));
                }
                Some(_) => {}
            }
            for (col, cell) in columns.iter_mut().zip(record.iter()) {
                col.push(cell.to_string());
            }
        }
        let names = names.ok_or_else(|| TabularError::new("the CSV file is empty"))?;
        Ok(Table { names, columns })
    }

    /// Reads the file at `path`, decompressing it if its name ends in `.gz`.
    ///
    /// # Errors
    /// The file cannot be opened or read, or see [`Table::from_reader`].
    pub fn read(path: &Path, options: &CsvOptions) -> Result<Table, TabularError> {
        let file = File::open(path)
            .map_err(|e| TabularError::new(format!("cannot open {}: {e}", path.display())))?;
        let reader = BufReader::new(file);
        let gz = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        let result = if gz {
            Table::from_reader(flate2::read::MultiGzDecoder::new(reader), options)
        } else {
            Table::from_reader(reader, options)
        };
        result.map_err(|e| TabularError::new(format!("{}: {e}", path.display())))
    }
}
