//! The `exact_dedupe` and `minhash_dedupe` stages: settings, validation and the keys each
//! computes for the shared clustering in [`crate::cluster`].

use arrow::datatypes::SchemaRef;
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput,
};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use crate::cluster::{self, ClusterSettings, KeepRule, Keyer};
use crate::minhash::MinHasher;
use crate::text::{Normalization, normalize};

fn default_true() -> bool {
    true
}
fn default_ngram() -> usize {
    5
}
fn default_bands() -> usize {
    14
}
fn default_rows() -> usize {
    8
}
fn default_seed() -> u32 {
    1
}

/// Settings of the `exact_dedupe` stage: documents whose normalised text is equal
/// (xxh3-128) form a cluster, of which one is kept; the output adds `exact_dup_cluster`
/// (the kept document's id; null without duplicates) and `exact_dup_cluster_size`, and the
/// side dataset `removed` lists each duplicate with the id it duplicates. Out of core like
/// `minhash_dedupe`, with one key per document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExactDedupeConfig {
    /// How text is normalised before hashing: `none` (byte for byte), `whitespace`
    /// (whitespace runs become one space, ends trimmed) or `datatrove` (datatrove's
    /// `simplify_text`: lowercase, numbers → `0`, punctuation → space, whitespace
    /// collapsed, accents removed). Default `whitespace`.
    #[serde(default)]
    pub normalize: Normalization,
    /// Which document of a cluster is kept: `first` (input order: part, then row),
    /// `smallest_id`, `longest` or `highest_score` (of `score_column`). Ties go to input
    /// order. Default `first`.
    #[serde(default)]
    pub keep: KeepRule,
    /// The numeric column `keep = "highest_score"` ranks by. Default none.
    #[serde(default)]
    pub score_column: Option<String>,
    /// Drop the duplicates (`true`) or keep every row, flagged by the added columns
    /// (`false`). Either way the side dataset `removed` lists them. Default `true`.
    #[serde(default = "default_true")]
    pub drop_duplicates: bool,
}

/// Settings of the `minhash_dedupe` stage: near-duplicates by MinHash LSH over word
/// n-grams, as datatrove and FineWeb do it (14 bands × 8 rows, 5-grams, 64-bit hashes;
/// the signatures are datatrove's, bit for bit). Out of core: band keys are spilled to
/// sorted files in the stage's scratch directory, one per input part, and merged.
/// Memory: 20 bytes per document of the whole input while clustering, plus
/// 20 × `bands` bytes per document of one input part while its keys are sorted. Scratch
/// disk: 20 × `bands` + 24 bytes + the id per document (+ 8 bytes per shingle with
/// `verify_jaccard`). Output: the kept rows with `dup_cluster` (the id of the document
/// its cluster keeps; null without duplicates) and `dup_cluster_size`; the side dataset
/// `removed` lists each duplicate with the id it duplicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MinhashDedupeConfig {
    /// Words per shingle (word n-grams after datatrove's normalisation and English word
    /// splitting), 1 to 64. Documents with fewer words have no shingles and no duplicates.
    /// Default 5.
    #[serde(default = "default_ngram")]
    pub ngram: usize,
    /// LSH bands (datatrove's `num_buckets`), 1 to 256. Two documents are candidates when
    /// all hashes of one band are equal. Default 14.
    #[serde(default = "default_bands")]
    pub bands: usize,
    /// Hashes per band (datatrove's `hashes_per_bucket`), 1 to 64. The similarity at which
    /// half the pairs become candidates is about (1/bands)^(1/rows): 0.72 by default.
    /// Default 8.
    #[serde(default = "default_rows")]
    pub rows: usize,
    /// Seed of the permutations (numpy's `RandomState(seed)`, as datatrove's
    /// `MinhashConfig.seed`). Default 1.
    #[serde(default = "default_seed")]
    pub seed: u32,
    /// When set (0 to 1), candidate pairs are joined only if the exact Jaccard similarity
    /// of their shingle sets is at least this (each document is checked against up to 64
    /// earlier members of a bucket). Costs 8 bytes of scratch disk per shingle. Default
    /// none: every candidate pair is joined, as datatrove does.
    #[serde(default)]
    pub verify_jaccard: Option<f64>,
    /// Which document of a cluster is kept: `first` (input order: part, then row),
    /// `smallest_id`, `longest` or `highest_score` (of `score_column`). Ties go to input
    /// order. Default `first`.
    #[serde(default)]
    pub keep: KeepRule,
    /// The numeric column `keep = "highest_score"` ranks by. Default none.
    #[serde(default)]
    pub score_column: Option<String>,
    /// Drop the duplicates (`true`) or keep every row, flagged by `dup_cluster` and
    /// `dup_cluster_size` (`false`). Either way the side dataset `removed` lists them.
    /// Default `true`.
    #[serde(default = "default_true")]
    pub drop_duplicates: bool,
}

fn check_keep(keep: KeepRule, score: &Option<String>) -> Result<()> {
    match (keep, score) {
        (KeepRule::HighestScore, None) => Err(Error::input(
            "keep = \"highest_score\" needs `score_column`",
        )),
        (k, Some(_)) if k != KeepRule::HighestScore => Err(Error::input(
            "`score_column` is only used with keep = \"highest_score\"",
        )),
        _ => Ok(()),
    }
}

