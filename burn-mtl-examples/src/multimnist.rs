//! MultiMNIST and its Fashion variants: two objects in one image, one classification task per
//! object, a shared LeNet-style encoder and one head per task.
//!
//! The construction follows Sener & Koltun, "Multi-Task Learning as Multi-Objective
//! Optimization" (NeurIPS 2018), whose loader (`multi_task/loaders/multi_mnist_loader.py` in
//! `isl-org/MultiObjectiveOptimization`) does, for every image `i` of a split:
//!
//! 1. draw a partner `j` uniformly from the same split (`j = i` and equal classes allowed);
//! 2. put image `i` at the top-left of a 36×36 zero canvas and image `j` 6 pixels down and to the
//!    right, taking the pixel-wise maximum where they overlap;
//! 3. resize the canvas back to 28×28 with nearest-neighbour sampling (source pixel
//!    `⌊(k + ½)·36/28⌋`, PIL's NEAREST);
//! 4. label task L with image `i`'s class and task R with image `j`'s; inputs are normalised with
//!    MNIST's mean and standard deviation (0.1307, 0.3081).
//!
//! The variants of Lin et al., "Pareto Multi-Task Learning" (NeurIPS 2019) use the same recipe
//! with Fashion-MNIST for both objects (MultiFashion) or an MNIST digit top-left and a
//! Fashion-MNIST item bottom-right (Multi-(Fashion+MNIST)). The partners are drawn with a seeded
//! ChaCha8 generator, so a data seed gives the same data set on every machine.
//!
//! The model is Sener & Koltun's `MultiLeNet` without dropout: encoder conv(1→10, 5×5) → max-pool 2
//! → ReLU → conv(10→20, 5×5) → max-pool 2 → ReLU → linear(320→50) → ReLU; each head linear(50→50)
//! → ReLU → linear(50→10).
//!
//! [`train_run`] trains one configuration (a [`Method`] on the two tasks, or a single-task
//! baseline) and evaluates after every epoch; [`bench`](mod@bench) runs a whole comparison
//! (every method, the single-task baselines, several seeds) and writes a markdown table and an
//! SVG figure.

pub mod bench;

use std::path::Path;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn_mtl::{Method, MtlError, MultiTaskOptimizer, MultiTaskOptimizerConfig};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{Dataset, FASHION_MNIST_FILES, IdxFiles, MNIST_FILES, MissingData};
use crate::idx::{IdxError, Images, read_split};

/// Side of the source images and of the composed images.
pub const SIDE: usize = 28;
/// Side of the canvas the two objects are placed on.
pub const CANVAS: usize = 36;
/// Offset of the second object on the canvas (both directions).
pub const SHIFT: usize = 6;
/// Number of tasks (left object, right object).
pub const NUM_TASKS: usize = 2;
/// Classes per task.
pub const NUM_CLASSES: usize = 10;
/// MNIST's pixel mean (of `x / 255`), used for the input normalisation of every variant.
pub const PIXEL_MEAN: f32 = 0.1307;
/// MNIST's pixel standard deviation (of `x / 255`).
pub const PIXEL_STD: f32 = 0.3081;
/// Task names, in task order.
pub const TASK_NAMES: [&str; NUM_TASKS] = ["L (top-left)", "R (bottom-right)"];

/// Which images the two objects come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// MultiMNIST: two MNIST digits.
    Mnist,
    /// MultiFashion: two Fashion-MNIST items.
    Fashion,
    /// Multi-(Fashion+MNIST): an MNIST digit top-left, a Fashion-MNIST item bottom-right.
    FashionMnist,
}

