//! The MultiMNIST pipeline end to end on a tiny synthetic IDX data set written to a temporary
//! folder (no network, no real data): IDX files → composed two-object splits → training of a
//! gradient-based method, a loss-based method and the single-task baselines → table, CSV and
//! SVG.

use std::path::{Path, PathBuf};

use burn_mtl_examples::data::{Dataset, FASHION_MNIST_FILES, MNIST_FILES};
use burn_mtl_examples::idx::write_idx;
use burn_mtl_examples::multimnist::bench::{BenchOptions, SINGLE_TASK, parse_methods, run};
use burn_mtl_examples::multimnist::{SIDE, TrainConfig, Variant, load};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("burn-mtl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` 28×28 images: class `c` is a bright 8×8 block at a class-dependent position.
fn synthetic(n: usize, offset: usize) -> (Vec<u8>, Vec<u8>) {
    let mut pixels = vec![0u8; n * SIDE * SIDE];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = (i + offset) % 10;
        labels.push(c as u8);
        let (r0, c0) = (2 + 2 * (c / 5) * 4, 2 + 4 * (c % 5));
        for r in r0..r0 + 8 {
            for col in c0..c0 + 8 {
                pixels[i * SIDE * SIDE + r * SIDE + col] = 255;
            }
        }
    }
    (pixels, labels)
}

fn write_split(dir: &Path, images: &str, labels: &str, n: usize, offset: usize, gz: bool) {
    let (px, lb) = synthetic(n, offset);
    let mut im = Vec::new();
    write_idx(&mut im, &[n, SIDE, SIDE], &px).unwrap();
    let mut la = Vec::new();
    write_idx(&mut la, &[n], &lb).unwrap();
    let enc = |bytes: Vec<u8>| {
        if gz {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&bytes).unwrap();
            e.finish().unwrap()
        } else {
            bytes
        }
    };
    std::fs::write(dir.join(images), enc(im)).unwrap();
    std::fs::write(dir.join(labels), enc(la)).unwrap();
}

fn write_fake_data(root: &Path) {
    for (ds, files, gz) in [
        (Dataset::Mnist, MNIST_FILES, false),
        (Dataset::FashionMnist, FASHION_MNIST_FILES, true),
    ] {
        let dir = ds.dir_in(root);
        std::fs::create_dir_all(&dir).unwrap();
        write_split(&dir, files.train_images(), files.train_labels(), 96, 0, gz);
        write_split(&dir, files.test_images(), files.test_labels(), 40, 3, gz);
    }
}

#[test]
fn composed_splits_from_idx_files() {
    let root = temp_dir("mm-load");
    write_fake_data(&root);
    let d = load(&root, Variant::Mnist, Some(50), None, 1).unwrap();
    assert_eq!((d.train.n, d.test.n), (50, 40));
    assert_eq!(d.train.pixels.len(), 50 * SIDE * SIDE);
    // Task L's label is the image's own class; task R's is its partner's.
    for i in 0..d.train.n {
        assert_eq!(d.train.labels[0][i] as usize, i % 10);
        assert_eq!(
            d.train.labels[1][i] as usize,
            d.train.partners[i] as usize % 10
        );
    }
    // The gzipped Fashion files load too, and mixed variants use both sources.
    let f = load(&root, Variant::FashionMnist, None, Some(10), 1).unwrap();
    assert_eq!((f.train.n, f.test.n), (96, 10));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn missing_data_is_a_clear_error() {
    let root = temp_dir("mm-missing");
    let err = load(&root, Variant::Fashion, None, None, 0).unwrap_err();
    assert!(err.to_string().contains("cargo xtask fetch-data"), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn quick_benchmark_runs_on_synthetic_idx() {
    let root = temp_dir("mm-bench");
    write_fake_data(&root);
    let out = root.join("out");
    let opts = BenchOptions {
        variant: Variant::Mnist,
        data_dir: root.clone(),
        methods: parse_methods(&["mgda,famo".to_string()]).unwrap(),
        seeds: 2,
        train: TrainConfig {
            epochs: 2,
            batch_size: 32,
            lr: 1e-3,
            seed: 0,
        },
        train_limit: Some(64),
        test_limit: Some(40),
        data_seed: 0,
        out: out.clone(),
        progress: false,
        verbose: false,
    };
    let summary = run(&opts).unwrap();
    assert_eq!(summary.results.len(), 3);
    assert_eq!(summary.results[0].label, SINGLE_TASK);
    for r in &summary.results {
        assert!(r.error.is_none(), "{}: {:?}", r.label, r.error);
        assert_eq!(r.runs.len(), 2);
        for run in &r.runs {
            assert_eq!(run.epochs.len(), 2);
            for e in &run.epochs {
                assert!(e.test_accuracy.iter().all(|a| (0.0..=100.0).contains(a)));
            }
        }
    }
    // Every multi-task step reported two weights.
    let mgda = &summary.results[1];
    assert_eq!(mgda.delta_m.len(), 2);
    assert!(mgda.runs[0].weights.iter().all(|w| w.len() == 2));
    assert_eq!(mgda.runs[0].weights.len(), 2 * 2); // 64 / 32 steps × 2 epochs
    for f in ["results.md", "curves.csv", "multimnist.svg"] {
        let p = out.join(f);
        assert!(
            std::fs::metadata(&p).map(|m| m.len() > 0).unwrap_or(false),
            "{f}"
        );
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("| mgda |") && md.contains("| famo |"), "{md}");
    assert!(md.contains("Δm%"));
    let _ = std::fs::remove_dir_all(&root);
}
