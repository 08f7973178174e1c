//! The wasm-bindgen interface of the page (`www/demo.js`): one session at a time, kept in a
//! thread-local slot. Every export returns JSON text or a plain number array.
//!
//! An async export takes the session out of its slot for the duration of the call and puts
//! it back at the end, so no borrow is held across an `await`; the page never runs two
//! calls at once.

use std::cell::RefCell;

use burn::backend::wgpu::{RuntimeOptions, WgpuDevice, graphics::WebGpu, init_setup_async};
use burn::backend::{Autodiff, NdArray, Wgpu};
use burn::tensor::backend::AutodiffBackend;
use burn_mtl::Method;
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;

use crate::toy::{STARTS, ToyProblem};
use crate::{Engine, Point, Session};

type NdB = Autodiff<NdArray>;
type GpuB = Autodiff<Wgpu>;

/// The backend the page runs on.
enum Backend {
    NdArray,
    WebGpu(WgpuDevice),
}

/// A session on either backend.
enum AnySession {
    NdArray(Session<NdB>),
    WebGpu(Session<GpuB>),
}

thread_local! {
    static BACKEND: RefCell<Option<Backend>> = const { RefCell::new(None) };
    static SESSION: RefCell<Option<AnySession>> = const { RefCell::new(None) };
}

fn err(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

/// Panics go to the browser console with their message (instead of a bare `unreachable`).
#[wasm_bindgen(start)]
pub fn main() {
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&JsValue::from_str(&format!("burn-mtl-demo: {info}")));
    }));
}

/// Selects the backend: `"webgpu"` (burn-wgpu on the browser's WebGPU; the page checks
/// `navigator.gpu` first) or `"ndarray"` (burn-ndarray on the CPU). Returns a JSON object
/// with `backend` and, for WebGPU, the adapter's name and driver.
#[wasm_bindgen]
pub async fn init_backend(kind: String) -> Result<String, JsValue> {
    let (backend, info) = match kind.as_str() {
        "ndarray" => (Backend::NdArray, json!({ "backend": "ndarray" })),
        "webgpu" => {
            let device = WgpuDevice::default();
            let setup = init_setup_async::<WebGpu>(&device, RuntimeOptions::default()).await;
            let a = setup.adapter.get_info();
            let info = json!({
                "backend": "webgpu",
                "adapter": a.name,
                "driver": format!("{} {}", a.driver, a.driver_info).trim().to_string(),
                "device_type": format!("{:?}", a.device_type),
            });
            (Backend::WebGpu(device), info)
        }
        other => return Err(err(format!("unknown backend `{other}`"))),
    };
    BACKEND.with(|b| *b.borrow_mut() = Some(backend));
    SESSION.with(|s| *s.borrow_mut() = None);
    Ok(info.to_string())
}

/// The methods (name and default specification), the standard starting points and the
/// specification syntax, as JSON.
#[wasm_bindgen]
pub fn catalog() -> String {
    json!({
        "methods": crate::method_names(),
        "starts": STARTS,
        "help": Method::help(),
    })
    .to_string()
}