impl Variant {
    /// Parses `mnist` (MultiMNIST), `fashion` or `fashion-mnist` (MultiFashion: the data set
    /// is called Fashion-MNIST), and `fashion+mnist` or `mixed` (Multi-(Fashion+MNIST)).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mnist" | "multimnist" => Ok(Variant::Mnist),
            "fashion" | "fashion-mnist" | "fashion_mnist" | "multifashion" => Ok(Variant::Fashion),
            "fashion+mnist" | "mnist+fashion" | "mixed" => Ok(Variant::FashionMnist),
            other => Err(format!(
                "unknown MultiMNIST variant `{other}`; use mnist, fashion (= fashion-mnist) \
                 or fashion+mnist"
            )),
        }
    }

    /// The name used in folder names and tables.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Mnist => "mnist",
            Variant::Fashion => "fashion",
            Variant::FashionMnist => "fashion+mnist",
        }
    }

    /// The benchmark's name: MultiMNIST, MultiFashion or Multi-(Fashion+MNIST).
    pub fn title(self) -> &'static str {
        match self {
            Variant::Mnist => "MultiMNIST",
            Variant::Fashion => "MultiFashion",
            Variant::FashionMnist => "Multi-(Fashion+MNIST)",
        }
    }

    /// The data sets of the left and the right object.
    pub fn sources(self) -> [Dataset; 2] {
        match self {
            Variant::Mnist => [Dataset::Mnist, Dataset::Mnist],
            Variant::Fashion => [Dataset::FashionMnist, Dataset::FashionMnist],
            Variant::FashionMnist => [Dataset::Mnist, Dataset::FashionMnist],
        }
    }
}

