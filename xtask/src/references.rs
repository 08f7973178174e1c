//! The one table from the reference implementations' methods to burn-mtl's: a reference
//! file's method id and parameters (TorchJD's aggregators, the official codes'
//! transcriptions) become a burn-mtl spec string, parsed by the method registry
//! (`Method::from_str`), and each method TorchJD also has names its TorchJD class.
//! `check-vectors` ([`method_for`]) and `bench-backends --torchjd` ([`torchjd_class`]) both
//! read it; a test keeps it in step with the registry.

use burn_mtl::{Method, MtlError};
use serde_json::Value;

/// How one reference parameter becomes an option of the spec string. A parameter the file
/// gives as `null` counts as absent; a parameter the table does not name is not an input of
/// the method (e.g. TorchJD's `n_tasks`, or a seed whose random draws the file records).
#[derive(Clone, Copy, Debug)]
pub enum Param {
    /// `(reference name, option, default)`: the value as it is (numbers, strings, lists of
    /// numbers as `a/b/..`); `default` is the reference implementation's value where the
    /// file omits the parameter (`None`: burn-mtl's default).
    Opt(&'static str, &'static str, Option<&'static str>),
    /// `(reference name, option, [(JSON value, option value)])`: an enumerated value.
    Map(
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
    ),
    /// `(reference name, [JSON values])`: a reference feature burn-mtl implements only at
    /// these values (absent always passes).
    Only(&'static str, &'static [&'static str]),
    /// `(id name, parameters name)`: a wrapped method, given by its reference id and its own
    /// parameters, mapped through this table to `inner=NAME,inner.KEY=VALUE,..` (CR-MOGM).
    Inner(&'static str, &'static str),
}

/// One reference method.
#[derive(Clone, Copy, Debug)]
pub struct RefMethod {
    /// The id in the reference files (`results[].method`, `sequences[].method`).
    pub id: &'static str,
    /// The burn-mtl spec string before the parameters are added.
    pub spec: &'static str,
    /// How the reference parameters map onto the spec's options.
    pub params: &'static [Param],
    /// The TorchJD aggregator class that `bench-backends --torchjd` times against this
    /// method (built with its defaults); `None` where TorchJD has none, or none the bench
    /// builds (TrimmedMean needs an argument; ConFIG and GradDrop are not in the bench).
    pub torchjd: Option<&'static str>,
}

impl RefMethod {
    /// The burn-mtl method name: the spec string without its options.
    pub fn method_name(&self) -> &'static str {
        self.spec.split(':').next().unwrap_or(self.spec)
    }
}

use Param::{Inner, Map, Only, Opt};

const NO_PREF: Param = Only("pref_vector", &["null"]);
const UPGRAD_EPS: [Param; 3] = [
    Opt("norm_eps", "norm_eps", Some("1e-4")),
    Opt("reg_eps", "reg_eps", Some("1e-4")),
    NO_PREF,
];
const ALIGNED_SCALE: Param = Map(
    "scale_mode",
    "scale",
    &[
        ("\"min\"", "min"),
        ("\"median\"", "median"),
        ("\"rmse\"", "rmse"),
    ],
);

/// Every reference id the project's reference files use (`../shared/reference/`).
pub const REFERENCE_METHODS: &[RefMethod] = &[
    RefMethod {
        id: "mean",
        spec: "mean",
        params: &[],
        torchjd: Some("Mean"),
    },
    RefMethod {
        id: "sum",
        spec: "sum",
        params: &[],
        torchjd: Some("Sum"),
    },
    // TorchJD's MGDA: Frank–Wolfe from w = 1/K.
    RefMethod {
        id: "mgda",
        spec: "mgda:solver=frank_wolfe",
        params: &[
            Opt("epsilon", "epsilon", Some("1e-3")),
            Opt("max_iters", "max_iters", Some("100")),
        ],
        torchjd: Some("MGDA"),
    },
    RefMethod {
        id: "mgda_exact",
        spec: "mgda:solver=exact",
        params: &[],
        torchjd: None,
    },
    RefMethod {
        id: "pcgrad",
        spec: "pcgrad",
        params: &[],
        torchjd: Some("PCGrad"),
    },
    RefMethod {
        id: "imtl_g",
        spec: "imtl_g",
        params: &[],
        torchjd: Some("IMTLG"),
    },
    // TorchJD's CAGrad: no rescaling, zero output on tiny Gramians.
    RefMethod {
        id: "cagrad",
        spec: "cagrad:convention=torchjd",
        params: &[
            Opt("c", "c", Some("0.5")),
            Opt("norm_eps", "norm_eps", Some("1e-4")),
        ],
        torchjd: Some("CAGrad"),
    },
    // The official formula (`alpha` = c, its 1e-8 constants); the SLSQP transcription and the
    // accurate solver map to the same exact solve.
    RefMethod {
        id: "cagrad_original",
        spec: "cagrad:convention=original,norm_eps=none",
        params: &CAGRAD_ORIGINAL,
        torchjd: None,
    },
    RefMethod {
        id: "cagrad_original_exact_solver",
        spec: "cagrad:convention=original,norm_eps=none",
        params: &CAGRAD_ORIGINAL,
        torchjd: None,
    },
    // TorchJD's AlignedMTL: mean preference, rank cut-off from the data's dtype.
    RefMethod {
        id: "aligned_mtl",
        spec: "aligned_mtl:pref=mean,rank_eps=dtype",
        params: &[ALIGNED_SCALE, NO_PREF],
        torchjd: Some("AlignedMTL"),
    },
    // The SamsungLabs original: sum, f32 epsilon.
    RefMethod {
        id: "aligned_mtl_original",
        spec: "aligned_mtl:pref=sum,rank_eps=f32",
        params: &[ALIGNED_SCALE],
        torchjd: None,
    },
    RefMethod {
        id: "conicgrad",
        spec: "conicgrad",
        params: &[Opt("c", "c", Some("0.5"))],
        torchjd: Some("ConicGrad"),
    },
    RefMethod {
        id: "config",
        spec: "config",
        params: &[Opt("pref_vector", "pref", None)],
        torchjd: None,
    },
    RefMethod {
        id: "trimmed_mean",
        spec: "trimmed_mean",
        params: &[Opt("trim_number", "trim", Some("1"))],
        torchjd: None,
    },
    RefMethod {
        id: "graddrop",
        spec: "graddrop",
        params: &[Only("leak", &["null"]), Only("f", &["\"identity\""])],
        torchjd: None,
    },
    RefMethod {
        id: "db_mtl",
        spec: "db_mtl",
        params: &[
            Opt("beta", "beta", Some("0.9")),
            Opt("beta_sigma", "beta_sigma", Some("0")),
        ],
        torchjd: None,
    },
    RefMethod {
        id: "gradvac",
        spec: "gradvac",
        params: &[
            Opt("beta", "beta", Some("0.5")),
            Opt("eps", "eps", Some("1e-8")),
        ],
        torchjd: Some("GradVac"),
    },
    RefMethod {
        id: "upgrad",
        spec: "upgrad",
        params: &UPGRAD_EPS,
        torchjd: Some("UPGrad"),
    },
    RefMethod {
        id: "dualproj",
        spec: "dualproj",
        params: &UPGRAD_EPS,
        torchjd: Some("DualProj"),
    },
    RefMethod {
        id: "nash_mtl",
        spec: "nash_mtl",
        params: &[
            Opt("max_norm", "max_norm", Some("1")),
            Opt("update_weights_every", "update_weights_every", Some("1")),
            NO_PREF,
        ],
        torchjd: Some("NashMTL"),
    },
    RefMethod {
        id: "fairgrad",
        spec: "fairgrad",
        params: &[Opt("alpha", "alpha", Some("1")), NO_PREF],
        torchjd: Some("FairGrad"),
    },
    RefMethod {
        id: "krum",
        spec: "krum",
        params: &[
            Opt("n_byzantine", "byzantine", Some("1")),
            Opt("n_selected", "selected", Some("1")),
            NO_PREF,
        ],
        torchjd: Some("Krum"),
    },
    RefMethod {
        id: "random",
        spec: "random",
        params: &[NO_PREF],
        torchjd: Some("Random"),
    },
    // TorchJD's FAMO scalarisation (one instance over a sequence of steps).
    RefMethod {
        id: "famo",
        spec: "famo",
        params: &[
            Opt("lr", "lr", Some("0.025")),
            Opt("weight_decay", "gamma", Some("1e-3")),
            Opt("epsilon", "eps", Some("1e-8")),
            Opt("min_losses", "min_losses", None),
        ],
        torchjd: None,
    },
    // Catalogue v2 (`public_vectors_v2.json`): TorchJD 0.18's CR-MOGM around one of the
    // Gramian weightings above, and its COSMOS and PBI scalarisations.
    RefMethod {
        id: "cr_mogm",
        spec: "cr_mogm",
        params: &[
            Opt("alpha", "alpha", Some("0.9")),
            Opt("initial_weights", "initial_weights", None),
            Inner("weighting", "weighting_params"),
        ],
        torchjd: None,
    },
    RefMethod {
        id: "pcd",
        spec: "pcd",
        params: &[
            Opt("tau", "tau", Some("0.02")),
            Opt("beta", "beta", Some("0.999")),
            Opt("eps", "eps", Some("1e-8")),
        ],
        torchjd: Some("PCD"),
    },
    // LibMTL's MoCo (transcribed).
    RefMethod {
        id: "moco",
        spec: "moco",
        params: &[
            Opt("beta", "beta", Some("0.5")),
            Opt("beta_sigma", "beta_sigma", Some("0.5")),
            Opt("gamma", "gamma", Some("0.1")),
            Opt("gamma_sigma", "gamma_sigma", Some("0.5")),
            Opt("rho", "rho", Some("0")),
        ],
        torchjd: None,
    },
    RefMethod {
        id: "cosmos",
        spec: "cosmos",
        params: &[Opt("lambda_", "lambda", Some("1"))],
        torchjd: None,
    },
    RefMethod {
        id: "pbi",
        spec: "pbi",
        params: &[
            Opt("theta", "theta", Some("5")),
            Opt("reference_point", "reference", None),
        ],
        torchjd: None,
    },
];

const CAGRAD_ORIGINAL: [Param; 2] = [
    Opt("alpha", "c", Some("0.5")),
    Map(
        "rescale",
        "rescale",
        &[("0", "none"), ("1", "one_plus_c2"), ("2", "one_plus_c")],
    ),
];

/// Registered methods with no entry in the table, and why (a test checks that every other
/// registered method has one).
pub const WITHOUT_REFERENCE: &[(&str, &str)] = &[
    ("linear", "fixed user weights: nothing to compare"),
    (
        "marigold",
        "no public code: tested against exact MGDA on the toy and by its own unit tests",
    ),
    (
        "dwa",
        "loss-based, no Gram input: transcription tests in burn-mtl",
    ),
    ("uw", "loss-based: transcription tests in burn-mtl"),
    ("imtl_l", "loss-based: transcription tests in burn-mtl"),
    ("stch", "loss-based: transcription tests in burn-mtl"),
    ("gls", "loss-based: transcription tests in burn-mtl"),
    ("si", "loss-based: transcription tests in burn-mtl"),
    (
        "gradnorm",
        "needs the network's last shared layer: tests in burn-mtl",
    ),
];

/// The table's entry for a reference id.
pub fn lookup(id: &str) -> Option<&'static RefMethod> {
    REFERENCE_METHODS.iter().find(|m| m.id == id)
}

/// A JSON parameter value as spec-string text: numbers as they parse back exactly, strings
/// as they are, lists of numbers as `a/b/..`; `None` for `null`.
fn spec_value(v: &Value) -> Result<Option<String>, String> {
    Ok(Some(match v {
        Value::Null => return Ok(None),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.to_string(),
            (_, Some(i), _) => i.to_string(),
            (_, _, Some(f)) => f.to_string(),
            _ => return Err(format!("{n} is not a number burn-mtl reads")),
        },
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Array(a) => a
            .iter()
            .map(|x| match x.as_f64() {
                Some(f) => Ok(f.to_string()),
                None => Err(format!("list entry {x} is not a number")),
            })
            .collect::<Result<Vec<_>, _>>()?
            .join("/"),
        Value::Object(_) => return Err("an object is not an option value".into()),
    }))
}

