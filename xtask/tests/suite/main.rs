//! xtask's integration tests, one binary: the reference-vector checker on the public files.

mod gram_vectors;
mod public_vectors;
