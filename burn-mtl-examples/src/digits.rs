//! A real multi-task data set for the Burn `Learner` example: the handwritten digits shipped with
//! the `smartcore` crate (UCI "Optical Recognition of Handwritten Digits", 1 797 8×8 images),
//! with three tasks on one shared encoder: the digit (10 classes), its parity (2 classes) and
//! whether it is ≥ 5 (2 classes).
//!
//! The `TrainStep` computes the three task gradients (one forward + backward per task) and
//! returns them **packed** ([`burn_mtl::jacobian::pack_task_grads`]); the `Learner`'s optimizer
//! is a [`MultiTaskOptimizer`], which unpacks, weights and steps. The method's weights reach
//! the `Learner`'s metrics through a [`ReportSink`].

use std::sync::Arc;

use burn::backend::{Autodiff, NdArray};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::AdamConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::record::CompactRecorder;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, ItemLazy, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};
use burn::train::renderer::{
    EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};
use burn::train::{
    ExecutionStrategy, InferenceStep, Learner, MultiDeviceOptim, SupervisedTraining, TrainOutput,
    TrainStep, TrainingStrategy,
};
use burn_mtl::jacobian::pack_task_grads;
use burn_mtl::{Method, MultiTaskOptimizer, MultiTaskOptimizerConfig, ReportSink, TaskGradients};

/// The three tasks: name and number of classes.
pub const TASKS: [(&str, usize); 3] = [("digit", 10), ("parity", 2), ("high", 2)];

/// One image (64 pixels scaled to [0, 1]) and its digit.
#[derive(Clone, Debug)]
pub struct DigitItem {
    /// The 8×8 pixels, row-major, in [0, 1].
    pub pixels: [f32; 64],
    /// The digit, 0..=9.
    pub digit: u8,
}

impl DigitItem {
    /// The label of task `k` (see [`TASKS`]).
    pub fn label(&self, k: usize) -> i64 {
        match k {
            0 => self.digit as i64,
            1 => (self.digit % 2) as i64,
            _ => (self.digit >= 5) as i64,
        }
    }
}

/// The digits, split deterministically: every 5th image is in the test set (360 images), the
/// rest in the training set (1 437).
pub fn load() -> (Vec<DigitItem>, Vec<DigitItem>) {
    let ds = smartcore::dataset::digits::load_dataset();
    let items: Vec<DigitItem> = (0..ds.num_samples)
        .map(|i| {
            let mut pixels = [0.0f32; 64];
            for (j, p) in pixels.iter_mut().enumerate() {
                *p = ds.data[i * ds.num_features + j] / 16.0;
            }
            DigitItem {
                pixels,
                digit: ds.target[i] as u8,
            }
        })
        .collect();
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (i, it) in items.into_iter().enumerate() {
        if i % 5 == 4 {
            test.push(it)
        } else {
            train.push(it)
        }
    }
    (train, test)
}

/// A batch: images and one label vector per task.
#[derive(Clone, Debug)]
pub struct DigitsBatch<B: Backend> {
    /// `[N, 64]` pixels.
    pub x: Tensor<B, 2>,
    /// Per task, `[N]` class indices.
    pub y: Vec<Tensor<B, 1, Int>>,
}

/// Builds [`DigitsBatch`]es.
#[derive(Clone, Debug, Default)]
pub struct DigitsBatcher;

impl<B: Backend> Batcher<B, DigitItem, DigitsBatch<B>> for DigitsBatcher {
    fn batch(&self, items: Vec<DigitItem>, device: &B::Device) -> DigitsBatch<B> {
        let n = items.len();
        let x: Vec<f32> = items.iter().flat_map(|i| i.pixels).collect();
        let x = Tensor::from_data(TensorData::new(x, [n, 64]), device);
        let y = (0..TASKS.len())
            .map(|k| {
                let v: Vec<i64> = items.iter().map(|i| i.label(k)).collect();
                Tensor::from_data(TensorData::new(v, [n]), device)
            })
            .collect();
        DigitsBatch { x, y }
    }
}

/// Shared MLP encoder (64 → 64 → 32) and one linear head per task.
#[derive(Module, Debug)]
pub struct DigitsNet<B: Backend> {
    enc1: Linear<B>,
    enc2: Linear<B>,
    heads: Vec<Linear<B>>,
    act: Relu,
    /// Where the optimizer publishes its latest step report (weights shown as metrics).
    #[module(skip)]
    sink: ReportSink,
}

impl<B: Backend> DigitsNet<B> {
    /// A fresh model, reading the optimizer's reports from `sink`.
    pub fn new(sink: ReportSink, device: &B::Device) -> Self {
        Self {
            enc1: LinearConfig::new(64, 64).init(device),
            enc2: LinearConfig::new(64, 32).init(device),
            heads: TASKS
                .iter()
                .map(|(_, c)| LinearConfig::new(32, *c).init(device))
                .collect(),
            act: Relu::new(),
            sink,
        }
    }

