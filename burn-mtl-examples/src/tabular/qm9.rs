//! QM9 (Ramakrishnan, Dral, Rupp & von Lilienfeld, Sci. Data 2014): 130 831 small organic
//! molecules with DFT properties, and the 11 regression targets of the Nash-MTL / LibMTL /
//! FAMO benchmark (PyG's target indices `[0, 1, 2, 3, 5, 6, 12, 13, 14, 15, 11]`, gap dropped):
//! μ (D), α (a₀³), ε_HOMO, ε_LUMO (eV), ⟨R²⟩ (a₀²), ZPVE (eV), the atomization energies
//! U₀, U, H, G (eV: total energy minus the atoms' reference energies) and c_v (cal/mol/K).
//! Hartree are converted with 27.211386246 eV/Ha (as PyG).
//!
//! **Data.** The CSV files `qm9_part1.csv`, `qm9_part2.csv`, `qm9_part3.csv` of the
//! `qm9pack` 1.0.3 wheel (by the first author of QM9), put in `$MTL_DATA_DIR/qm9/` by
//! `cargo xtask fetch-data`. Only the `Elements` and `XYZ_Ang` columns are used as inputs;
//! the other columns are outputs of the same DFT calculations (frequencies, Mulliken charges,
//! rotational constants) and would leak the targets.
//!
//! **Model.** The papers use a message-passing GNN; here a fixed-size descriptor of each
//! molecule feeds the shared MLP of [`super::train`] (a CPU-sized stand-in, not the papers'
//! model, so the numbers are not comparable to theirs):
//! - the number of atoms and of H, C, N, O, F atoms (6);
//! - the eigenvalues of the Coulomb matrix (Rupp et al., PRL 2012; `½ Z_i^2.4` on the
//!   diagonal, `Z_i Z_j / |R_i − R_j|` in bohr off it), sorted by decreasing value and padded
//!   with zeros to 29 (29);
//! - for each of the 15 unordered element pairs, a histogram of the inter-atomic distances
//!   in 10 bins of 0.42 Å from 0.8 Å to 5.0 Å (150).
//!
//! **Split.** A seeded shuffle of all molecules: the first `test_size` (10 000 as in
//! Nash-MTL) are the test set, the next 10 000 are skipped (Nash-MTL's validation set), and
//! the following `train_size` are the training set (Nash-MTL: the remaining 110 831; the
//! default here is smaller for CPU budgets).

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::TabularError;
use super::encode::Dataset;
use super::yeast::{data_root, missing_data};

/// Hartree to electron-volt (CODATA 2018, as PyG's QM9).
pub const HARTREE_TO_EV: f64 = 27.211386246;

/// The elements of QM9 and their atomic numbers.
pub const ELEMENTS: [(&str, f64); 5] = [("H", 1.0), ("C", 6.0), ("N", 7.0), ("O", 8.0), ("F", 9.0)];

/// Atomic reference energies (Hartree) for U₀, U, H, G of H, C, N, O, F (QM9's atomref).
pub const ATOM_REFS: [[f64; 4]; 5] = [
    [-0.500273, -0.498857, -0.497912, -0.510927],
    [-37.846772, -37.845355, -37.844411, -37.861317],
    [-54.583861, -54.582445, -54.581501, -54.598897],
    [-75.064579, -75.063163, -75.062219, -75.079532],
    [-99.718730, -99.717314, -99.716370, -99.733544],
];

/// The 11 targets: (name, unit, CSV column).
pub const TARGETS: [(&str, &str, &str); 11] = [
    ("mu", "D", "Dipole_debye"),
    ("alpha", "a0^3", "Polarizability_bohr3"),
    ("homo", "eV", "HOMO_au"),
    ("lumo", "eV", "LUMO_au"),
    ("r2", "a0^2", "R2_bohr2"),
    ("zpve", "eV", "ZPVE_au"),
    ("U0", "eV", "InternalEnergy_0K_au"),
    ("U", "eV", "InternalEnergy_298K_au"),
    ("H", "eV", "Enthalphy_298K_au"),
    ("G", "eV", "GibbsFreeEnergy_298K_au"),
    ("cv", "cal/mol/K", "Heatcapacity_Cv_cal_mol_K"),
];