/// Starts a new session: every method of `specs` (comma-separated burn-mtl specifications,
/// as the `toy` example's `--methods`) from every start of `starts` (JSON `[[x1, x2], ...]`),
/// with Adam's learning rate `lr`, the factor `l1_scale` on `L1`, and `engine`
/// (`"cpu"` or `"device"`; WebGPU always uses `"device"`). Returns the runs and the
/// problem's reference curves as JSON.
#[wasm_bindgen]
pub fn configure(
    specs: String,
    starts: String,
    lr: f64,
    l1_scale: f64,
    engine: String,
) -> Result<String, JsValue> {
    let starts: Vec<[f64; 2]> = serde_json::from_str(&starts).map_err(err)?;
    if starts.is_empty() {
        return Err(err("no starting point"));
    }
    let mut methods = Vec::new();
    for spec in burn_mtl::method::split_specs(&specs) {
        let m: Method = spec.parse().map_err(err)?;
        methods.push((spec, m));
    }
    if methods.is_empty() {
        return Err(err("no method"));
    }
    let mut engine: Engine = engine.parse().map_err(err)?;
    let problem = ToyProblem {
        scales: [l1_scale, 1.0],
    };
    let session = BACKEND.with(|b| {
        Ok::<_, JsValue>(match b.borrow().as_ref() {
            None => return Err(err("init_backend first")),
            Some(Backend::NdArray) => {
                let mut s = Session::<NdB>::new(problem, lr, engine, Default::default());
                for (label, m) in &methods {
                    for &x in &starts {
                        s.add_run(label, m.clone(), x);
                    }
                }
                AnySession::NdArray(s)
            }
            Some(Backend::WebGpu(device)) => {
                engine = Engine::Device;
                let mut s = Session::<GpuB>::new(problem, lr, engine, device.clone());
                for (label, m) in &methods {
                    for &x in &starts {
                        s.add_run(label, m.clone(), x);
                    }
                }
                AnySession::WebGpu(s)
            }
        })
    })?;
    let runs: Vec<Value> = methods
        .iter()
        .flat_map(|(label, _)| {
            starts
                .iter()
                .map(move |x| json!({ "label": label, "start": x }))
        })
        .collect();
    let pareto = problem.pareto_set(281);
    let front: Vec<Value> = pareto
        .points
        .iter()
        .map(|p| json!({ "x": p.x, "losses": p.losses }))
        .collect();
    let mean_min = problem.mean_loss_minimum();
    let start_losses: Vec<[f64; 2]> = starts.iter().map(|&x| problem.losses(x)).collect();
    SESSION.with(|s| *s.borrow_mut() = Some(session));
    Ok(json!({
        "runs": runs,
        "engine": engine.name(),
        "pareto": front,
        "mean_min": { "x": mean_min, "losses": problem.losses(mean_min) },
        "start_losses": start_losses,
    })
    .to_string())
}

/// Takes `n` steps of every run. Returns JSON: per run, the new points
/// `[step, x1, x2, L1, L2, w1, w2]` (weights `null` before the first step), its step count
/// and its error, if it stopped.
#[wasm_bindgen]
pub async fn step(n: u32) -> Result<String, JsValue> {
    let Some(mut session) = SESSION.with(|s| s.borrow_mut().take()) else {
        return Err(err("configure first"));
    };
    let n = n as usize;
    let (points, status) = match &mut session {
        AnySession::NdArray(s) => {
            let p = s.step(n).await;
            (p, status(s))
        }
        AnySession::WebGpu(s) => {
            let p = s.step(n).await;
            (p, status(s))
        }
    };
    SESSION.with(|s| *s.borrow_mut() = Some(session));
    let runs: Vec<Value> = points
        .iter()
        .zip(status)
        .map(|(pts, (steps, error))| {
            json!({
                "steps": steps,
                "error": error,
                "points": pts.iter().map(point_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({ "runs": runs }).to_string())
}

fn status<B: AutodiffBackend>(s: &Session<B>) -> Vec<(usize, Option<String>)> {
    s.runs()
        .iter()
        .map(|r| (r.steps(), r.error().map(str::to_string)))
        .collect()
}

fn point_json(p: &Point) -> Value {
    let w = |k: usize| p.weights.get(k).copied();
    json!([p.step, p.x[0], p.x[1], p.losses[0], p.losses[1], w(0), w(1)])
}

/// The mean loss on an `nx × ny` grid over `[x_lo, x_hi] × [y_lo, y_hi]` (rows from the top),
/// for the parameter-space background.
#[wasm_bindgen]
pub fn mean_loss_grid(
    l1_scale: f64,
    nx: usize,
    ny: usize,
    x_lo: f64,
    x_hi: f64,
    y_lo: f64,
    y_hi: f64,
) -> Vec<f64> {
    let problem = ToyProblem {
        scales: [l1_scale, 1.0],
    };
    crate::mean_loss_grid(&problem, nx, ny, [x_lo, x_hi], [y_lo, y_hi])
}