    fn logits(&self, x: Tensor<B, 2>, k: usize) -> Tensor<B, 2> {
        let z = self
            .act
            .forward(self.enc2.forward(self.act.forward(self.enc1.forward(x))));
        self.heads[k].forward(z)
    }

    /// Task `k`'s cross-entropy loss and its number of correct predictions on `batch`.
    pub fn task_loss(&self, batch: &DigitsBatch<B>, k: usize) -> (Tensor<B, 1>, Tensor<B, 1, Int>) {
        let logits = self.logits(batch.x.clone(), k);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.y[k].clone());
        let correct = logits
            .argmax(1)
            .squeeze_dim::<1>(1)
            .equal(batch.y[k].clone())
            .int()
            .sum();
        (loss, correct)
    }

    fn output(
        &self,
        batch: &DigitsBatch<B>,
        losses: Vec<Tensor<B, 1>>,
        correct: Vec<Tensor<B, 1, Int>>,
    ) -> DigitsOutput<B> {
        DigitsOutput {
            losses: Tensor::cat(losses, 0),
            correct: Tensor::cat(correct, 0),
            batch_size: batch.x.dims()[0],
            weights: self.sink.latest().map(|r| r.weights).unwrap_or_default(),
        }
    }
}

impl<B: AutodiffBackend> TrainStep for DigitsNet<B> {
    type Input = DigitsBatch<B>;
    type Output = DigitsOutput<B>;

    fn step(&self, batch: DigitsBatch<B>) -> TrainOutput<DigitsOutput<B>> {
        let mut correct = Vec::new();
        // Parameter engine: one forward + backward per task (Burn cannot retain the graph).
        let tg = TaskGradients::per_task(self, TASKS.len(), |m, k| {
            let (loss, c) = m.task_loss(&batch, k);
            correct.push(c.inner_int());
            loss
        });
        let losses: Vec<Tensor<B, 1>> = tg
            .losses()
            .map(|l| l.iter().cloned().map(Tensor::from_inner).collect())
            .unwrap_or_default();
        let (per_task, _) = tg.into_parts();
        let grads = pack_task_grads(self, per_task);
        let correct = correct.into_iter().map(Tensor::from_inner).collect();
        TrainOutput {
            grads,
            item: self.output(&batch, losses, correct),
        }
    }
}

trait InnerInt<B: AutodiffBackend> {
    fn inner_int(self) -> Tensor<B::InnerBackend, 1, Int>;
}

impl<B: AutodiffBackend> InnerInt<B> for Tensor<B, 1, Int> {
    fn inner_int(self) -> Tensor<B::InnerBackend, 1, Int> {
        self.inner()
    }
}

impl<B: Backend> InferenceStep for DigitsNet<B> {
    type Input = DigitsBatch<B>;
    type Output = DigitsOutput<B>;

    fn step(&self, batch: DigitsBatch<B>) -> DigitsOutput<B> {
        let (losses, correct) = (0..TASKS.len()).map(|k| self.task_loss(&batch, k)).unzip();
        let mut out = self.output(&batch, losses, correct);
        out.weights.clear();
        out
    }
}

/// What a train or validation step reports (still on the device).
#[derive(Debug)]
pub struct DigitsOutput<B: Backend> {
    /// `[K]` task losses.
    pub losses: Tensor<B, 1>,
    /// `[K]` numbers of correct predictions.
    pub correct: Tensor<B, 1, Int>,
    /// Batch size.
    pub batch_size: usize,
    /// The method's weights of the latest optimizer step (empty in validation).
    pub weights: Vec<f64>,
}

/// [`DigitsOutput`] read to the host: what the metrics see.
#[derive(Clone, Debug)]
pub struct DigitsStats {
    /// Task losses.
    pub losses: Vec<f64>,
    /// Task accuracies in [0, 1].
    pub accuracy: Vec<f64>,
    /// Batch size.
    pub batch_size: usize,
    /// The method's latest weights (empty in validation).
    pub weights: Vec<f64>,
}

impl<B: Backend> ItemLazy for DigitsOutput<B> {
    type ItemSync = DigitsStats;

    fn sync(self) -> DigitsStats {
        let n = self.batch_size.max(1) as f64;
        DigitsStats {
            losses: self.losses.into_data().iter::<f64>().collect(),
            accuracy: self
                .correct
                .into_data()
                .iter::<f64>()
                .map(|c| c / n)
                .collect(),
            batch_size: self.batch_size,
            weights: self.weights,
        }
    }
}

impl Adaptor<DigitsStats> for DigitsStats {
    fn adapt(&self) -> DigitsStats {
        self.clone()
    }
}