/// Why MultiMNIST data could not be loaded.
#[derive(Debug)]
pub enum DataError {
    /// The files are not there (`cargo xtask fetch-data` was not run).
    Missing(MissingData),
    /// A file is there but unreadable or corrupt.
    Idx(IdxError),
    /// The images are not 28×28, or a split is empty.
    Shape(String),
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataError::Missing(e) => e.fmt(f),
            DataError::Idx(e) => e.fmt(f),
            DataError::Shape(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for DataError {}

impl From<MissingData> for DataError {
    fn from(e: MissingData) -> Self {
        DataError::Missing(e)
    }
}

impl From<IdxError> for DataError {
    fn from(e: IdxError) -> Self {
        DataError::Idx(e)
    }
}

/// One split of a source data set: images and labels.
#[derive(Clone, Debug)]
pub struct SourceSplit {
    /// The images.
    pub images: Images,
    /// One label per image.
    pub labels: Vec<u8>,
}

/// Train and test split of one source data set.
#[derive(Clone, Debug)]
pub struct SourceData {
    /// The 60,000-image training split.
    pub train: SourceSplit,
    /// The 10,000-image test split.
    pub test: SourceSplit,
}

fn files_of(ds: Dataset) -> IdxFiles {
    match ds {
        Dataset::FashionMnist => FASHION_MNIST_FILES,
        _ => MNIST_FILES,
    }
}

/// Loads MNIST or Fashion-MNIST from `root` (the data folder, see [`crate::data`]).
pub fn load_source(root: &Path, ds: Dataset) -> Result<SourceData, DataError> {
    let dir = ds.require_in(root)?;
    let f = files_of(ds);
    let split = |im: &str, lb: &str| -> Result<SourceSplit, DataError> {
        let (images, labels) = read_split(&dir.join(im), &dir.join(lb))?;
        if images.rows != SIDE || images.cols != SIDE || images.n == 0 {
            return Err(DataError::Shape(format!(
                "{}: expected 28×28 images, got {} of {}×{}",
                dir.join(im).display(),
                images.n,
                images.rows,
                images.cols
            )));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= NUM_CLASSES) {
            return Err(DataError::Shape(format!(
                "{}: label {bad} is not a class 0..=9",
                dir.join(lb).display()
            )));
        }
        Ok(SourceSplit { images, labels })
    };
    Ok(SourceData {
        train: split(f.train_images(), f.train_labels())?,
        test: split(f.test_images(), f.test_labels())?,
    })
}

/// The nearest-neighbour source index of output pixel `k` when resizing `CANVAS` → `SIDE`
/// (PIL NEAREST: the centre of output pixel `k` maps to `(k + ½)·CANVAS/SIDE`).
pub fn nearest_source(k: usize) -> usize {
    // ⌊(2k + 1)·CANVAS / (2·SIDE)⌋, in integers.
    ((2 * k + 1) * CANVAS) / (2 * SIDE)
}

/// Composes two 28×28 images into one: `a` top-left and `b` shifted by [`SHIFT`] on a 36×36
/// canvas (pixel-wise maximum where they overlap), resized back to 28×28.
///
/// # Panics
/// If `a` or `b` is not 784 bytes long (callers pass images checked by [`load_source`]).
pub fn compose(a: &[u8], b: &[u8]) -> [u8; SIDE * SIDE] {
    assert_eq!(a.len(), SIDE * SIDE, "left image must be 28×28");
    assert_eq!(b.len(), SIDE * SIDE, "right image must be 28×28");
    let mut canvas = [0u8; CANVAS * CANVAS];
    for r in 0..SIDE {
        for c in 0..SIDE {
            canvas[r * CANVAS + c] = a[r * SIDE + c];
        }
    }
    for r in 0..SIDE {
        for c in 0..SIDE {
            let p = &mut canvas[(r + SHIFT) * CANVAS + c + SHIFT];
            *p = (*p).max(b[r * SIDE + c]);
        }
    }
    let mut out = [0u8; SIDE * SIDE];
    for r in 0..SIDE {
        let sr = nearest_source(r);
        for c in 0..SIDE {
            out[r * SIDE + c] = canvas[sr * CANVAS + nearest_source(c)];
        }
    }
    out
}

/// A composed two-object split.
#[derive(Clone, Debug)]
pub struct MultiSplit {
    /// Number of images.
    pub n: usize,
    /// `n × 28 × 28` pixels.
    pub pixels: Vec<u8>,
    /// Per task, one label per image (`labels[0]`: left object, `labels[1]`: right object).
    pub labels: [Vec<u8>; NUM_TASKS],
    /// For each image, the index (in the right source split) of its second object.
    pub partners: Vec<u32>,
}

impl MultiSplit {
    /// Image `i`'s pixels.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * SIDE * SIDE..(i + 1) * SIDE * SIDE]
    }
}

/// Composes a split: for every image `i` of `left`, a partner drawn uniformly from `right`
/// (seeded), as in the module docs. `left` and `right` are the same split for MultiMNIST and
/// MultiFashion.
pub fn compose_split(
    left: &SourceSplit,
    right: &SourceSplit,
    seed: u64,
) -> Result<MultiSplit, DataError> {
    for s in [left, right] {
        if s.images.rows != SIDE || s.images.cols != SIDE {
            return Err(DataError::Shape(format!(
                "expected 28×28 images, got {}×{}",
                s.images.rows, s.images.cols
            )));
        }
        if s.images.n == 0 || s.labels.len() != s.images.n {
            return Err(DataError::Shape(format!(
                "a split has {} images and {} labels",
                s.images.n,
                s.labels.len()
            )));
        }
    }
    let n = left.images.n;
    let m = right.images.n;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(n * SIDE * SIDE);
    let mut partners = Vec::with_capacity(n);
    let mut right_labels = Vec::with_capacity(n);
    for i in 0..n {
        let j = rng.random_range(0..m);
        pixels.extend_from_slice(&compose(left.images.image(i), right.images.image(j)));
        partners.push(j as u32);
        right_labels.push(right.labels[j]);
    }
    Ok(MultiSplit {
        n,
        pixels,
        labels: [left.labels.clone(), right_labels],
        partners,
    })
}

/// The composed train and test splits of a variant.
#[derive(Clone, Debug)]
pub struct MultiMnist {
    /// Training split.
    pub train: MultiSplit,
    /// Test split.
    pub test: MultiSplit,
}

/// Loads the sources of `variant` from `root`, keeps the first `train_limit` / `test_limit`
/// images of each split (all when `None`) and composes the two-object splits with partners
/// drawn from `data_seed`.
pub fn load(
    root: &Path,
    variant: Variant,
    train_limit: Option<usize>,
    test_limit: Option<usize>,
    data_seed: u64,
) -> Result<MultiMnist, DataError> {
    let [l, r] = variant.sources();
    let left = load_source(root, l)?;
    let right = if r == l {
        left.clone()
    } else {
        load_source(root, r)?
    };
    let cut = |s: &SourceSplit, lim: Option<usize>| -> SourceSplit {
        let n = lim.unwrap_or(usize::MAX).max(1);
        let images = s.images.clone().truncated(n);
        let mut labels = s.labels.clone();
        labels.truncate(images.n);
        SourceSplit { images, labels }
    };
    let (lt, rt) = (
        cut(&left.train, train_limit),
        cut(&right.train, train_limit),
    );
    let (le, re) = (cut(&left.test, test_limit), cut(&right.test, test_limit));
    Ok(MultiMnist {
        // Different streams for train and test so that the two never share partner draws.
        train: compose_split(&lt, &rt, data_seed)?,
        test: compose_split(&le, &re, data_seed ^ 0x7e57_7e57)?,
    })
}

/// A batch: normalised images and the labels of both tasks.
#[derive(Clone, Debug)]
pub struct Batch<B: Backend> {
    /// `[N, 1, 28, 28]`.
    pub images: Tensor<B, 4>,
    /// Per task, `[N]` class indices.
    pub labels: [Tensor<B, 1, Int>; NUM_TASKS],
}

/// The batch of images `idx` of `split`.
pub fn batch<B: Backend>(split: &MultiSplit, idx: &[usize], device: &B::Device) -> Batch<B> {
    let n = idx.len();
    let mut x = Vec::with_capacity(n * SIDE * SIDE);
    for &i in idx {
        x.extend(
            split
                .image(i)
                .iter()
                .map(|&p| (p as f32 / 255.0 - PIXEL_MEAN) / PIXEL_STD),
        );
    }
    let images = Tensor::from_data(TensorData::new(x, [n, 1, SIDE, SIDE]), device);
    let labels = std::array::from_fn(|k| {
        let y: Vec<i64> = idx.iter().map(|&i| split.labels[k][i] as i64).collect();
        Tensor::from_data(TensorData::new(y, [n]), device)
    });
    Batch { images, labels }
}

/// One task head: linear(50→50) → ReLU → linear(50→10).
#[derive(Module, Debug)]
pub struct Head<B: Backend> {
    fc1: Linear<B>,
    fc2: Linear<B>,
}

/// A square "valid" convolution with stride 1, computed as im2col + one matrix product: the
/// `k²` shifted views of the input are stacked into patches and a [`Linear`] layer maps each
/// patch to the output channels. The same function as Burn's `Conv2d`; on Burn's CPU backend
/// (NdArray) its backward pass is several times faster than the direct convolution's.
#[derive(Module, Debug)]
pub struct PatchConv<B: Backend> {
    linear: Linear<B>,
    #[module(skip)]
    kernel: usize,
}

impl<B: Backend> PatchConv<B> {
    /// `channels[0] → channels[1]` with a `kernel × kernel` window.
    pub fn new(channels: [usize; 2], kernel: usize, device: &B::Device) -> Self {
        let kernel = kernel.max(1);
        Self {
            linear: LinearConfig::new(channels[0] * kernel * kernel, channels[1]).init(device),
            kernel,
        }
    }

