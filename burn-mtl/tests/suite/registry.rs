//! The method registry (`method::registry!`) is the one list of methods: everything that
//! names methods is derived from it or checked against it here.

use burn_mtl::Method;
use burn_mtl::method::Weighting;

/// Every registered name parses to the method of that name, round-trips through serde with
/// the name as its tag, and is in the help text.
#[test]
fn names_parse_and_round_trip() {
    let help = Method::help();
    for &name in Method::names() {
        let spec = if name == "linear" {
            "linear:weights=0.5/0.5"
        } else {
            name
        };
        let m: Method = spec.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.name(), name);
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.starts_with(&format!("{{\"{name}\"")), "{json}");
        let back: Method = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert!(help.contains(name), "{name} missing from the help text");
    }
    assert!("no_such_method".parse::<Method>().is_err());
}

/// `all_defaults` (what the toy main job, the tabular and MultiMNIST runners and the bench run
/// by default) has every registered method but Linear, which needs its weights.
#[test]
fn all_defaults_cover_the_registry() {
    let defaults: Vec<&str> = Method::all_defaults().iter().map(|m| m.name()).collect();
    let expected: Vec<&str> = Method::names()
        .iter()
        .copied()
        .filter(|n| *n != "linear")
        .collect();
    assert_eq!(defaults, expected);
}

/// The README's method table lists every registered method by its spec string.
#[test]
fn readme_lists_every_method() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("## Methods")
        .expect("README has a Methods section");
    let table = &readme[start..];
    let table = &table[..table[3..].find("\n## ").map_or(table.len(), |i| i + 3)];
    let missing: Vec<&str> = Method::names()
        .iter()
        .copied()
        .filter(|n| !table.contains(&format!("`{n}")))
        .collect();
    assert!(
        missing.is_empty(),
        "README's method table lacks {missing:?}"
    );
}

/// The committed main-job table (`docs/results/toy/summary.md`, the toy's default run) has
/// every method of `all_defaults`: a newly registered method fails here until the main job
/// is re-run with it.
#[test]
fn toy_main_job_table_has_every_method() {
    let table = include_str!("../../../docs/results/toy/summary.md");
    let missing: Vec<&str> = Method::all_defaults()
        .iter()
        .map(|m| m.name())
        .filter(|n| !table.contains(&format!("\n| {n} | ")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/results/toy/summary.md lacks {missing:?}: re-run the toy main job"
    );
}
