//! QM9 with the 11 regression targets of the Nash-MTL / LibMTL / FAMO benchmark, on a
//! molecular descriptor (atom counts, Coulomb-matrix eigenvalues, distance histograms) and
//! the shared MLP: every chosen burn-mtl method against single-task training, per-target
//! test MAE and Δm%.
//!
//! ```text
//! cargo xtask fetch-data            # once: puts qm9/qm9_part{1,2,3}.csv under $MTL_DATA_DIR (default data/)
//! cargo run --release -p burn-mtl-examples --bin qm9 -- --method mean,nash_mtl,famo --seeds 2
//! cargo run --release -p burn-mtl-examples --bin qm9 -- --quick
//! ```
//!
//! Writes `summary.md`, `summary.csv`, `curves.csv` and `curves.svg` (test MAE per epoch, one
//! panel per target) to `--out` (default `results/qm9`). See the
//! `burn_mtl_examples::tabular::qm9` module docs for the targets, the descriptor and the split.

use std::path::PathBuf;

use burn_mtl_examples::tabular::TabularError;
use burn_mtl_examples::tabular::cli::{CommonArgs, run_and_report};
use burn_mtl_examples::tabular::qm9::{load_qm9, qm9_dir};
use clap::Parser;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "QM9 (11 regression targets): burn-mtl methods vs single-task training")]
struct Args {
    /// The directory with `qm9_part*.csv` [default: $MTL_DATA_DIR/qm9, MTL_DATA_DIR
    /// defaulting to the workspace's data/].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Training molecules [default: 20000; 2000 with --quick]. Nash-MTL trains on 110 831.
    #[arg(long)]
    train_size: Option<usize>,
    /// Test molecules [default: 10000 as Nash-MTL; 1000 with --quick].
    #[arg(long)]
    test_size: Option<usize>,
    /// Seed of the shuffle that draws the split.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Output directory.
    #[arg(long, default_value = "results/qm9")]
    out: PathBuf,
    /// Methods, seeds, model, optimisation (default 30 epochs, batch 128, hidden 256,256;
    /// --quick: 2 epochs).
    #[command(flatten)]
    common: CommonArgs,
}

fn run(args: &mut Args) -> Result<(), TabularError> {
    let dir = args.data.clone().unwrap_or_else(qm9_dir);
    let quick = args.common.quick;
    let train_size = args
        .train_size
        .unwrap_or(if quick { 2_000 } else { 20_000 });
    let test_size = args.test_size.unwrap_or(if quick { 1_000 } else { 10_000 });
    if test_size == 0 || train_size == 0 {
        return Err(TabularError::new(
            "--train-size and --test-size must be positive",
        ));
    }
    // Wider defaults than the generic ones (more data, more inputs), unless given.
    if args.common.hidden == "64,64" {
        args.common.hidden = "256,256".to_string();
    }
    if args.common.batch_size == 64 {
        args.common.batch_size = 128;
    }
    if !args.common.silent {
        println!("reading and featurising QM9 from {} ...", dir.display());
    }
    let data = load_qm9(&dir, train_size, test_size, args.split_seed)?;
    let config = args.common.train_config(30, 2)?;
    let notes = format!(
        "QM9 (Ramakrishnan et al. 2014; `qm9pack` 1.0.3 CSV), the 11 targets of Nash-MTL / LibMTL \
         (energies in eV, U0/U/H/G as atomization energies). Inputs: a {}-value descriptor \
         (atom counts, sorted Coulomb-matrix eigenvalues, element-pair distance histograms) — \
         not the papers' GNN, so the MAEs are not comparable to theirs. {} train / {} test \
         molecules (split seed {}). Shared MLP {:?}, Adam lr {}, batch {}, {} epochs, MSE on \
         standardised targets. Test MAE at the best epoch on {:.0}% held-out training rows, mean ± std over {} seed(s); Δm% \
         against training each target alone with the same model and epochs (lower is better).",
        data.num_inputs(),
        data.train.n,
        data.test.n,
        args.split_seed,
        config.hidden,
        config.lr,
        config.batch_size,
        config.epochs,
        100.0 * config.valid_fraction,
        args.common.seeds
    );
    run_and_report(&data, &args.common, config, &args.out, "QM9", &notes)?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run(&mut Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
