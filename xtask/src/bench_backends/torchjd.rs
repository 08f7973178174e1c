//! TorchJD in `bench-backends`: `--torchjd` runs the same problems through TorchJD
//! ([`run_torchjd`], with the Python script `xtask/src/bench/torchjd_bench.py`); without it, the
//! comparison column shows the reference medians of another run, read from
//! `docs/bench/torchjd_reference.csv` ([`torchjd_reference_s`]).

use burn_mtl::Weighting;

use super::cli::{Args, Plan};
use super::output::Record;

const TORCHJD_SCRIPT: &str = include_str!("../bench/torchjd_bench.py");

pub(super) fn run_torchjd(args: &Args, plan: &Plan) -> Result<Vec<Record>, String> {
    let ok = std::process::Command::new(&args.python)
        .args(["-c", "import torchjd, torch"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return Err(format!(
            "`{} -c \"import torchjd, torch\"` failed",
            args.python
        ));
    }
    let dir = std::env::temp_dir().join(format!("burn-mtl-torchjd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let script = dir.join("torchjd_bench.py");
    std::fs::write(&script, TORCHJD_SCRIPT).map_err(|e| e.to_string())?;
    let mut methods: Vec<String> = Vec::new();
    for m in &plan.methods {
        if let Some(n) = crate::references::torchjd_class(m.name()) {
            methods.push(format!("{}={n}", m.name()));
        }
    }
    let mut cmd = std::process::Command::new(&args.python);
    cmd.arg(&script)
        .arg("--k")
        .arg(join(&plan.ks))
        .arg("--p")
        .arg(join(&plan.ps))
        .arg("--methods")
        .arg(methods.join(","))
        .arg("--threads")
        .arg(args.torch_threads.to_string());
    if plan.quick {
        cmd.arg("--quick");
    }
    if let Some(r) = plan.reps {
        cmd.arg("--reps").arg(r.to_string());
    }
    eprintln!("bench-backends: running TorchJD: {cmd:?}");
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(format!("TorchJD script exited with {}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut recs = Vec::new();
    for line in text.lines().filter(|l| l.starts_with('{')) {
        let r: Record = serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
        recs.push(r);
    }
    Ok(recs)
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// TorchJD 0.18 medians from `shared/reference/timing.md` (torch threads = 1, a 2-core Xeon
/// like CI's): another run on another machine, for orientation only. Data, not code:
/// `docs/bench/torchjd_reference.csv` (`method,k,p,median_ms`, `#` comment lines).
const TORCHJD_REFERENCE_CSV: &str = include_str!("../../../docs/bench/torchjd_reference.csv");

/// The rows of [`TORCHJD_REFERENCE_CSV`]: `(method, K, P, seconds)`; a malformed line is an
/// error naming it.
fn torchjd_reference() -> Result<Vec<(&'static str, usize, usize, f64)>, String> {
    TORCHJD_REFERENCE_CSV
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            match f.as_slice() {
                [m, k, p, ms] => match (k.parse(), p.parse(), ms.parse::<f64>()) {
                    (Ok(k), Ok(p), Ok(ms)) if ms.is_finite() && ms > 0.0 => {
                        Ok((*m, k, p, ms * 1e-3))
                    }
                    _ => Err(format!("torchjd_reference.csv: bad values in `{line}`")),
                },
                _ => Err(format!(
                    "torchjd_reference.csv: expected 4 fields in `{line}`"
                )),
            }
        })
        .collect()
}

pub(super) fn torchjd_reference_s(method: &str, k: usize, p: usize) -> Option<f64> {
    let rows = torchjd_reference().ok()?;
    rows.iter()
        .find(|r| r.0 == method && r.1 == k && r.2 == p)
        .map(|r| r.3)
}

#[cfg(test)]
mod tests {
    use super::{torchjd_reference, torchjd_reference_s};

    #[test]
    fn torchjd_reference_data_parses_and_is_complete() {
        let rows = torchjd_reference().expect("docs/bench/torchjd_reference.csv parses");
        let mut methods: Vec<&str> = rows.iter().map(|r| r.0).collect();
        methods.dedup();
        assert!(methods.contains(&"bound") && methods.contains(&"mgda"));
        for m in methods {
            for k in [2, 10, 40] {
                for p in [10_000, 1_000_000, 10_000_000] {
                    // TorchJD's Krum needs K > 2; every other cell is measured.
                    let expected = !(m == "krum" && k == 2);
                    assert_eq!(
                        torchjd_reference_s(m, k, p).is_some(),
                        expected,
                        "{m} K={k} P={p}"
                    );
                }
            }
            if m != "bound" {
                assert!(
                    m.parse::<burn_mtl::Method>().is_ok(),
                    "{m} is not a burn-mtl method"
                );
            }
        }
        // Larger problems take longer: the table is in ms, read as seconds.
        let small = torchjd_reference_s("mean", 10, 10_000).unwrap();
        let large = torchjd_reference_s("mean", 10, 10_000_000).unwrap();
        assert!(small < large && large < 1.0);
    }
}