impl RefMethod {
    /// The spec string for the reference's parameters, or why burn-mtl cannot take them.
    pub fn spec_for(&self, params: &Value) -> Result<String, String> {
        let get = |name: &str| params.get(name).filter(|v| !v.is_null());
        let mut options: Vec<String> = Vec::new();
        for p in self.params {
            match *p {
                Opt(name, option, default) => {
                    let value = match get(name) {
                        Some(v) => spec_value(v).map_err(|e| format!("{name}: {e}"))?,
                        None => default.map(str::to_string),
                    };
                    if let Some(v) = value {
                        options.push(format!("{option}={v}"));
                    }
                }
                Map(name, option, values) => {
                    if let Some(v) = get(name) {
                        let text = v.to_string();
                        let (_, mapped) =
                            values.iter().find(|(j, _)| *j == text).ok_or_else(|| {
                                format!("{}: {name} = {text} is not supported", self.id)
                            })?;
                        options.push(format!("{option}={mapped}"));
                    }
                }
                Inner(id_name, params_name) => {
                    if let Some(id) = get(id_name) {
                        let id = id
                            .as_str()
                            .ok_or_else(|| format!("{id_name}: {id} is not a method id"))?;
                        let inner = lookup(id)
                            .ok_or_else(|| format!("{id_name}: unknown method id `{id}`"))?;
                        let empty = Value::Object(Default::default());
                        let spec = inner.spec_for(get(params_name).unwrap_or(&empty))?;
                        let parsed = burn_mtl::method::MethodSpec::parse(&spec)
                            .map_err(|e| format!("{id_name}: {e}"))?;
                        options.push(format!("inner={}", parsed.name));
                        for (k, v) in parsed.options {
                            options.push(format!("inner.{k}={v}"));
                        }
                    }
                }
                Only(name, allowed) => {
                    if let Some(v) = params.get(name) {
                        let text = v.to_string();
                        if !allowed.contains(&text.as_str()) {
                            return Err(format!(
                                "{}: only {name} = {} is supported, not {text}",
                                self.id,
                                allowed.join(" or ")
                            ));
                        }
                    }
                }
            }
        }
        let mut spec = self.spec.to_string();
        if !options.is_empty() {
            spec.push(if spec.contains(':') { ',' } else { ':' });
            spec.push_str(&options.join(","));
        }
        Ok(spec)
    }
}