/// Maximum number of atoms of a QM9 molecule.
pub const MAX_ATOMS: usize = 29;

const BINS: usize = 10;
const BIN_LO: f64 = 0.8;
const BIN_HI: f64 = 5.0;
const ANGSTROM_TO_BOHR: f64 = 1.0 / 0.529177210903;

/// One molecule: element indices into [`ELEMENTS`], positions (Å) and the 11 targets in the
/// benchmark's units.
#[derive(Clone, Debug, PartialEq)]
pub struct Molecule {
    /// Element of each atom (index into [`ELEMENTS`]).
    pub elements: Vec<u8>,
    /// Position of each atom, Å.
    pub positions: Vec<[f64; 3]>,
    /// The targets of [`TARGETS`], converted.
    pub targets: [f64; 11],
}

/// The directory of the QM9 CSV files: `<data root>/qm9`.
pub fn qm9_dir() -> PathBuf {
    data_root().join("qm9")
}

/// The `qm9_part*.csv` (or `.csv.gz`) files in `dir`, sorted by name.
///
/// # Errors
/// The directory is missing or holds no such file.
pub fn qm9_files(dir: &Path) -> Result<Vec<PathBuf>, TabularError> {
    let entries = std::fs::read_dir(dir).map_err(|_| missing_data(&dir.join("qm9_part1.csv")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|f| f.to_str()).is_some_and(|f| {
                f.starts_with("qm9_part") && (f.ends_with(".csv") || f.ends_with(".csv.gz"))
            })
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(missing_data(&dir.join("qm9_part1.csv")));
    }
    Ok(files)
}

fn bracket_items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',')
        .map(|t| {
            t.trim_matches(|c: char| {
                c == '[' || c == ']' || c == '\'' || c == '"' || c.is_whitespace()
            })
        })
        .filter(|t| !t.is_empty())
}

/// Parses one CSV file of `qm9pack` into molecules.
///
/// # Errors
/// Unreadable file, missing columns, malformed fields (with the line number).
pub fn read_molecules(path: &Path) -> Result<Vec<Molecule>, TabularError> {
    let err = |m: String| TabularError::new(format!("{}: {m}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let reader: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            file,
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let headers = rdr.headers().map_err(|e| err(e.to_string()))?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| err(format!("no column {name}")))
    };
    let c_elements = col("Elements")?;
    let c_xyz = col("XYZ_Ang")?;
    let c_targets: Vec<usize> = TARGETS.iter().map(|t| col(t.2)).collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| err(e.to_string()))?;
        let line = i + 2;
        let elements: Vec<u8> = bracket_items(&rec[c_elements])
            .map(|e| {
                ELEMENTS
                    .iter()
                    .position(|(s, _)| *s == e)
                    .map(|p| p as u8)
                    .ok_or_else(|| err(format!("line {line}: unknown element {e:?}")))
            })
            .collect::<Result<_, _>>()?;
        let coords: Vec<f64> = bracket_items(&rec[c_xyz])
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| err(format!("line {line}: bad coordinate {v:?}")))
            })
            .collect::<Result<_, _>>()?;
        if elements.is_empty() || elements.len() > MAX_ATOMS || coords.len() != 3 * elements.len() {
            return Err(err(format!(
                "line {line}: {} elements and {} coordinates",
                elements.len(),
                coords.len()
            )));
        }
        let positions = coords.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        let mut raw = [0.0; 11];
        for (k, &c) in c_targets.iter().enumerate() {
            raw[k] = rec[c]
                .trim()
                .parse::<f64>()
                .map_err(|_| err(format!("line {line}: {} = {:?}", TARGETS[k].2, &rec[c])))?;
        }
        let mut targets = raw;
        for k in [2, 3, 5] {
            targets[k] = raw[k] * HARTREE_TO_EV;
        }
        for (j, k) in (6..10).enumerate() {
            let refs: f64 = elements.iter().map(|&e| ATOM_REFS[e as usize][j]).sum();
            targets[k] = (raw[k] - refs) * HARTREE_TO_EV;
        }
        out.push(Molecule {
            elements,
            positions,
            targets,
        });
    }
    Ok(out)
}