    /// `[N, C, H, W]` → `[N, C_out, H − k + 1, W − k + 1]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let k = self.kernel;
        let (oh, ow) = (h + 1 - k, w + 1 - k);
        let mut views = Vec::with_capacity(k * k);
        for i in 0..k {
            for j in 0..k {
                views.push(x.clone().slice([0..n, 0..c, i..i + oh, j..j + ow]));
            }
        }
        // [N, C, k², OH, OW] → [N·OH·OW, C·k²] (channel-major patches, like Conv2d's weight).
        let patches: Tensor<B, 5> = Tensor::stack(views, 2);
        let patches = patches
            .permute([0, 3, 4, 1, 2])
            .reshape([n * oh * ow, c * k * k]);
        let y = self.linear.forward(patches);
        let out = y.dims()[1];
        y.reshape([n, oh, ow, out]).permute([0, 3, 1, 2])
    }
}

/// Sener & Koltun's MultiLeNet (without dropout): shared convolutional encoder and two heads.
#[derive(Module, Debug)]
pub struct MultiLeNet<B: Backend> {
    conv1: PatchConv<B>,
    conv2: PatchConv<B>,
    pool: MaxPool2d,
    fc: Linear<B>,
    heads: Vec<Head<B>>,
    act: Relu,
}

impl<B: Backend> MultiLeNet<B> {
    /// A freshly initialised model (Burn's default initialisers; seed the backend first for
    /// reproducibility).
    pub fn new(device: &B::Device) -> Self {
        Self {
            conv1: PatchConv::new([1, 10], 5, device),
            conv2: PatchConv::new([10, 20], 5, device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc: LinearConfig::new(320, 50).init(device),
            heads: (0..NUM_TASKS)
                .map(|_| Head {
                    fc1: LinearConfig::new(50, 50).init(device),
                    fc2: LinearConfig::new(50, NUM_CLASSES).init(device),
                })
                .collect(),
            act: Relu::new(),
        }
    }

    /// The shared representation `[N, 50]` of `[N, 1, 28, 28]` images.
    pub fn encode(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.act.forward(self.pool.forward(self.conv1.forward(x)));
        let x = self.act.forward(self.pool.forward(self.conv2.forward(x)));
        let x: Tensor<B, 2> = x.flatten(1, 3);
        self.act.forward(self.fc.forward(x))
    }

    /// Task `k`'s logits `[N, 10]` from the representation.
    pub fn head(&self, z: Tensor<B, 2>, k: usize) -> Tensor<B, 2> {
        let h = &self.heads[k];
        h.fc2.forward(self.act.forward(h.fc1.forward(z)))
    }

    /// Task `k`'s mean cross-entropy on `batch` (one forward of the encoder).
    pub fn task_loss(&self, batch: &Batch<B>, k: usize) -> Tensor<B, 1> {
        let logits = self.head(self.encode(batch.images.clone()), k);
        CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, batch.labels[k].clone())
    }

