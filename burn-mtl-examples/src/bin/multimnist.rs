//! MultiMNIST / MultiFashion benchmark (Sener & Koltun 2018; Lin et al. 2019): every multi-task
//! method and the single-task baselines on a shared MultiLeNet, over several seeds. Writes
//! `results.md` (test accuracy per task, Δm%, seconds per epoch, mean ± std), `curves.csv` and
//! `multimnist.svg` into the output folder.
//!
//! ```sh
//! cargo xtask fetch-data --only mnist            # once (fashion-mnist for the Fashion variants)
//! cargo run --release -p burn-mtl-examples --bin multimnist -- --quick
//! cargo run --release -p burn-mtl-examples --bin multimnist -- --dataset fashion \
//!     --method mean,mgda,pcgrad,cagrad --epochs 3 --seeds 2
//! ```

use std::path::PathBuf;

use burn_mtl_examples::data::data_dir;
use burn_mtl_examples::multimnist::bench::{BenchOptions, default_methods, parse_methods, run};
use burn_mtl_examples::multimnist::{TrainConfig, Variant};
use clap::Parser;

#[derive(Parser)]
#[command(about = "MultiMNIST / MultiFashion: every multi-task method vs single-task baselines")]
struct Args {
    /// mnist (MultiMNIST), fashion or fashion-mnist (MultiFashion), fashion+mnist
    /// (MNIST digit top-left, Fashion item bottom-right).
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Small subset (1,024 training / 500 test images, batch 64, 1 epoch, 1 seed): about a minute
    /// for every method on 2 idle cores.
    #[arg(long)]
    quick: bool,
    /// Methods (repeatable or comma separated, with options, e.g. `pcgrad:seed=3`). Default:
    /// every method of `Method::all_defaults()`.
    #[arg(long = "method")]
    methods: Vec<String>,
    /// Seeds per configuration (default 1).
    #[arg(long)]
    seeds: Option<usize>,
    /// Epochs (default 5, or 1 with --quick).
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per step (default 256, or 64 with --quick).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Use the first N training images of each source split (default: all 60,000).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Use the first N test images (default: all 10,000).
    #[arg(long)]
    test_limit: Option<usize>,
    /// Seed of the partner draws (the composed data set).
    #[arg(long, default_value_t = 0)]
    data_seed: u64,
    /// Data folder (default: $MTL_DATA_DIR, else data/ at the workspace root).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Output folder (default: `results/multimnist-<dataset>/`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Never show the progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn main() -> std::process::ExitCode {
    match main_inner(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn main_inner(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let variant = Variant::parse(&args.dataset)?;
    let methods = if args.methods.is_empty() {
        default_methods()
    } else {
        parse_methods(&args.methods)?
    };
    if methods.is_empty() {
        return Err("no method given".into());
    }
    let opts = BenchOptions {
        variant,
        data_dir: args.data_dir.unwrap_or_else(data_dir),
        methods,
        seeds: args.seeds.unwrap_or(1),
        train: TrainConfig {
            epochs: args.epochs.unwrap_or(if args.quick { 1 } else { 5 }),
            batch_size: args.batch_size.unwrap_or(if args.quick { 64 } else { 256 }),
            lr: args.lr,
            seed: 0,
        },
        train_limit: args.train_limit.or(args.quick.then_some(1024)),
        test_limit: args.test_limit.or(args.quick.then_some(500)),
        data_seed: args.data_seed,
        out: args
            .out
            .unwrap_or_else(|| PathBuf::from(format!("results/multimnist-{}", variant.name()))),
        progress: !args.no_progress,
        verbose: true,
    };
    let summary = run(&opts)?;
    println!("\n{}", summary.markdown);
    for f in &summary.files {
        println!("wrote {}", f.display());
    }
    Ok(())
}
