//! Yeast (Elisseeff & Weston, NIPS 2001; the MULAN multi-label version): 2 417 genes, 103
//! numeric features (already standardised), 14 binary functional classes, one task each.
//!
//! The file is `river/datasets/yeast.csv.gz` from the `river` 0.26.1 wheel (header
//! `Att1..Att103,Class1..Class14`), put at `$MTL_DATA_DIR/yeast/yeast.csv.gz` by
//! `cargo xtask fetch-data`. The split has MULAN's sizes (1 500 train / 917 test) but its rows
//! are drawn by a seeded shuffle of the file ([`YEAST_TEST_ROWS`], `split_seed`), not MULAN's
//! own train/test files.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::TabularError;
use super::encode::{CategoricalMode, Dataset, PrepareOptions, TargetSpec, TaskKind, prepare};
use super::table::{CsvOptions, Table};

/// Number of labels (tasks).
pub const YEAST_TASKS: usize = 14;

/// Test rows (MULAN's test-set size).
pub const YEAST_TEST_ROWS: usize = 917;

/// The data directory: `$MTL_DATA_DIR`, or `data/` at the workspace root
/// ([`crate::data::data_dir`], where `cargo xtask fetch-data` puts the files).
pub fn data_root() -> PathBuf {
    crate::data::data_dir()
}

/// Where the Yeast file is expected: `<data root>/yeast/yeast.csv.gz`.
pub fn yeast_path() -> PathBuf {
    data_root().join("yeast").join(crate::data::YEAST_CSV)
}

/// The error for a missing data file, telling how to get it.
pub fn missing_data(path: &Path) -> TabularError {
    TabularError::new(format!(
        "{} not found: run `cargo xtask fetch-data` first (or set MTL_DATA_DIR to the directory \
         it filled)",
        path.display()
    ))
}

/// Loads Yeast from `path` and splits it: [`YEAST_TEST_ROWS`] test rows drawn by a shuffle
/// seeded with `split_seed`, then at most `max_train` training rows.
///
/// # Errors
/// A missing or malformed file (not the 14 `Class` columns, labels other than two values).
pub fn load_yeast(
    path: &Path,
    split_seed: u64,
    max_train: Option<usize>,
) -> Result<Dataset, TabularError> {
    if !path.exists() {
        return Err(missing_data(path));
    }
    let table = Table::read(path, &CsvOptions::default())?;
    let n = table.num_rows();
    if n <= YEAST_TEST_ROWS {
        return Err(TabularError::new(format!(
            "{}: {n} rows, expected 2417",
            path.display()
        )));
    }
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(&mut ChaCha8Rng::seed_from_u64(split_seed));
    let (test, train) = rows.split_at(YEAST_TEST_ROWS);
    let train = &train[..max_train.unwrap_or(usize::MAX).min(train.len())];
    let options = PrepareOptions {
        targets: (1..=YEAST_TASKS)
            .map(|i| TargetSpec {
                column: format!("Class{i}"),
                kind: TaskKind::Binary,
            })
            .collect(),
        categorical: CategoricalMode::None,
        ..PrepareOptions::default()
    };
    prepare(
        &table.select_rows(train),
        &table.select_rows(test),
        &options,
    )
}
