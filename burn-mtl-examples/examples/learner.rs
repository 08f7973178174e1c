//! A Burn `Learner` trains a three-task model (digit, parity, ≥ 5) on the handwritten digits
//! shipped with `smartcore`, with burn-mtl's `MultiTaskOptimizer` (around Adam) as its optimizer.
//! Per-task losses, accuracies and the method's weights are Learner metrics; per-task test
//! metrics are printed at the end.
//!
//! ```sh
//! cargo run --release -p burn-mtl-examples --example learner -- [--quick] [--method mgda] [--epochs 10]
//! ```

use burn_mtl::Method;
use burn_mtl_examples::digits::{LearnerRun, TASKS, train_with_learner_cpu};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Train a 3-task digits model with a Burn Learner and burn-mtl")]
struct Args {
    /// Short run (2 epochs on 600 training images) for CI.
    #[arg(long)]
    quick: bool,
    /// The multi-task method (any spec string, e.g. `pcgrad:seed=3`).
    #[arg(long, default_value = "mgda")]
    method: String,
    /// Epochs (default 10, or 2 with --quick).
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Accumulate gradients over this many batches.
    #[arg(long)]
    grads_accumulation: Option<usize>,
    /// Artifact directory (checkpoints).
    #[arg(long, default_value = "results/learner")]
    dir: std::path::PathBuf,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let method: Method = match args.method.parse() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let run = LearnerRun {
        method,
        epochs: args.epochs.unwrap_or(if args.quick { 2 } else { 10 }),
        batch_size: args.batch_size,
        lr: args.lr,
        grads_accumulation: args.grads_accumulation,
        multi_device: false,
        limit: args.quick.then_some(600),
        dir: args.dir,
        verbose: true,
        seed: 7,
    };
    println!(
        "method {}, {} epochs, batch {}",
        args.method, run.epochs, run.batch_size
    );
    let out = train_with_learner_cpu(&run);
    println!(
        "\n| task | test loss before | test loss after | test accuracy before | test accuracy after |"
    );
    println!("|---|---|---|---|---|");
    for (k, (name, _)) in TASKS.iter().enumerate() {
        let (b, a) = (out.before[k], out.test[k]);
        println!(
            "| {name} | {:.4} | {:.4} | {:.1}% | {:.1}% |",
            b.0, a.0, b.1, a.1
        );
    }
    if let Some(r) = out.last_report {
        println!(
            "\nlast step: weights {:?}, conflicting pairs {}",
            r.weights, r.conflicts
        );
    }
    std::process::ExitCode::SUCCESS
}
