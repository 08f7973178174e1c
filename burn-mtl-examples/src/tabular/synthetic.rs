//! A small synthetic mixed-type CSV with three easy tasks, for tests and the CI smoke run.
//!
//! `burn-mtl-examples/data-samples/synthetic_mixed.csv` is `synthetic_csv(300, 7)` (a test
//! checks it; regenerate it with
//! `BURN_MTL_WRITE_SAMPLES=1 cargo test -p burn-mtl-examples --test tabular`).
//!
//! Columns, separated by `", "` as in the UCI census files:
//! - `age` (numeric, 20–70, about 5 % `?`), `score` (numeric, standard normal), `noise`
//!   (numeric, unrelated), `color` (`red`/`green`/`blue`, about 5 % empty), `group`
//!   (`A`..`D`), `id` (a row number, to be dropped);
//! - targets: `income` binary with labels `- 50000.` / `50000+.` (1 when
//!   `score + [color = red] + (age − 45)/25 + 0.3 ε > 0.5`), `kind` with classes `x`, `y`, `z`
//!   (`z` for groups C and D, else `x` when `score < 0`, else `y`) and `value` regression
//!   (`3 score + 2 [color = blue] + 0.2 ε`).

use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The CSV text (header + `rows` rows, `", "`-separated) drawn with `seed`.
pub fn synthetic_csv(rows: usize, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = |rng: &mut ChaCha8Rng| {
        // Box–Muller.
        let u1: f64 = rng.random_range(1e-12..1.0);
        let u2: f64 = rng.random_range(0.0..1.0);
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let mut s = String::from("id, age, score, noise, color, group, income, kind, value\n");
    let colors = ["red", "green", "blue"];
    let groups = ["A", "B", "C", "D"];
    for i in 0..rows {
        let age = rng.random_range(20..=70) as f64;
        let age_cell = if rng.random_bool(0.05) {
            "?".to_string()
        } else {
            format!("{age}")
        };
        let score = normal(&mut rng);
        let noise = normal(&mut rng);
        let color = colors[rng.random_range(0..3)];
        let color_cell = if rng.random_bool(0.05) { "" } else { color };
        let group = groups[rng.random_range(0..4)];
        let e1 = normal(&mut rng);
        let e2 = normal(&mut rng);
        let red = (color == "red") as u8 as f64;
        let blue = (color == "blue") as u8 as f64;
        let income = if score + red + (age - 45.0) / 25.0 + 0.3 * e1 > 0.5 {
            "50000+."
        } else {
            "- 50000."
        };
        let kind = if group == "C" || group == "D" {
            "z"
        } else if score < 0.0 {
            "x"
        } else {
            "y"
        };
        let value = 3.0 * score + 2.0 * blue + 0.2 * e2;
        let _ = writeln!(
            s,
            "{i}, {age_cell}, {score:.4}, {noise:.4}, {color_cell}, {group}, {income}, {kind}, {value:.4}"
        );
    }
    s
}
