//! Duplicate removal and benchmark decontamination.
//!
//! Three stages: [`ExactDedupe`] (`exact_dedupe`) clusters documents whose normalised text
//! is identical (xxh3-128); [`MinhashDedupe`] (`minhash_dedupe`) finds near-duplicates with
//! MinHash LSH exactly as datatrove computes it ([`text`] reproduces datatrove's
//! normalisation and word splitting, [`minhash`] its hashing and numpy-seeded
//! permutations); both cluster out of core with a union-find and keep one document per
//! cluster ([`cluster`] describes the phases, the spill files and the memory per document).
//! [`Decontaminate`] (`decontaminate`) drops or flags documents sharing word n-grams with
//! benchmark items (HumanEval, GSM8K, MMLU, … given as JSONL, Parquet or CSV files).

pub mod cluster;
mod decontaminate;
pub mod minhash;
mod stages;
pub mod text;

pub use cluster::KeepRule;
pub use decontaminate::{
    BenchmarkConfig, BenchmarkFormat, ContaminationAction, Decontaminate, DecontaminateConfig,
};
pub use stages::{
    ExactDedupe, ExactDedupeConfig, MinhashDedupe, MinhashDedupeConfig, MinhashKeyer,
};
pub use text::Normalization;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
