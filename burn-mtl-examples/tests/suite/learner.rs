//! A real burn-train `Learner` with `MultiTaskOptimizer` as its optimizer: single device,
//! gradient accumulation and sharded multi-device training all train every task, and the
//! Learner's optimizer checkpoint holds burn-mtl's record (wrapped Adam + method state).

use burn::backend::{Autodiff, NdArray};
use burn::optim::Optimizer;
use burn::record::{CompactRecorder, Recorder};
use burn_mtl::Method;
use burn_mtl_examples::digits::{
    DigitsNet, LearnerOptim, LearnerRun, TASKS, train_with_learner_cpu,
};

type B = Autodiff<NdArray>;
type Record = <LearnerOptim<B> as Optimizer<DigitsNet<B>, B>>::Record;

fn run(
    tag: &str,
    method: &str,
    accumulation: Option<usize>,
    multi_device: bool,
) -> (LearnerRun, burn_mtl_examples::digits::LearnerOutcome) {
    let run = LearnerRun {
        method: method.parse::<Method>().unwrap(),
        epochs: 2,
        batch_size: 32,
        lr: 1e-2,
        grads_accumulation: accumulation,
        multi_device,
        limit: Some(480),
        dir: std::env::temp_dir().join(format!("burn-mtl-learner-{tag}")),
        verbose: false,
        seed: 3,
    };
    let out = train_with_learner_cpu(&run);
    (run, out)
}

fn check(tag: &str, run: &LearnerRun, out: &burn_mtl_examples::digits::LearnerOutcome, steps: u64) {
    for (k, (name, classes)) in TASKS.iter().enumerate() {
        let (before, after) = (out.before[k], out.test[k]);
        assert!(
            after.0 < before.0,
            "{tag}: {name} test loss {} -> {}",
            before.0,
            after.0
        );
        let chance = 100.0 / *classes as f64;
        assert!(
            after.1 > chance + 15.0,
            "{tag}: {name} accuracy {:.1}% (chance {chance:.0}%)",
            after.1
        );
    }
    let report = out
        .last_report
        .as_ref()
        .expect("the optimizer published reports");
    assert_eq!(report.weights.len(), TASKS.len());
    let record: Record = CompactRecorder::new()
        .load(
            run.dir
                .join("checkpoint")
                .join(format!("optim-{}", run.epochs)),
            &Default::default(),
        )
        .expect("the Learner checkpointed the optimizer");
    assert_eq!(
        record.steps, steps,
        "{tag}: aggregation steps in the checkpoint"
    );
    assert_eq!(record.num_tasks, Some(TASKS.len()));
}

#[test]
fn learner_single_device_mgda() {
    let (r, out) = run("single", "mgda", None, false);
    check("single", &r, &out, 2 * 15);
}

#[test]
fn learner_with_gradient_accumulation_and_a_stateful_method() {
    let (r, out) = run("accum", "pcgrad:seed=5", Some(3), false);
    check("accum", &r, &out, 2 * 5);
    let record: Record = CompactRecorder::new()
        .load(
            r.dir.join("checkpoint").join("optim-2"),
            &Default::default(),
        )
        .unwrap();
    // PCGrad's RNG state travels in the checkpoint: it has moved on from the seed.
    assert_ne!(record.method, "pcgrad:seed=5".parse::<Method>().unwrap());
}

#[test]
fn learner_multi_device_sharded() {
    let (r, out) = run("multi", "imtl_g", None, true);
    // Two workers share the batches: each optimizer step consumes two batches.
    check("multi", &r, &out, 2 * 15u64.div_ceil(2));
}
