//! The command lines of the `tabular`, `yeast` and `qm9` binaries, as library entry points
//! (the tests drive them through [`run_tabular`]).

use std::path::PathBuf;

use burn::backend::{Autodiff, NdArray};
use burn_mtl::Method;
use clap::{Args, Parser};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::TabularError;
use super::encode::{CategoricalMode, Dataset, PrepareOptions, TargetSpec, prepare};
use super::output;
use super::table::{CsvOptions, Table};
use super::train::{Experiment, ExperimentResult, TrainConfig, run_experiment, steps_per_run};

/// The backend every binary trains on (CPU).
pub type Backend = Autodiff<NdArray>;

/// Options shared by the `tabular`, `yeast` and `qm9` binaries: methods, seeds, model and
/// optimisation, output.
#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// Methods to compare: specification strings, comma-separated or repeated (e.g.
    /// `--method mean,mgda --method pcgrad:seed=3`; a `key=value` item without `:` belongs to
    /// the method before it); `all` = every built-in method with its defaults.
    #[arg(long = "method", default_value = "mean")]
    pub methods: Vec<String>,
    /// Number of seeds (0, 1, ..., N−1): model initialisation and batch order.
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// Epochs (default depends on the binary; fewer with --quick).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// A short run (CI smoke test): few epochs, small data where the binary says so.
    #[arg(long)]
    pub quick: bool,
    /// Rows per optimizer step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Widths of the shared hidden layers, comma-separated.
    #[arg(long, default_value = "64,64")]
    pub hidden: String,
    /// Clip the global norm of the combined update to this value.
    #[arg(long)]
    pub max_grad_norm: Option<f64>,
    /// Fraction of the training rows held out to choose the reported epoch of each run (the
    /// best on these rows); 0 reports the last epoch.
    #[arg(long, default_value_t = 0.1)]
    pub valid_fraction: f64,
    /// Skip the single-task baselines (no Δm%).
    #[arg(long)]
    pub no_baseline: bool,
    /// Never show progress bars (they are hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
    /// Print nothing but errors.
    #[arg(long)]
    pub silent: bool,
}

impl CommonArgs {
    /// The methods as `(label, method)`.
    ///
    /// # Errors
    /// An unknown method or option.
    pub fn methods(&self) -> Result<Vec<(String, Method)>, TabularError> {
        let mut out = Vec::new();
        for item in &self.methods {
            if item.trim() == "all" {
                out.extend(
                    Method::all_defaults()
                        .into_iter()
                        .map(|m| (m.to_string(), m)),
                );
                continue;
            }
            for spec in burn_mtl::method::split_specs(item) {
                let m = spec
                    .parse::<Method>()
                    .map_err(|e| TabularError::new(format!("--method {spec:?}: {e}")))?;
                out.push((spec, m));
            }
        }
        if out.is_empty() {
            return Err(TabularError::new("no method given"));
        }
        Ok(out)
    }

