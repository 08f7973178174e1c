//! The reference-vector files `check-vectors` reads (the format of
//! `shared/reference/README.md`): their serde structs ([`File`], [`Case`], [`RefResult`],
//! [`Sequence`], [`Step`]), and what is read out of a result or step: its recorded random
//! draws ([`recorded`], [`record_of`]) and its tolerance on each path ([`tolerance`]).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::Kind;

#[derive(Deserialize)]
pub(super) struct File {
    #[serde(default)]
    pub(super) methods: BTreeMap<String, Value>,
    #[serde(default)]
    pub(super) cases: Vec<Case>,
    #[serde(default)]
    pub(super) sequences: Vec<Sequence>,
}

#[derive(Deserialize)]
pub(super) struct Case {
    pub(super) name: String,
    #[serde(rename = "G")]
    pub(super) g: Vec<Vec<f64>>,
    pub(super) results: Vec<RefResult>,
}

#[derive(Deserialize)]
pub(super) struct RefResult {
    pub(super) method: String,
    #[serde(default)]
    pub(super) params: Value,
    #[serde(default)]
    pub(super) d: Option<Vec<Option<f64>>>,
    #[serde(default)]
    pub(super) error: Option<String>,
    #[serde(default)]
    pub(super) aux: Option<Value>,
    /// The reference's weights (injected for methods whose draws are the weights: RLW).
    #[serde(default)]
    pub(super) weights: Option<Value>,
    #[serde(default)]
    pub(super) tolerance: Value,
    /// ConicGrad files: the optimal value `min_i ⟨g_i, d⟩` over the cap solid
    /// `{‖d‖ ≤ 1, ⟨d, ĝ0⟩ ≥ c}` (what a non-unique maximiser is judged by).
    #[serde(default)]
    pub(super) worst_case_unit: Option<f64>,
}

#[derive(Deserialize)]
pub(super) struct Sequence {
    pub(super) name: String,
    pub(super) method: String,
    #[serde(default)]
    pub(super) params: Value,
    #[serde(default)]
    pub(super) tolerance: Value,
    pub(super) steps: Vec<Step>,
}

#[derive(Deserialize)]
pub(super) struct Step {
    #[serde(rename = "G")]
    pub(super) g: Vec<Vec<f64>>,
    #[serde(default)]
    pub(super) d: Option<Vec<Option<f64>>>,
    #[serde(default)]
    pub(super) error: Option<String>,
    /// Everything else in the step (recorded draws such as `orders`, state snapshots, ...).
    #[serde(flatten)]
    pub(super) extra: serde_json::Map<String, Value>,
}

/// The draws recorded under `key` in a reference record, parsed as `T`.
pub(super) fn recorded<T: serde::de::DeserializeOwned>(
    record: &Value,
    key: &str,
    method: &str,
) -> Result<T, String> {
    let v = record
        .get(key)
        .ok_or_else(|| format!("{method} result without recorded `{key}`"))?;
    serde_json::from_value(v.clone()).map_err(|e| format!("bad `{key}`: {e}"))
}

/// The recorded draws of a case result: its `aux`, plus its `weights` (RLW's draws).
pub(super) fn record_of(r: &RefResult) -> Option<Value> {
    let mut rec = match &r.aux {
        Some(Value::Object(o)) => o.clone(),
        Some(other) => return Some(other.clone()),
        None => serde_json::Map::new(),
    };
    if let Some(w) = &r.weights {
        rec.entry("weights").or_insert_with(|| w.clone());
    }
    (!rec.is_empty() || r.aux.is_some()).then_some(Value::Object(rec))
}

/// Tolerance of one result on one path: `(rtol, atol)`, from the result's `tolerance`
/// (`rtol_f64`/`atol_f64` or `rtol_f32`/`atol_f32`, `atol` as a fallback), then the file's
/// per-method defaults.
pub(super) fn tolerance(tol: &Value, defaults: Option<&Value>, kind: Kind) -> (f64, f64) {
    let sfx = match kind {
        Kind::Host => "f64",
        Kind::Tensor | Kind::Wgpu => "f32",
    };
    let get = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_f64);
    let rtol = get(Some(tol), &format!("rtol_{sfx}"))
        .or_else(|| get(defaults, &format!("rtol_{sfx}")))
        .unwrap_or(match kind {
            Kind::Host => 1e-9,
            Kind::Tensor | Kind::Wgpu => 1e-4,
        });
    let atol = get(Some(tol), &format!("atol_{sfx}"))
        .or_else(|| get(Some(tol), "atol"))
        .or_else(|| get(defaults, "atol"))
        .unwrap_or(match kind {
            Kind::Host => 1e-12,
            Kind::Tensor | Kind::Wgpu => 1e-6,
        });
    (rtol, atol)
}