/// Which per-task quantity a [`TaskMetric`] shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskQuantity {
    /// The task's loss.
    Loss,
    /// The task's accuracy (%).
    Accuracy,
    /// The method's weight for the task (train only).
    Weight,
}

/// A per-task `Learner` metric: loss, accuracy or the method's weight of one task.
#[derive(Clone)]
pub struct TaskMetric {
    name: MetricName,
    task: usize,
    quantity: TaskQuantity,
    state: NumericMetricState,
}

impl TaskMetric {
    /// The metric for `quantity` of task `task`.
    pub fn new(task: usize, quantity: TaskQuantity) -> Self {
        let q = match quantity {
            TaskQuantity::Loss => "Loss",
            TaskQuantity::Accuracy => "Accuracy",
            TaskQuantity::Weight => "Weight",
        };
        Self {
            name: Arc::new(format!("{q} [{}]", TASKS[task].0)),
            task,
            quantity,
            state: NumericMetricState::default(),
        }
    }
}

impl Metric for TaskMetric {
    type Input = DigitsStats;

    fn update(&mut self, item: &DigitsStats, _metadata: &MetricMetadata) -> SerializedEntry {
        let value = match self.quantity {
            TaskQuantity::Loss => item.losses[self.task],
            TaskQuantity::Accuracy => 100.0 * item.accuracy[self.task],
            TaskQuantity::Weight => item.weights.get(self.task).copied().unwrap_or(0.0),
        };
        self.state.update(
            value,
            item.batch_size,
            FormatOptions::new(self.name()).precision(4),
        )
    }

    fn clear(&mut self) {
        self.state.reset()
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: (self.quantity == TaskQuantity::Accuracy).then(|| "%".to_string()),
            higher_is_better: self.quantity == TaskQuantity::Accuracy,
        }
        .into()
    }
}

impl Numeric for TaskMetric {
    fn value(&self) -> NumericEntry {
        self.state.current_value()
    }

    fn running_value(&self) -> NumericEntry {
        self.state.running_value()
    }
}

/// A renderer that prints one line per epoch instead of one per iteration.
#[derive(Default)]
pub struct EpochRenderer {
    names: Vec<(burn::train::metric::MetricId, String)>,
    train: Vec<String>,
    valid: Vec<String>,
    printed_epoch: usize,
    quiet: bool,
}

impl EpochRenderer {
    /// A renderer that prints nothing (tests).
    pub fn quiet() -> Self {
        Self {
            quiet: true,
            ..Self::default()
        }
    }

    fn record(
        names: &[(burn::train::metric::MetricId, String)],
        store: &mut Vec<String>,
        state: MetricState,
    ) {
        let entry = match state {
            MetricState::Generic(e) | MetricState::Numeric(e, _) => e,
        };
        let text = entry.serialized_entry.formatted.clone();
        let short = text
            .split(" - batch")
            .next()
            .unwrap_or(&text)
            .replace("epoch ", "");
        let name = names
            .iter()
            .find(|(id, _)| *id == entry.metric_id)
            .map_or_else(|| "?".to_string(), |(_, n)| n.clone());
        if let Some(slot) = store.iter_mut().find(|s| s.starts_with(&name)) {
            *slot = format!("{name}: {short}");
        } else {
            store.push(format!("{name}: {short}"));
        }
    }
}

