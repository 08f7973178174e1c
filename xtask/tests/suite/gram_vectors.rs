//! The reference checker on the public vectors for the Gram-based catalogue methods (GradVac,
//! UPGrad, DualProj, Nash-MTL, FairGrad, Krum, RLW): every result and every step of the
//! stateful sequences passes on both the host (f64) and the tensor (NdArray f32) path, and none
//! is skipped.

use std::path::Path;

use xtask::check_vectors::{Kind, PathSel, run};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/reference/public_vectors.json"
);

const METHODS: [&str; 7] = [
    "gradvac", "upgrad", "dualproj", "nash_mtl", "fairgrad", "krum", "random",
];

#[test]
fn gram_methods_pass_public_vectors_on_both_paths() {
    let methods: Vec<String> = METHODS.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let s = run(Path::new(FILE), Some(&methods), PathSel::Both, &mut out).unwrap();
    let report = String::from_utf8(out).unwrap();
    assert_eq!(s.failed, 0, "{report}");
    assert!(s.skipped.is_empty(), "{report}");
    for m in METHODS {
        for kind in [Kind::Host, Kind::Tensor] {
            let (passed, failed) = s.method(m, kind);
            assert!(
                passed > 0 && failed == 0,
                "{m} {kind:?}: {passed}/{failed}\n{report}"
            );
        }
    }
    // The sequences (gradvac_seq: 4 steps with injected orders, nash_mtl_seq: 4 steps with the
    // warm start) are part of the counts: 24 cases + 4 steps each.
    assert_eq!(s.method("gradvac", Kind::Host).0, 28, "{report}");
    assert_eq!(s.method("nash_mtl", Kind::Tensor).0, 28, "{report}");
    assert!(
        report
            .trim_end()
            .ends_with(&format!("{} passed, 0 failed", s.passed))
    );
}