    /// The training configuration, with `epochs` (or `quick_epochs` with `--quick`) unless
    /// `--epochs` is given.
    ///
    /// # Errors
    /// A malformed `--hidden`, or a zero batch size or epoch count.
    pub fn train_config(
        &self,
        epochs: usize,
        quick_epochs: usize,
    ) -> Result<TrainConfig, TabularError> {
        let hidden = self
            .hidden
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<usize>().ok().filter(|&h| h > 0).ok_or_else(|| {
                    TabularError::new(format!("--hidden: {s:?} is not a positive width"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let epochs = self
            .epochs
            .unwrap_or(if self.quick { quick_epochs } else { epochs });
        if epochs == 0 || self.batch_size == 0 {
            return Err(TabularError::new(
                "--epochs and --batch-size must be positive",
            ));
        }
        if !(0.0..0.9).contains(&self.valid_fraction) {
            return Err(TabularError::new("--valid-fraction must be in [0, 0.9)"));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(TabularError::new("--lr must be a positive number"));
        }
        Ok(TrainConfig {
            epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            hidden,
            max_grad_norm: self.max_grad_norm,
            valid_fraction: self.valid_fraction,
        })
    }
}

/// Runs the experiment on `data` as `common` says (progress bar on stderr), prints the table
/// and writes the outputs of [`output::write_all`] into `out`.
///
/// # Errors
/// Invalid options, or see [`run_experiment`] and [`output::write_all`].
pub fn run_and_report(
    data: &Dataset,
    common: &CommonArgs,
    config: TrainConfig,
    out: &std::path::Path,
    heading: &str,
    notes: &str,
) -> Result<ExperimentResult, TabularError> {
    let methods = common.methods()?;
    if common.seeds == 0 {
        return Err(TabularError::new("--seeds must be at least 1"));
    }
    let experiment = Experiment {
        methods,
        seeds: (0..common.seeds as u64).collect(),
        train: config,
        baseline: !common.no_baseline,
    };
    let per_run = steps_per_run(data, &experiment.train) as u64;
    let runs = experiment.seeds.len() as u64
        * (experiment.methods.len() as u64
            + if experiment.baseline {
                data.tasks.len() as u64
            } else {
                0
            });
    let bar = ProgressBar::new(per_run * runs);
    if common.no_progress || common.silent {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {percent:>3}% {msg} (eta {eta})",
        )
        .map_err(|e| TabularError::new(e.to_string()))?
        .progress_chars("=> "),
    );
    if !common.silent {
        println!("{heading}\n{data}");
        println!(
            "{} epochs, batch {}, Adam lr {}, hidden {:?}, {} seed(s), {} method(s){}",
            experiment.train.epochs,
            experiment.train.batch_size,
            experiment.train.lr,
            experiment.train.hidden,
            experiment.seeds.len(),
            experiment.methods.len(),
            if experiment.baseline {
                " + single-task baselines"
            } else {
                ""
            }
        );
    }
    let device = Default::default();
    let mut current = String::new();
    let result = run_experiment::<Backend>(data, &experiment, &device, |label, n| {
        if label != current {
            current = label.to_string();
            bar.set_message(current.clone());
        }
        bar.inc(n as u64);
    });
    bar.finish_and_clear();
    let result = result?;
    output::write_all(&result, out, heading, notes)?;
    if !common.silent {
        println!("\n{}", output::markdown(&result));
        for m in &result.methods {
            for r in &m.runs {
                if let Some(why) = &r.first_rejection {
                    println!(
                        "note: {} seed {}: {}/{} steps rejected, first because: {why}",
                        m.label, r.seed, r.rejected_steps, r.steps
                    );
                }
            }
        }
        println!(
            "wall time {:.1} s; wrote {}/{{summary.md,summary.csv,curves.csv,curves.svg}}",
            result.elapsed.as_secs_f64(),
            out.display()
        );
    }
    Ok(result)
}

/// The `tabular` binary's options.
#[derive(Parser, Clone, Debug)]
#[command(
    name = "tabular",
    about = "Multi-task learning on any CSV: a shared MLP with one head per target, trained with \
             burn-mtl methods; per-task test metrics and Δm% against single-task training"
)]
pub struct TabularArgs {
    /// The data file (`.csv`, or `.csv.gz`/any `.gz`).
    #[arg(long)]
    pub csv: PathBuf,
    /// The file has no header row: columns are named by 0-based index.
    #[arg(long)]
    pub no_header: bool,
    /// Field separator: one character, optionally followed by spaces (`', '` reads as `,`;
    /// fields are trimmed); `\t` or `tab` for tabs.
    #[arg(long, default_value = ",")]
    pub sep: String,
    /// A target `COL:binary`, `COL:classes` or `COL:regression` (COL a header name or a
    /// 0-based index); repeat for more tasks.
    #[arg(long = "target", required = true)]
    pub targets: Vec<String>,
    /// A column to ignore (name or index); repeatable.
    #[arg(long)]
    pub drop: Vec<String>,
    /// `auto`: a feature column is categorical (one-hot) if any non-missing value is not a
    /// number; `none`: every feature must be numeric.
    #[arg(long, default_value = "auto")]
    pub categorical: String,
    /// A feature column to one-hot encode whatever it holds; repeatable.
    #[arg(long)]
    pub categorical_col: Vec<String>,
    /// At most this many one-hot columns per categorical feature (most frequent in training).
    #[arg(long, default_value_t = 64)]
    pub max_categories: usize,
    /// A separate test file (same columns and format). Without it, --test-fraction of the
    /// rows (shuffled with --split-seed) are held out.
    #[arg(long)]
    pub test_csv: Option<PathBuf>,
    /// Fraction of the rows held out for testing when no --test-csv is given.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Seed of the train/test shuffle (fixed across methods and training seeds).
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Use at most this many training rows (after the split); with --quick default 2000.
    #[arg(long)]
    pub max_train_rows: Option<usize>,
    /// Output directory.
    #[arg(long, default_value = "results/tabular")]
    pub out: PathBuf,
    /// Methods, seeds, model, optimisation.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Reads, splits and encodes the data of a `tabular` command line.
///
/// # Errors
/// Unreadable files, bad options, or see [`prepare`].
pub fn load_tabular(args: &TabularArgs) -> Result<Dataset, TabularError> {
    let csv = CsvOptions {
        has_header: !args.no_header,
        separator: args.sep.clone(),
    };
    let targets = args
        .targets
        .iter()
        .map(|t| t.parse::<TargetSpec>())
        .collect::<Result<Vec<_>, _>>()?;
    let options = PrepareOptions {
        targets,
        drop: args.drop.clone(),
        categorical: args.categorical.parse::<CategoricalMode>()?,
        force_categorical: args.categorical_col.clone(),
        max_categories: args.max_categories,
    };
    let table = Table::read(&args.csv, &csv)?;
    let (mut train, test) = match &args.test_csv {
        Some(path) => (table, Table::read(path, &csv)?),
        None => {
            let f = args.test_fraction;
            if !(f > 0.0 && f < 1.0) {
                return Err(TabularError::new(
                    "--test-fraction must be strictly between 0 and 1",
                ));
            }
            let n = table.num_rows();
            let mut rows: Vec<usize> = (0..n).collect();
            rows.shuffle(&mut ChaCha8Rng::seed_from_u64(args.split_seed));
            let n_test = ((n as f64 * f).round() as usize).clamp(1.min(n), n.saturating_sub(1));
            let (test, train) = rows.split_at(n_test);
            (table.select_rows(train), table.select_rows(test))
        }
    };
    let limit = args
        .max_train_rows
        .or(if args.common.quick { Some(2000) } else { None });
    if let Some(limit) = limit
        && train.num_rows() > limit
    {
        let rows: Vec<usize> = (0..limit).collect();
        train = train.select_rows(&rows);
    }
    prepare(&train, &test, &options)
}

/// The whole `tabular` command: load, train every method and the baselines, report.
///
/// # Errors
/// See [`load_tabular`] and [`run_and_report`].
pub fn run_tabular(args: &TabularArgs) -> Result<ExperimentResult, TabularError> {
    let data = load_tabular(args)?;
    let config = args.common.train_config(30, 3)?;
    let heading = format!(
        "tabular: {}",
        args.csv.file_name().map_or_else(
            || args.csv.display().to_string(),
            |f| f.to_string_lossy().into_owned()
        )
    );
    let notes = format!(
        "Targets: {}. Test split: {}. Metrics on the test split at each run's best epoch on \
         {:.0}% held-out training rows (accuracy % for classification, MAE in original units \
         for regression), mean ± std \
         over {} seed(s); Δm% against training each target alone with the same model and \
         epochs (lower is better). {}",
        args.targets.join(", "),
        100.0 * args.common.valid_fraction,
        match &args.test_csv {
            Some(p) => p.display().to_string(),
            None => format!(
                "{:.0}% of the rows (split seed {})",
                100.0 * args.test_fraction,
                args.split_seed
            ),
        },
        args.common.seeds,
        data
    );
    run_and_report(&data, &args.common, config, &args.out, &heading, &notes)
}