/// The burn-mtl method for a reference result's method id and parameters: `None` when the
/// id is not in [`REFERENCE_METHODS`], an error when burn-mtl does not support the
/// parameters.
///
/// ```
/// use burn_mtl::Weighting;
/// use serde_json::json;
/// let m = xtask::references::method_for("mgda", &json!({"epsilon": 1e-3, "max_iters": 100}));
/// assert_eq!(m.unwrap().unwrap().name(), "mgda");
/// assert!(xtask::references::method_for("no_such_method", &json!({})).is_none());
/// ```
pub fn method_for(id: &str, params: &Value) -> Option<Result<Method, MtlError>> {
    let entry = lookup(id)?;
    Some(
        entry
            .spec_for(params)
            .map_err(MtlError::InvalidConfig)
            .and_then(|spec| spec.parse::<Method>()),
    )
}

/// TorchJD's aggregator class for a burn-mtl method name (`Method::name`), if TorchJD has it.
pub fn torchjd_class(method: &str) -> Option<&'static str> {
    REFERENCE_METHODS.iter().find_map(|m| {
        let name = m.method_name();
        (name == method).then_some(m.torchjd).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_mtl::Weighting;
    use serde_json::json;

    /// Every entry parses with the reference defaults, ids are unique, and every registered
    /// method has an entry or a reason in [`WITHOUT_REFERENCE`] (a new method fails here
    /// until it is mapped or explained).
    #[test]
    fn table_covers_the_registry() {
        for (i, m) in REFERENCE_METHODS.iter().enumerate() {
            let spec = m.spec_for(&json!({})).unwrap();
            let method: Method = spec
                .parse()
                .unwrap_or_else(|e| panic!("{}: `{spec}`: {e}", m.id));
            assert_eq!(method.name(), m.method_name());
            assert!(
                REFERENCE_METHODS[..i].iter().all(|o| o.id != m.id),
                "duplicate id {}",
                m.id
            );
        }
        for name in Method::names() {
            let mapped = REFERENCE_METHODS.iter().any(|m| m.method_name() == *name);
            let excused = WITHOUT_REFERENCE.iter().any(|(n, _)| n == name);
            assert!(
                mapped != excused,
                "`{name}`: map it in REFERENCE_METHODS or explain in WITHOUT_REFERENCE \
                 (not both)"
            );
        }
    }

    #[test]
    fn parameters_become_options() {
        let spec = |id: &str, p: Value| lookup(id).unwrap().spec_for(&p);
        assert_eq!(
            spec("mgda", json!({"epsilon": 0.01, "max_iters": 7})).unwrap(),
            "mgda:solver=frank_wolfe,epsilon=0.01,max_iters=7"
        );
        assert_eq!(
            spec("cagrad_original", json!({"alpha": 0.5, "rescale": 2})).unwrap(),
            "cagrad:convention=original,norm_eps=none,c=0.5,rescale=one_plus_c"
        );
        assert_eq!(
            spec("config", json!({"pref_vector": [1.0, 2.5]})).unwrap(),
            "config:pref=1/2.5"
        );
        assert_eq!(
            spec("config", json!({"pref_vector": null})).unwrap(),
            "config"
        );
        assert_eq!(
            spec(
                "cr_mogm",
                json!({"alpha": 0.5, "weighting": "mgda", "weighting_params": {"epsilon": 0.01}})
            )
            .unwrap(),
            "cr_mogm:alpha=0.5,inner=mgda,inner.solver=frank_wolfe,inner.epsilon=0.01,\
             inner.max_iters=100"
        );
        assert!(spec("cr_mogm", json!({"weighting": "nope"})).is_err());
        assert!(spec("graddrop", json!({"f": "tanh"})).is_err());
        assert!(spec("upgrad", json!({"pref_vector": [1.0, 1.0]})).is_err());
        assert!(spec("cagrad_original", json!({"rescale": 3})).is_err());
        assert_eq!(torchjd_class("mgda"), Some("MGDA"));
        assert_eq!(torchjd_class("db_mtl"), None);
    }
}
