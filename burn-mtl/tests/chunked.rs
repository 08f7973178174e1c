//! Blocks wider than the CPU Gram chunk: the chunked Gram matrix and the chunked combination
//! must give the same update as the host computation (f32 tolerances).

mod common;

use burn::backend::NdArray;
use burn_mtl::jacobian::{CPU_GRAM_CHUNK, aggregate_dense};
use burn_mtl::linalg::norm;
use burn_mtl::method::Method;
use common::{aggregate, dist, gaussian, rng};

#[test]
fn wide_blocks_match_the_host_reference() {
    // P spans several chunks in the largest block (aggregate_dense splits P into ~1/2, 1/4, ..).
    let p = 5 * CPU_GRAM_CHUNK + 123;
    let mut r = rng(77);
    let rows: Vec<Vec<f64>> = gaussian(&mut r, 4, p, 4)
        .into_iter()
        .map(|row| row.into_iter().map(|v| (v as f32) as f64).collect())
        .collect();
    for spec in ["mean", "mgda", "upgrad", "trimmed_mean", "graddrop:seed=2"] {
        let mut host: Method = spec.parse().unwrap();
        let (d_host, _) = aggregate(&mut host, &rows).unwrap();
        let mut dev: Method = spec.parse().unwrap();
        let (d, _) =
            aggregate_dense::<NdArray>(&rows, &mut dev, None, &Default::default()).unwrap();
        assert_eq!(d.len(), p);
        let err = dist(&d, &d_host);
        assert!(
            err <= 1e-4 * norm(&d_host).max(1.0),
            "{spec}: ‖d − d_host‖ = {err:e}, ‖d_host‖ = {:e}",
            norm(&d_host)
        );
    }
}