    /// Both task losses from one encoder forward.
    pub fn losses(&self, batch: &Batch<B>) -> Vec<Tensor<B, 1>> {
        self.task_losses(batch, &[0, 1])
    }

    /// The losses of `tasks` (in that order) from one encoder forward: the closure that
    /// [`MultiTaskOptimizer::step_auto`] takes.
    pub fn task_losses(&self, batch: &Batch<B>, tasks: &[usize]) -> Vec<Tensor<B, 1>> {
        let z = self.encode(batch.images.clone());
        tasks
            .iter()
            .map(|&k| {
                let logits = self.head(z.clone(), k);
                CrossEntropyLossConfig::new()
                    .init(&logits.device())
                    .forward(logits, batch.labels[k].clone())
            })
            .collect()
    }
}

/// Per task, the accuracy (%) of `model` on `split`, in batches of 1,000.
pub fn evaluate<B: Backend>(
    model: &MultiLeNet<B>,
    split: &MultiSplit,
    device: &B::Device,
) -> [f64; NUM_TASKS] {
    let mut correct = [0i64; NUM_TASKS];
    let all: Vec<usize> = (0..split.n).collect();
    for chunk in all.chunks(1000) {
        let b = batch::<B>(split, chunk, device);
        let z = model.encode(b.images);
        for (k, c) in correct.iter_mut().enumerate() {
            let pred = model.head(z.clone(), k).argmax(1).squeeze_dim::<1>(1);
            let hits = pred.equal(b.labels[k].clone()).int().sum();
            *c += hits.into_data().iter::<i64>().next().unwrap_or(0);
        }
    }
    correct.map(|c| 100.0 * c as f64 / split.n.max(1) as f64)
}

/// What a training run optimises.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Both tasks, balanced by a multi-task method (parameter engine, or the loss-only engine
    /// for methods that need no gradients).
    Method(Method),
    /// Task `k` alone with plain Adam (the single-task baseline; the other head is unused).
    SingleTask(usize),
}

/// Hyper-parameters of a training run.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seed of the initialisation and of the shuffling.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 5,
            batch_size: 256,
            lr: 1e-3,
            seed: 0,
        }
    }
}

/// Test metrics and timing after one epoch.
#[derive(Clone, Debug)]
pub struct EpochStats {
    /// Per task, test accuracy (%).
    pub test_accuracy: [f64; NUM_TASKS],
    /// Per task, the mean training loss over the epoch's steps (NaN when not measured).
    pub train_loss: [f64; NUM_TASKS],
    /// Wall time of the epoch's training steps (seconds, evaluation excluded).
    pub seconds: f64,
}

