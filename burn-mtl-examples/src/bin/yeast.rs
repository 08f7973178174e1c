//! Yeast multi-label benchmark (14 binary tasks, 103 features): every chosen burn-mtl method
//! against single-task training, per-task test accuracy and Δm%.
//!
//! ```text
//! cargo xtask fetch-data            # once: puts yeast/yeast.csv.gz under $MTL_DATA_DIR (default data/)
//! cargo run --release -p burn-mtl-examples --bin yeast -- --method mean,mgda,famo --seeds 2
//! cargo run --release -p burn-mtl-examples --bin yeast -- --quick
//! ```
//!
//! Writes `summary.md`, `summary.csv`, `curves.csv` and `curves.svg` (test accuracy per epoch,
//! one panel per label) to `--out` (default `results/yeast`). See the
//! `burn_mtl_examples::tabular::yeast` module docs for the data and the split.

use std::path::PathBuf;

use burn_mtl_examples::tabular::TabularError;
use burn_mtl_examples::tabular::cli::{CommonArgs, run_and_report};
use burn_mtl_examples::tabular::yeast::{YEAST_TEST_ROWS, load_yeast, yeast_path};
use clap::Parser;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Yeast (14 binary labels): burn-mtl methods vs single-task training")]
struct Args {
    /// The Yeast file [default: $MTL_DATA_DIR/yeast/yeast.csv.gz, MTL_DATA_DIR defaulting to
    /// the workspace's data/].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed of the train/test shuffle (fixed across methods and training seeds).
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Output directory.
    #[arg(long, default_value = "results/yeast")]
    out: PathBuf,
    /// Methods, seeds, model, optimisation (default 40 epochs; --quick: 2 epochs on 500
    /// training rows).
    #[command(flatten)]
    common: CommonArgs,
}

fn run(args: &Args) -> Result<(), TabularError> {
    let path = args.data.clone().unwrap_or_else(yeast_path);
    let max_train = args.common.quick.then_some(500);
    let data = load_yeast(&path, args.split_seed, max_train)?;
    let config = args.common.train_config(40, 2)?;
    let notes = format!(
        "Yeast (Elisseeff & Weston 2001; MULAN version from the `river` 0.26.1 wheel): {} train / \
         {} test rows ({} test rows drawn by a shuffle with split seed {}), 103 features, 14 \
         binary labels = 14 tasks. Shared MLP {:?} + one logit per label, Adam lr {}, batch {}, \
         {} epochs. Test accuracy (%) at the best epoch on {:.0}% held-out training rows, mean ± std over {} seed(s); Δm% \
         against training each label alone with the same model and epochs (lower is better).",
        data.train.n,
        data.test.n,
        YEAST_TEST_ROWS,
        args.split_seed,
        config.hidden,
        config.lr,
        config.batch_size,
        config.epochs,
        100.0 * config.valid_fraction,
        args.common.seeds
    );
    run_and_report(&data, &args.common, config, &args.out, "Yeast", &notes)?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run(&Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