impl MetricsRendererTraining for EpochRenderer {
    fn update_train(&mut self, state: MetricState) {
        Self::record(&self.names, &mut self.train, state);
    }
    fn update_valid(&mut self, state: MetricState) {
        Self::record(&self.names, &mut self.valid, state);
    }
    fn render_train(&mut self, _item: TrainingProgress, _p: Vec<ProgressType>) {}
    fn render_valid(&mut self, item: TrainingProgress, _p: Vec<ProgressType>) {
        let epoch = item.global_progress.items_processed;
        let done = item
            .progress
            .as_ref()
            .is_some_and(|p| p.items_processed >= p.items_total);
        if done && epoch > self.printed_epoch {
            self.printed_epoch = epoch;
            if !self.quiet {
                println!("epoch {epoch}: train [{}]", self.train.join(", "));
                println!("         valid [{}]", self.valid.join(", "));
            }
        }
    }
    fn on_train_end(
        &mut self,
        _summary: Option<burn::train::LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for EpochRenderer {
    fn update_test(&mut self, _name: burn::train::renderer::EvaluationName, _state: MetricState) {}
    fn render_test(&mut self, _item: EvaluationProgress, _p: Vec<ProgressType>) {}
}

impl MetricsRenderer for EpochRenderer {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, definition: burn::train::metric::MetricDefinition) {
        self.names.push((definition.metric_id, definition.name));
    }
}

/// How the Learner runs.
#[derive(Clone, Debug)]
pub struct LearnerRun {
    /// The method.
    pub method: Method,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Gradient accumulation over this many batches (`None`: off).
    pub grads_accumulation: Option<usize>,
    /// Train on two copies of the CPU device with sharded optimisation (multi-device path).
    pub multi_device: bool,
    /// Use at most this many training images (`None`: all).
    pub limit: Option<usize>,
    /// Artifact directory (checkpoints, logs).
    pub dir: std::path::PathBuf,
    /// Print one line per epoch.
    pub verbose: bool,
    /// Seed of the model's initialisation and of the shuffling.
    pub seed: u64,
}

/// The optimizer type the Learner runs with.
pub type LearnerOptim<B> =
    MultiTaskOptimizer<B, OptimizerAdaptor<burn::optim::Adam, DigitsNet<B>, B>>;

/// What a Learner run produced.
#[derive(Debug)]
pub struct LearnerOutcome {
    /// Per task: test loss and accuracy (%) of the trained model.
    pub test: Vec<(f64, f64)>,
    /// Per task: test loss and accuracy (%) before training.
    pub before: Vec<(f64, f64)>,
    /// The last step report the optimizer published.
    pub last_report: Option<burn_mtl::StepReport>,
}

/// Per task (loss, accuracy %) of `model` on `items`.
pub fn evaluate<B: Backend>(
    model: &DigitsNet<B>,
    items: &[DigitItem],
    device: &B::Device,
) -> Vec<(f64, f64)> {
    let batch: DigitsBatch<B> = DigitsBatcher.batch(items.to_vec(), device);
    let stats = InferenceStep::step(model, batch).sync();
    stats
        .losses
        .iter()
        .zip(&stats.accuracy)
        .map(|(l, a)| (*l, 100.0 * a))
        .collect()
}

/// [`train_with_learner`] on burn-ndarray (`f32`) on the CPU: compiled once, in this library,
/// for the `learner` example and the tests (each instantiation of the generic Learner code is a
/// full optimised compile of burn-train).
pub fn train_with_learner_cpu(run: &LearnerRun) -> LearnerOutcome {
    train_with_learner::<Autodiff<NdArray>>(run, &Default::default())
}

/// Trains [`DigitsNet`] with a Burn `Learner` whose optimizer is a [`MultiTaskOptimizer`]
/// around Adam.
pub fn train_with_learner<B: AutodiffBackend>(
    run: &LearnerRun,
    device: &B::Device,
) -> LearnerOutcome {
    B::seed(device, run.seed);
    let (mut train, test) = load();
    if let Some(n) = run.limit {
        train.truncate(n);
    }
    let sink = ReportSink::default();
    let model = DigitsNet::<B>::new(sink.clone(), device);
    let before = evaluate::<B::InnerBackend>(&model.valid(), &test, device);
    let optim: LearnerOptim<B> = MultiTaskOptimizerConfig::new()
        .with_method(run.method.clone())
        .init::<B, _>(AdamConfig::new().init())
        .with_report_sink(sink.clone());
    let dl_train = DataLoaderBuilder::new(DigitsBatcher)
        .batch_size(run.batch_size)
        .shuffle(run.seed)
        .build(InMemDataset::new(train));
    let dl_valid = DataLoaderBuilder::<B::InnerBackend, _, _>::new(DigitsBatcher)
        .batch_size(512)
        .build(InMemDataset::new(test.clone()));
    let _ = std::fs::remove_dir_all(&run.dir);
    let renderer = if run.verbose {
        EpochRenderer::default()
    } else {
        EpochRenderer::quiet()
    };
    let mut training = SupervisedTraining::new(&run.dir, dl_train, dl_valid)
        .with_file_checkpointer(CompactRecorder::new())
        .with_application_logger(None)
        .renderer(renderer)
        .num_epochs(run.epochs);
    for k in 0..TASKS.len() {
        training = training
            .metric_train_numeric(TaskMetric::new(k, TaskQuantity::Loss))
            .metric_train_numeric(TaskMetric::new(k, TaskQuantity::Weight))
            .metric_valid_numeric(TaskMetric::new(k, TaskQuantity::Loss))
            .metric_valid_numeric(TaskMetric::new(k, TaskQuantity::Accuracy));
    }
    if let Some(n) = run.grads_accumulation {
        training = training.grads_accumulation(n);
    }
    if run.multi_device {
        training = training.with_training_strategy(TrainingStrategy::Default(
            ExecutionStrategy::MultiDevice(
                vec![device.clone(), device.clone()],
                MultiDeviceOptim::OptimSharded,
            ),
        ));
    }
    let result = training.launch(Learner::new(model, optim, run.lr));
    LearnerOutcome {
        test: evaluate::<B::InnerBackend>(&result.model, &test, device),
        before,
        last_report: sink.latest(),
    }
}