/// Everything one training run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// One entry per epoch.
    pub epochs: Vec<EpochStats>,
    /// The method's weights at every step (empty for single-task runs).
    pub weights: Vec<Vec<f64>>,
    /// Number of steps where the method reported a fallback.
    pub fallbacks: usize,
}

/// Number of optimizer steps per epoch for `n` images.
pub fn steps_per_epoch(n: usize, batch_size: usize) -> usize {
    n.div_ceil(batch_size.max(1))
}

/// Trains a fresh [`MultiLeNet`] on `data.train` in `mode` and evaluates it on `data.test`
/// after every epoch. `on_step` is called after every optimizer step (for progress bars).
///
/// # Errors
/// The first step the multi-task optimizer rejects (e.g. a non-finite gradient).
pub fn train_run<B: AutodiffBackend>(
    mode: &Mode,
    data: &MultiMnist,
    config: &TrainConfig,
    device: &B::Device,
    mut on_step: impl FnMut(),
) -> Result<RunOutcome, MtlError> {
    B::seed(device, config.seed);
    let mut model = MultiLeNet::<B>::new(device);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed_5eed);
    let mut order: Vec<usize> = (0..data.train.n).collect();
    let bs = config.batch_size.max(1);
    let mut epochs = Vec::with_capacity(config.epochs);
    let mut weights = Vec::new();
    let mut fallbacks = 0;

    type Adam<B> = OptimizerAdaptor<burn::optim::Adam, MultiLeNet<B>, B>;
    enum Opt<B: AutodiffBackend> {
        Multi(Box<MultiTaskOptimizer<B, Adam<B>>>),
        Single(Adam<B>, usize),
    }
    let mut opt: Opt<B> = match mode {
        Mode::Method(m) => {
            let o = MultiTaskOptimizerConfig::new()
                .with_method(m.clone())
                .init::<B, _>(AdamConfig::new().init());
            Opt::Multi(Box::new(o))
        }
        Mode::SingleTask(k) => Opt::Single(AdamConfig::new().init(), (*k).min(NUM_TASKS - 1)),
    };

    for _ in 0..config.epochs {
        order.shuffle(&mut rng);
        let started = Instant::now();
        let mut loss_sum = [0.0f64; NUM_TASKS];
        let mut loss_n = 0usize;
        for idx in order.chunks(bs) {
            let b = batch::<B>(&data.train, idx, device);
            match &mut opt {
                Opt::Multi(o) => {
                    // The engine the method needs: one backward per task for gradient-based
                    // methods, one backward of the weighted loss for loss-based ones.
                    let (next, report) = o
                        .step_auto(config.lr, model, NUM_TASKS, |m: &MultiLeNet<B>, tasks| {
                            m.task_losses(&b, tasks)
                        })
                        .map_err(|r| r.error)?;
                    model = next;
                    if let Some(l) = &report.losses {
                        for (s, v) in loss_sum.iter_mut().zip(l) {
                            *s += v;
                        }
                        loss_n += 1;
                    }
                    fallbacks += usize::from(report.fallback.is_some());
                    weights.push(report.weights);
                }
                Opt::Single(adam, k) => {
                    let loss = model.task_loss(&b, *k);
                    let v = loss
                        .clone()
                        .into_data()
                        .iter::<f64>()
                        .next()
                        .unwrap_or(f64::NAN);
                    if !v.is_finite() {
                        return Err(MtlError::NonFinite {
                            task: *k,
                            what: "loss",
                        });
                    }
                    loss_sum[*k] += v;
                    loss_n += 1;
                    let grads = GradientsParams::from_grads(loss.backward(), &model);
                    model = adam.step(config.lr, model, grads);
                }
            }
            on_step();
        }
        let seconds = started.elapsed().as_secs_f64();
        let n = loss_n.max(1) as f64;
        let mut train_loss = loss_sum.map(|s| s / n);
        if let Opt::Single(_, k) = &opt {
            for (t, l) in train_loss.iter_mut().enumerate() {
                if t != *k {
                    *l = f64::NAN;
                }
            }
        }
        let test_accuracy = evaluate::<B::InnerBackend>(&model.valid(), &data.test, device);
        epochs.push(EpochStats {
            test_accuracy,
            train_loss,
            seconds,
        });
    }
    Ok(RunOutcome {
        epochs,
        weights,
        fallbacks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(side_px: usize, at: (usize, usize), v: u8) -> Vec<u8> {
        let mut im = vec![0u8; SIDE * SIDE];
        for r in at.0..at.0 + side_px {
            for c in at.1..at.1 + side_px {
                im[r * SIDE + c] = v;
            }
        }
        im
    }

    #[test]
    fn nearest_indices_match_pil() {
        // (k + 0.5) * 36 / 28, floored.
        for k in 0..SIDE {
            let want = ((k as f64 + 0.5) * CANVAS as f64 / SIDE as f64).floor() as usize;
            assert_eq!(nearest_source(k), want, "k = {k}");
        }
        assert_eq!(nearest_source(0), 0);
        assert_eq!(nearest_source(SIDE - 1), CANVAS - 1);
    }

    #[test]
    fn compose_places_and_merges_objects() {
        // Left: the whole image is 10. Right: the whole image is 200.
        let a = vec![10u8; SIDE * SIDE];
        let b = vec![200u8; SIDE * SIDE];
        let out = compose(&a, &b);
        // Output (r, c) comes from canvas (s(r), s(c)); canvas [0, 6) is only `a`,
        // [6, 28) is max(a, b) = 200, [28, 34) only `b`, [34, 36) empty.
        for r in 0..SIDE {
            for c in 0..SIDE {
                let (sr, sc) = (nearest_source(r), nearest_source(c));
                let in_a = sr < SIDE && sc < SIDE;
                let in_b =
                    (SHIFT..SHIFT + SIDE).contains(&sr) && (SHIFT..SHIFT + SIDE).contains(&sc);
                let want = match (in_a, in_b) {
                    (_, true) => 200,
                    (true, false) => 10,
                    _ => 0,
                };
                assert_eq!(out[r * SIDE + c], want, "({r}, {c})");
            }
        }
        // The overlap takes the maximum, whichever image is brighter.
        let out2 = compose(&b, &a);
        let (r, c) = (10, 10);
        assert_eq!(out2[r * SIDE + c], 200);
    }

    #[test]
    fn compose_split_shapes_labels_and_determinism() {
        let n = 5;
        let mut pixels = Vec::new();
        for i in 0..n {
            pixels.extend(square(4, (2 * i, 2 * i), 50 + i as u8));
        }
        let split = SourceSplit {
            images: Images {
                n,
                rows: SIDE,
                cols: SIDE,
                pixels,
            },
            labels: (0..n as u8).map(|i| 9 - i).collect(),
        };
        let a = compose_split(&split, &split, 3).unwrap();
        let b = compose_split(&split, &split, 3).unwrap();
        assert_eq!(a.n, n);
        assert_eq!(a.pixels.len(), n * SIDE * SIDE);
        assert_eq!(a.partners, b.partners);
        assert_eq!(a.pixels, b.pixels);
        for i in 0..n {
            assert_eq!(a.labels[0][i], 9 - i as u8);
            let j = a.partners[i] as usize;
            assert!(j < n);
            assert_eq!(a.labels[1][i], 9 - j as u8);
            assert_eq!(
                a.image(i),
                &compose(split.images.image(i), split.images.image(j))[..]
            );
        }
        // Bad shapes are errors, not panics.
        let mut bad = split.clone();
        bad.images.rows = 27;
        assert!(compose_split(&bad, &split, 0).is_err());
        let mut bad = split.clone();
        bad.labels.pop();
        assert!(compose_split(&split, &bad, 0).is_err());
    }

    #[test]
    fn variants_parse() {
        assert_eq!(Variant::parse("MNIST").unwrap(), Variant::Mnist);
        assert_eq!(Variant::parse("fashion").unwrap(), Variant::Fashion);
        assert_eq!(Variant::parse("fashion-mnist").unwrap(), Variant::Fashion);
        assert_eq!(
            Variant::parse("fashion+mnist").unwrap(),
            Variant::FashionMnist
        );
        assert!(Variant::parse("cifar").is_err());
        assert_eq!(
            Variant::FashionMnist.sources(),
            [Dataset::Mnist, Dataset::FashionMnist]
        );
    }
}
