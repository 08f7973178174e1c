//! The tabular pipeline without network or data files: CSV parsing, encodings fitted on the
//! training split only, and a short end-to-end run of the `tabular` binary's library entry
//! point on the synthetic sample.

use std::path::PathBuf;

use burn_mtl_examples::tabular::cli::{TabularArgs, run_tabular};
use burn_mtl_examples::tabular::encode::{
    CategoricalMode, FeatureEncoding, PrepareOptions, TargetSpec, TaskEncoding, prepare,
};
use burn_mtl_examples::tabular::synthetic::synthetic_csv;
use burn_mtl_examples::tabular::table::{CsvOptions, Table};
use clap::Parser;

fn read(text: &str, header: bool, sep: &str) -> Table {
    Table::from_reader(
        text.as_bytes(),
        &CsvOptions {
            has_header: header,
            separator: sep.to_string(),
        },
    )
    .unwrap()
}

fn targets(specs: &[&str]) -> PrepareOptions {
    PrepareOptions {
        targets: specs
            .iter()
            .map(|s| s.parse::<TargetSpec>().unwrap())
            .collect(),
        ..PrepareOptions::default()
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("burn-mtl-tabular-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn header_names_and_indices() {
    let t = read("a,b,c\n1,x,3\n4,y,6\n", true, ",");
    assert_eq!(t.names, ["a", "b", "c"]);
    assert_eq!(t.num_rows(), 2);
    assert_eq!(t.resolve("b").unwrap(), 1);
    assert_eq!(t.resolve("2").unwrap(), 2);
    let err = t.resolve("nope").unwrap_err().to_string();
    assert!(err.contains("no column \"nope\""), "{err}");
    assert!(t.resolve("3").is_err());

    // A header name that looks like an index wins over the index.
    let t = read("1,0\n5,6\n", true, ",");
    assert_eq!(t.resolve("1").unwrap(), 0);

    let t = read("1,x,3\n4,y,6\n", false, ",");
    assert_eq!(t.names, ["0", "1", "2"]);
    assert_eq!(t.num_rows(), 2);
    assert_eq!(t.columns[1], ["x", "y"]);
}

#[test]
fn comma_space_separator_quotes_and_blank_lines() {
    let text = "39, State-gov, \"Smith, J\", 50000+.\n\n50, ?, Doe, - 50000.\n";
    let t = read(text, false, ", ");
    assert_eq!(t.num_columns(), 4);
    assert_eq!(t.columns[1], ["State-gov", "?"]);
    assert_eq!(t.columns[2], ["Smith, J", "Doe"]);
    assert_eq!(t.columns[3], ["50000+.", "- 50000."]);
    let t = read("a\tb\n1\t2\n", true, "\\t");
    assert_eq!(t.columns[1], ["2"]);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let opts = CsvOptions::default();
    let e = Table::from_reader("a,b\n1,2\n3\n".as_bytes(), &opts).unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    assert!(Table::from_reader("".as_bytes(), &opts).is_err());
    let sep = CsvOptions {
        separator: "::".into(),
        ..opts.clone()
    };
    assert!(Table::from_reader("a::b\n".as_bytes(), &sep).is_err());
    let e = Table::read(std::path::Path::new("/nonexistent/x.csv"), &opts).unwrap_err();
    assert!(e.to_string().contains("cannot open"), "{e}");
    assert!("col".parse::<TargetSpec>().is_err());
    assert!("col:weird".parse::<TargetSpec>().is_err());

    let t = read("a,b,y\n1,2,p\n3,4,q\n5,6,r\n", true, ",");
    // Three values for a binary target.
    let e = prepare(&t, &t, &targets(&["y:binary"])).unwrap_err();
    assert!(e.to_string().contains("3 distinct values"), "{e}");
    // A non-number as a regression target.
    let e = prepare(&t, &t, &targets(&["y:regression"])).unwrap_err();
    assert!(e.to_string().contains("not a number"), "{e}");
    // No target; a column both target and dropped; an unknown column.
    assert!(prepare(&t, &t, &targets(&[])).is_err());
    let mut o = targets(&["y:classes"]);
    o.drop = vec!["y".into()];
    assert!(prepare(&t, &t, &o).is_err());
    assert!(prepare(&t, &t, &targets(&["zz:classes"])).is_err());
    // --categorical none with a text feature.
    let t = read("a,b,y\n1,u,0\n3,v,1\n", true, ",");
    let mut o = targets(&["y:binary"]);
    o.categorical = CategoricalMode::None;
    let e = prepare(&t, &t, &o).unwrap_err();
    assert!(e.to_string().contains("not a number"), "{e}");
}

#[test]
fn categorical_auto_one_hot_and_standardisation_use_train_statistics_only() {
    // num: train values 1, 3, ? → mean 2, std 1; cat: train categories {a, b}; the test set
    // has an unseen category c, a missing one, and a far-away number.
    let train = read(
        "num,cat,mixed,y\n1,a,1,- 50000.\n3,b,x,50000+.\n?,a,2,50000+.\n",
        true,
        ",",
    );
    let test = read(
        "num,cat,mixed,y\n100,c,3,- 50000.\n?,,1,50000+.\n",
        true,
        ",",
    );
    let d = prepare(&train, &test, &targets(&["y:binary"])).unwrap();
    assert_eq!(
        d.features[0].encoding,
        FeatureEncoding::Numeric {
            mean: 2.0,
            std: 1.0
        }
    );
    assert_eq!(
        d.features[1].encoding,
        FeatureEncoding::OneHot {
            categories: vec!["a".into(), "b".into()]
        }
    );
    // `mixed` has one non-number (x) among numbers: categorical under `auto`.
    assert!(matches!(
        d.features[2].encoding,
        FeatureEncoding::OneHot { .. }
    ));
    assert_eq!(
        d.tasks[0].encoding,
        TaskEncoding::Binary {
            labels: ["- 50000.".into(), "50000+.".into()]
        }
    );
    let dd = d.train.d;
    assert_eq!(dd, 1 + 2 + 3);
    // Train row 0: num (1−2)/1 = −1, cat a → [1, 0]; train row 2: missing num → 0.
    assert_eq!(&d.train.x[0..3], &[-1.0, 1.0, 0.0]);
    assert_eq!(d.train.x[2 * dd], 0.0);
    // Test row 0: (100 − 2)/1 = 98 with the train statistics; unseen c → zeros.
    assert_eq!(&d.test.x[0..3], &[98.0, 0.0, 0.0]);
    // Test row 1: missing num → 0 (the train mean), missing cat → zeros.
    assert_eq!(&d.test.x[dd..dd + 3], &[0.0, 0.0, 0.0]);
    assert_eq!(d.train.y[0], [0.0, 1.0, 1.0]);
    assert_eq!(d.test.y[0], [0.0, 1.0]);
}

#[test]
fn targets_classes_regression_and_missing_target_rows() {
    let train = read("f,k,r\n1,x,10\n2,y,20\n3,z,?\n4,x,30\n", true, ",");
    let test = read("f,k,r\n5,z,40\n", true, ",");
    let d = prepare(&train, &test, &targets(&["k:classes", "r:regression"])).unwrap();
    // The row with a missing regression target is dropped.
    assert_eq!(d.dropped_rows, (1, 0));
    assert_eq!(d.train.n, 3);
    assert_eq!(
        d.tasks[0].encoding,
        TaskEncoding::Classes {
            labels: vec!["x".into(), "y".into(), "z".into()]
        }
    );
    assert_eq!(d.train.y[0], [0.0, 1.0, 0.0]);
    assert_eq!(d.test.y[0], [2.0]);
    let TaskEncoding::Regression { mean, std } = d.tasks[1].encoding else {
        panic!("regression")
    };
    assert!((mean - 20.0).abs() < 1e-12);
    assert!((std - (200.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert!((d.test.y[1][0] as f64 - (40.0 - mean) / std).abs() < 1e-6);
    // Numeric class labels are ordered numerically (2 < 10).
    let t = read("f,c\n1,10\n2,2\n3,10\n", true, ",");
    let d = prepare(&t, &t, &targets(&["c:binary"])).unwrap();
    assert_eq!(
        d.tasks[0].encoding,
        TaskEncoding::Binary {
            labels: ["2".into(), "10".into()]
        }
    );
}

#[test]
fn sample_file_is_the_generator_output() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data-samples/synthetic_mixed.csv");
    let text = synthetic_csv(300, 7);
    if std::env::var_os("BURN_MTL_WRITE_SAMPLES").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert_eq!(committed, text, "regenerate with BURN_MTL_WRITE_SAMPLES=1");
}

#[test]
fn end_to_end_synthetic_run_learns_every_task() {
    let dir = tmp("e2e");
    let csv = dir.join("synthetic.csv");
    std::fs::write(&csv, synthetic_csv(600, 11)).unwrap();
    let out = dir.join("out");
    let args = TabularArgs::try_parse_from([
        "tabular",
        "--csv",
        csv.to_str().unwrap(),
        "--sep",
        ", ",
        "--target",
        "income:binary",
        "--target",
        "kind:classes",
        "--target",
        "8:regression",
        "--drop",
        "id",
        "--method",
        "mean,mgda",
        "--method",
        "famo",
        "--epochs",
        "12",
        "--batch-size",
        "32",
        "--lr",
        "3e-3",
        "--silent",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    let result = run_tabular(&args).unwrap();
    assert_eq!(result.methods.len(), 3);
    let base = result.baseline_metrics().unwrap();
    assert!(base.iter().all(|v| v.is_finite()), "{base:?}");
    // The regression target's MAE if one always predicted its mean (std ≈ 3.3 for this data).
    let TaskEncoding::Regression { std, .. } = result.tasks[2].encoding else {
        panic!("regression")
    };
    for m in &result.methods {
        let metrics = m.mean_metrics(3);
        assert!(
            metrics.iter().all(|v| v.is_finite()),
            "{}: {metrics:?}",
            m.label
        );
        // Chance: ≤ 60 % for the binary task (the majority class), ≤ 50 % for the three
        // classes (z is half the rows); the easy rules are learned well above that.
        assert!(
            metrics[0] > 75.0,
            "{}: income accuracy {metrics:?}",
            m.label
        );
        assert!(metrics[1] > 75.0, "{}: kind accuracy {metrics:?}", m.label);
        assert!(
            metrics[2] < 0.5 * std,
            "{}: value MAE {metrics:?} (std {std})",
            m.label
        );
        let dm = result.delta_m(m);
        assert!(dm.len() == 1 && dm[0].is_finite(), "{dm:?}");
        assert_eq!(m.runs[0].rejected_steps, 0);
    }
    for f in ["summary.md", "summary.csv", "curves.csv", "curves.svg"] {
        let p = out.join(f);
        assert!(
            std::fs::metadata(&p).is_ok_and(|m| m.len() > 0),
            "{}",
            p.display()
        );
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("| single-task |") && md.contains("| famo |"),
        "{md}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn entry_point_reports_bad_options() {
    let dir = tmp("bad");
    let csv = dir.join("s.csv");
    std::fs::write(&csv, synthetic_csv(50, 1)).unwrap();
    let run = |extra: &[&str]| {
        let mut argv = vec![
            "tabular",
            "--csv",
            csv.to_str().unwrap(),
            "--sep",
            ", ",
            "--silent",
        ];
        argv.extend_from_slice(extra);
        run_tabular(&TabularArgs::try_parse_from(argv).unwrap()).map(|_| ())
    };
    let e = run(&["--target", "missing:binary"]).unwrap_err();
    assert!(e.to_string().contains("no column"), "{e}");
    let e = run(&["--target", "income:binary", "--method", "nonsense"]).unwrap_err();
    assert!(e.to_string().contains("nonsense"), "{e}");
    let e = run(&["--target", "income:binary", "--test-fraction", "1.5"]).unwrap_err();
    assert!(e.to_string().contains("test-fraction"), "{e}");
    let e = run(&["--target", "color:binary"]).unwrap_err();
    assert!(e.to_string().contains("distinct values"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn qm9_row_parsing_targets_and_descriptor() {
    use burn_mtl_examples::tabular::qm9::{
        HARTREE_TO_EV, descriptor, feature_names, read_molecules,
    };
    // The first row of qm9pack's qm9_part1.csv (methane), the long text columns shortened.
    let csv = "XYZ_file,Index,SMILES,InChi,N_atoms,Stoichiometry,Elements,XYZ_Ang,Mulliken_pop,\
Harmonic_Freq_cmi,RotA_GHz,RotB_GHz,RotC_GHz,Dipole_debye,Polarizability_bohr3,HOMO_au,LUMO_au,\
HOMO_LUMO_gap_au,R2_bohr2,ZPVE_au,InternalEnergy_0K_au,InternalEnergy_298K_au,Enthalphy_298K_au,\
GibbsFreeEnergy_298K_au,Heatcapacity_Cv_cal_mol_K
\"dsgdb9nsd_000001.xyz\",1,\"C\",\"InChI=1S/CH4/h1H4\",5,\"[4,1,0,0,0]\",\"['C','H','H','H','H']\",\
\"[[-0.0126981359,1.0858041578,0.0080009958],[0.002150416,-0.0060313176,0.0019761204],\
[1.0117308433,1.4637511618,0.0002765748],[-0.540815069,1.4475266138,-0.8766437152],\
[-0.5238136345,1.4379326443,0.9063972942]]\",\"[-0.535689]\",\"[1341.307]\",157.7118,157.70997,\
157.70699,0.,13.21,-0.3877,0.1171,0.5048,35.3641,0.044749,-40.47893,-40.476062,-40.475117,\
-40.498597,6.469
";
    let dir = tmp("qm9");
    let path = dir.join("qm9_part1.csv");
    std::fs::write(&path, csv).unwrap();
    let mols = read_molecules(&path).unwrap();
    assert_eq!(mols.len(), 1);
    let m = &mols[0];
    assert_eq!(m.elements, [1, 0, 0, 0, 0]);
    // μ = "0." parses; ε_HOMO in eV; U0 atomization: −40.47893 − (−37.846772 − 4 · 0.500273) Ha.
    assert_eq!(m.targets[0], 0.0);
    assert!((m.targets[2] - (-0.3877 * HARTREE_TO_EV)).abs() < 1e-9);
    let u0 = (-40.47893 + 37.846772 + 4.0 * 0.500273) * HARTREE_TO_EV;
    assert!(
        (m.targets[6] - u0).abs() < 1e-9 && (u0 + 17.172).abs() < 1e-2,
        "{u0}"
    );
    assert_eq!(m.targets[10], 6.469);
    let f = descriptor(m);
    let names = feature_names();
    assert_eq!(f.len(), names.len());
    let get = |n: &str| f[names.iter().position(|x| x == n).unwrap()];
    assert_eq!((get("n_atoms"), get("n_H"), get("n_C")), (5.0, 4.0, 1.0));
    // Four C–H bonds of 1.09 Å (first bin, 0.8–1.22 Å); six H–H pairs at 1.78 Å (third bin).
    assert_eq!(get("d_HC_0"), 4.0);
    assert_eq!(get("d_HH_2"), 6.0);
    assert!(get("cm_eig_0") > get("cm_eig_1") && get("cm_eig_5") == 0.0);
    // A malformed row is an error naming the line.
    std::fs::write(&path, csv.replace("'C','H'", "'C','Xx'")).unwrap();
    let e = read_molecules(&path).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("Xx"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
