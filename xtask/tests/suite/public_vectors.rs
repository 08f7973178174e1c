//! The reference checker on the public reference vectors: every method we implement passes on
//! both the host (f64) and the tensor (NdArray f32) path.

use std::path::Path;

use xtask::check_vectors::{Kind, PathSel, run};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/reference/public_vectors.json"
);

const METHODS: [&str; 6] = ["mean", "sum", "mgda", "mgda_exact", "pcgrad", "imtl_g"];

#[test]
fn public_vectors_pass_on_both_paths() {
    let methods: Vec<String> = METHODS.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let s = run(Path::new(FILE), Some(&methods), PathSel::Both, &mut out).unwrap();
    let report = String::from_utf8(out).unwrap();
    assert_eq!(s.failed, 0, "{report}");
    for m in METHODS {
        for kind in [Kind::Host, Kind::Tensor] {
            let (passed, failed) = s.method(m, kind);
            assert!(
                passed > 0 && failed == 0,
                "{m} {kind:?}: {passed}/{failed}\n{report}"
            );
        }
    }
    assert!(
        report
            .trim_end()
            .ends_with(&format!("{} passed, 0 failed", s.passed))
    );
}

#[test]
fn unknown_methods_are_skipped_not_failed() {
    // Every method id of the public file is now ours; a file with one unknown id and one known
    // one: the unknown is listed as skipped, the known one is checked.
    let file = std::env::temp_dir().join(format!("burn-mtl-unknown-{}.json", std::process::id()));
    let json = r#"{"cases": [{"name": "tiny", "G": [[1.0, 0.0], [0.0, 1.0]], "results": [
        {"method": "no_such_method", "d": [0.0, 0.0]},
        {"method": "mean", "d": [0.5, 0.5]}]}]}"#;
    std::fs::write(&file, json).unwrap();
    let mut out = Vec::new();
    let s = run(&file, None, PathSel::Host, &mut out).unwrap();
    let _ = std::fs::remove_file(&file);
    let report = String::from_utf8(out).unwrap();
    assert_eq!((s.passed, s.failed), (1, 0), "{report}");
    assert!(report.contains("skipped: no_such_method"), "{report}");
}

#[test]
fn no_method_of_the_public_file_is_skipped() {
    let mut out = Vec::new();
    let s = run(Path::new(FILE), None, PathSel::Host, &mut out).unwrap();
    let report = String::from_utf8(out).unwrap();
    assert!(s.skipped.is_empty(), "{report}");
}

/// CAGrad (TorchJD and the official formula, SLSQP and exact-solver references) and
/// Aligned-MTL (TorchJD and the original, all three scale modes) on both paths.
#[test]
fn founding_methods_pass_on_both_paths() {
    let ids = [
        "cagrad",
        "cagrad_original",
        "cagrad_original_exact_solver",
        "aligned_mtl",
        "aligned_mtl_original",
    ];
    let methods: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let s = run(Path::new(FILE), Some(&methods), PathSel::Both, &mut out).unwrap();
    let report = String::from_utf8(out).unwrap();
    assert_eq!(s.failed, 0, "{report}");
    for m in ids {
        for kind in [Kind::Host, Kind::Tensor] {
            let (passed, failed) = s.method(m, kind);
            assert!(
                passed >= 24 && failed == 0,
                "{m} {kind:?}: {passed}/{failed}\n{report}"
            );
        }
    }
}

/// ConicGrad (cap reading) against a generic conic solver on the stated primal problem, both
/// paths: every result passes, including the non-unique maximisers (judged by their value).
#[test]
fn conicgrad_passes_conic_vectors_on_both_paths() {
    const CONIC: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/reference/conic_public_vectors_v2.json"
    );
    let methods = vec!["conicgrad".to_string()];
    let mut out = Vec::new();
    let s = run(Path::new(CONIC), Some(&methods), PathSel::Both, &mut out).unwrap();
    let report = String::from_utf8(out).unwrap();
    assert_eq!(s.failed, 0, "{report}");
    for kind in [Kind::Host, Kind::Tensor] {
        assert_eq!(s.method("conicgrad", kind), (120, 0), "{report}");
    }
}

/// FAMO (loss-based, stateful): one instance fed the recorded losses and the losses after
/// each step reproduces TorchJD's sequence on both paths.
#[test]
fn famo_sequence_matches_torchjd() {
    let methods = vec!["famo".to_string()];
    let mut out = Vec::new();
    let s = run(Path::new(FILE), Some(&methods), PathSel::Both, &mut out).unwrap();
    let report = String::from_utf8(out).unwrap();
    for kind in [Kind::Host, Kind::Tensor] {
        assert_eq!(s.method("famo", kind), (4, 0), "{report}");
    }
}
