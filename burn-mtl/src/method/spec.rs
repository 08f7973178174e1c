//! Parsing of method specification strings: `name[:key=value,key=value...]`.

use crate::error::MtlError;

/// A parsed method specification such as `pcgrad:seed=3` (name, then `key=value` options).
///
/// ```
/// use burn_mtl::method::MethodSpec;
/// let s = MethodSpec::parse("mgda:solver=frank_wolfe,epsilon=1e-3").unwrap();
/// assert_eq!(s.name, "mgda");
/// assert_eq!(s.get_f64("epsilon").unwrap(), Some(1e-3));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MethodSpec {
    /// The full string as given (for error messages).
    pub raw: String,
    /// The method name, lower-cased, `-` replaced by `_`.
    pub name: String,
    /// The `key=value` options in the order given.
    pub options: Vec<(String, String)>,
}

impl MethodSpec {
    /// Splits `name[:k=v,k=v]`; errors on empty names, options without `=` and repeated keys.
    pub fn parse(s: &str) -> Result<Self, MtlError> {
        let raw = s.trim().to_string();
        let (name, rest) = match raw.split_once(':') {
            Some((n, r)) => (n, Some(r)),
            None => (raw.as_str(), None),
        };
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        let err = |reason: String| MtlError::InvalidMethod {
            spec: raw.clone(),
            reason,
        };
        if name.is_empty() {
            return Err(err("empty method name".into()));
        }
        let mut options: Vec<(String, String)> = Vec::new();
        for part in rest.into_iter().flat_map(|r| r.split(',')).map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| err(format!("option `{part}` is not of the form key=value")))?;
            let k = k.trim().to_ascii_lowercase().replace('-', "_");
            if options.iter().any(|(o, _)| *o == k) {
                return Err(err(format!("option `{k}` given twice")));
            }
            options.push((k, v.trim().to_string()));
        }
        Ok(Self {
            raw: raw.clone(),
            name,
            options,
        })
    }

    /// An `InvalidMethod` error for this specification.
    pub fn error(&self, reason: impl Into<String>) -> MtlError {
        MtlError::InvalidMethod {
            spec: self.raw.clone(),
            reason: reason.into(),
        }
    }

    /// Errors if any option key is not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), MtlError> {
        match self
            .options
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            Some((k, _)) => Err(self.error(format!(
                "unknown option `{k}` for `{}`; allowed: {}",
                self.name,
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            ))),
            None => Ok(()),
        }
    }

    /// Errors if any option was given.
    pub fn no_options(&self) -> Result<(), MtlError> {
        self.only(&[])
    }

    /// The raw value of option `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Option `key` parsed as a finite `f64`.
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>, MtlError> {
        self.get(key)
            .map(|v| match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(self.error(format!("option `{key}`: `{v}` is not a finite number"))),
            })
            .transpose()
    }

    /// Option `key` parsed as a `u64`.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, MtlError> {
        self.get(key)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    self.error(format!(
                        "option `{key}`: `{v}` is not a non-negative integer"
                    ))
                })
            })
            .transpose()
    }

    /// Option `key` parsed as a list of finite `f64` separated by `/` (e.g. `0.3/0.7`).
    pub fn get_f64_list(&self, key: &str) -> Result<Option<Vec<f64>>, MtlError> {
        self.get(key)
            .map(|v| {
                v.split('/')
                    .map(|x| match x.trim().parse::<f64>() {
                        Ok(x) if x.is_finite() => Ok(x),
                        _ => {
                            Err(self.error(format!("option `{key}`: `{x}` is not a finite number")))
                        }
                    })
                    .collect()
            })
            .transpose()
    }
}

/// Splits a comma-separated list of method specifications, where a `key=value` item without a
/// `:` continues the options of the specification before it — so that
/// `mean,pcgrad:seed=3,marigold:beta=0.02,smoothing=0.9` is three methods. For command lines
/// that take several methods in one argument.
///
/// ```
/// use burn_mtl::method::split_specs;
/// assert_eq!(
///     split_specs("mean, pcgrad:seed=3,marigold:beta=0.02,smoothing=0.9"),
///     vec!["mean", "pcgrad:seed=3", "marigold:beta=0.02,smoothing=0.9"],
/// );
/// ```
pub fn split_specs(list: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let continues = !item.contains(':') && item.contains('=');
        match out.last_mut() {
            Some(prev) if continues && prev.contains(':') => {
                prev.push(',');
                prev.push_str(item);
            }
            _ => out.push(item.to_string()),
        }
    }
    out
}