/// Names of the descriptor's features, in order (see the [module docs](self)).
pub fn feature_names() -> Vec<String> {
    let mut names = vec!["n_atoms".to_string()];
    names.extend(ELEMENTS.iter().map(|(e, _)| format!("n_{e}")));
    names.extend((0..MAX_ATOMS).map(|i| format!("cm_eig_{i}")));
    for (a, (ea, _)) in ELEMENTS.iter().enumerate() {
        for (eb, _) in &ELEMENTS[a..] {
            for bin in 0..BINS {
                names.push(format!("d_{ea}{eb}_{bin}"));
            }
        }
    }
    names
}

fn pair_index(a: usize, b: usize) -> usize {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    // Row-major index of (a, b) in the upper triangle of a 5×5 matrix.
    a * ELEMENTS.len() - a * (a + 1) / 2 + b
}

/// The descriptor of one molecule (see the [module docs](self)), `feature_names().len()`
/// values.
pub fn descriptor(m: &Molecule) -> Vec<f64> {
    let n = m.elements.len();
    let mut f = vec![n as f64];
    for e in 0..ELEMENTS.len() {
        f.push(m.elements.iter().filter(|&&x| x as usize == e).count() as f64);
    }
    let z: Vec<f64> = m.elements.iter().map(|&e| ELEMENTS[e as usize].1).collect();
    let dist = |i: usize, j: usize| {
        let (p, q) = (m.positions[i], m.positions[j]);
        ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt()
    };
    let cm = nalgebra::DMatrix::from_fn(n, n, |i, j| {
        if i == j {
            0.5 * z[i].powf(2.4)
        } else {
            z[i] * z[j] / (dist(i, j) * ANGSTROM_TO_BOHR).max(1e-6)
        }
    });
    let mut eig: Vec<f64> = cm.symmetric_eigenvalues().iter().copied().collect();
    eig.sort_by(|a, b| b.total_cmp(a));
    eig.resize(MAX_ATOMS, 0.0);
    f.extend(eig);
    let mut hist = vec![0.0; 15 * BINS];
    let width = (BIN_HI - BIN_LO) / BINS as f64;
    for i in 0..n {
        for j in i + 1..n {
            let d = dist(i, j);
            if (BIN_LO..BIN_HI).contains(&d) {
                let bin = (((d - BIN_LO) / width) as usize).min(BINS - 1);
                let p = pair_index(m.elements[i] as usize, m.elements[j] as usize);
                hist[p * BINS + bin] += 1.0;
            }
        }
    }
    f.extend(hist);
    f
}

/// Loads every `qm9_part*.csv` in `dir`, splits as in the [module docs](self) and builds the
/// descriptor data set with the 11 regression targets.
///
/// # Errors
/// Missing or malformed files, or fewer molecules than `test_size + 10 000 + 1`.
pub fn load_qm9(
    dir: &Path,
    train_size: usize,
    test_size: usize,
    split_seed: u64,
) -> Result<Dataset, TabularError> {
    let mut mols = Vec::new();
    for f in qm9_files(dir)? {
        mols.extend(read_molecules(&f)?);
    }
    let skip = 10_000.min(mols.len() / 10);
    if mols.len() <= test_size + skip {
        return Err(TabularError::new(format!(
            "{}: {} molecules, too few for a test set of {test_size}",
            dir.display(),
            mols.len()
        )));
    }
    let mut order: Vec<usize> = (0..mols.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(split_seed));
    let test = &order[..test_size];
    let train_end = (test_size + skip + train_size).min(order.len());
    let train = &order[test_size + skip..train_end];
    let names = feature_names();
    let columns = |rows: &[usize]| -> Vec<Vec<f64>> {
        let mut cols = vec![Vec::with_capacity(rows.len()); names.len()];
        for &r in rows {
            for (c, v) in cols.iter_mut().zip(descriptor(&mols[r])) {
                c.push(v);
            }
        }
        cols
    };
    let targets: Vec<(String, Vec<f64>, Vec<f64>)> = TARGETS
        .iter()
        .enumerate()
        .map(|(k, (name, unit, _))| {
            (
                format!("{name} [{unit}]"),
                train.iter().map(|&r| mols[r].targets[k]).collect(),
                test.iter().map(|&r| mols[r].targets[k]).collect(),
            )
        })
        .collect();
    Dataset::from_numeric(names.clone(), &columns(train), &columns(test), &targets)
}