impl ExactDedupeConfig {
    pub fn build(&self, _ctx: &BuildContext) -> Result<ExactDedupe> {
        check_keep(self.keep, &self.score_column)?;
        Ok(ExactDedupe {
            keyer: ExactKeyer(self.normalize),
            settings: ClusterSettings {
                keep: self.keep,
                score_column: self.score_column.clone(),
                drop_duplicates: self.drop_duplicates,
                verify_jaccard: None,
                cluster_column: "exact_dup_cluster".into(),
                size_column: "exact_dup_cluster_size".into(),
            },
        })
    }
}

impl MinhashDedupeConfig {
    pub fn build(&self, _ctx: &BuildContext) -> Result<MinhashDedupe> {
        check_keep(self.keep, &self.score_column)?;
        let range = |name: &str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(Error::input(format!(
                    "`{name}` = {v}: must be from {lo} to {hi}"
                )))
            }
        };
        range("ngram", self.ngram, 1, 64)?;
        range("bands", self.bands, 1, 256)?;
        range("rows", self.rows, 1, 64)?;
        if let Some(t) = self.verify_jaccard
            && !(0.0..=1.0).contains(&t)
        {
            return Err(Error::input(format!(
                "`verify_jaccard` = {t}: must be from 0 to 1"
            )));
        }
        Ok(MinhashDedupe {
            keyer: MinhashKeyer {
                hasher: MinHasher::new(self.ngram, self.bands * self.rows, self.seed),
                bands: self.bands,
                rows: self.rows,
            },
            settings: ClusterSettings {
                keep: self.keep,
                score_column: self.score_column.clone(),
                drop_duplicates: self.drop_duplicates,
                verify_jaccard: self.verify_jaccard,
                cluster_column: "dup_cluster".into(),
                size_column: "dup_cluster_size".into(),
            },
        })
    }
}

/// The `exact_dedupe` stage, built.
pub struct ExactDedupe {
    keyer: ExactKeyer,
    settings: ClusterSettings,
}

struct ExactKeyer(Normalization);

impl Keyer for ExactKeyer {
    type State = String;
    fn state(&self) -> String {
        String::new()
    }
    fn keys(&self, buf: &mut String, text: &str, keys: &mut Vec<u128>, _: &mut Vec<u64>, _: bool) {
        keys.clear();
        normalize(text, self.0, buf);
        keys.push(xxh3_128(buf.as_bytes()));
    }
}

/// The `minhash_dedupe` stage, built.
pub struct MinhashDedupe {
    keyer: MinhashKeyer,
    settings: ClusterSettings,
}

/// Computes band keys: xxh3-128 of the band number and the band's hashes.
pub struct MinhashKeyer {
    hasher: MinHasher,
    bands: usize,
    rows: usize,
}

/// Per-thread buffers of [`MinhashKeyer`].
pub struct MinhashState {
    hasher: MinHasher,
    shingles: Vec<u64>,
    sig: Vec<u64>,
    buf: Vec<u8>,
}

impl MinhashKeyer {
    /// The band keys of a signature: for each band, xxh3-128 of the band number (u32 LE)
    /// and its `rows` hashes (u64 LE). Equal keys are equal bands, up to 128-bit
    /// collisions.
    pub fn band_keys(&self, sig: &[u64], buf: &mut Vec<u8>, keys: &mut Vec<u128>) {
        keys.clear();
        for (b, band) in sig.chunks_exact(self.rows).take(self.bands).enumerate() {
            buf.clear();
            buf.extend_from_slice(&(b as u32).to_le_bytes());
            for h in band {
                buf.extend_from_slice(&h.to_le_bytes());
            }
            keys.push(xxh3_128(buf));
        }
    }
}

impl Keyer for MinhashKeyer {
    type State = MinhashState;
    fn state(&self) -> MinhashState {
        MinhashState {
            hasher: self.hasher.clone(),
            shingles: Vec::new(),
            sig: Vec::new(),
            buf: Vec::new(),
        }
    }
    fn keys(
        &self,
        st: &mut MinhashState,
        text: &str,
        keys: &mut Vec<u128>,
        shingles: &mut Vec<u64>,
        want_shingles: bool,
    ) {
        keys.clear();
        if want_shingles {
            st.hasher.shingles(text, &mut st.shingles);
        } else {
            st.hasher.shingle_hashes(text, &mut st.shingles);
        }
        if st.shingles.is_empty() {
            return;
        }
        st.hasher.signature(&st.shingles, &mut st.sig);
        self.band_keys(&st.sig, &mut st.buf, keys);
        if want_shingles {
            shingles.clone_from(&st.shingles);
        }
    }
}

impl MinhashDedupe {
    /// The shingler and signer this stage uses (for tests and benchmarks).
    pub fn hasher(&self) -> &MinHasher {
        &self.keyer.hasher
    }
    pub fn keyer(&self) -> &MinhashKeyer {
        &self.keyer
    }
}

macro_rules! cluster_stage {
    ($ty:ty, $kind:literal) => {
        impl Stage for $ty {
            fn kind(&self) -> &'static str {
                $kind
            }
            fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
                cluster::output_schema(&self.settings, inputs, $kind)
            }
            fn num_tasks(&self, inputs: &[Dataset]) -> Result<usize> {
                Ok(cluster::phases(inputs).iter().sum())
            }
            fn phases(&self, inputs: &[Dataset]) -> Result<Vec<usize>> {
                Ok(cluster::phases(inputs))
            }
            fn run_task(&self, task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
                cluster::run_task(&self.settings, &self.keyer, task, ctx, out)
            }
            fn side_outputs(&self, _output: &SchemaRef) -> Vec<(String, SchemaRef)> {
                cluster::side_outputs(&self.settings)
            }
        }
    };
}

cluster_stage!(ExactDedupe, "exact_dedupe");
cluster_stage!(MinhashDedupe, "minhash_dedupe");
