//! Reading a model file: `FastText::loadModel` (fasttext.cc) with every size checked.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::dict::{Dictionary, LABEL_PREFIX};
use crate::error::{Error, Result};
use crate::loss::{LossKind, SigmoidTable, Tree};
use crate::matrix::Matrix;
use crate::predict::{Prediction, Predictor};
use crate::read::Reader;

/// `FASTTEXT_FILEFORMAT_MAGIC_INT32`.
pub const MAGIC: i32 = 793_712_314;
/// `FASTTEXT_VERSION`: the newest format fastText 0.9 writes and reads.
pub const VERSION: i32 = 12;

/// How the output layer turns the hidden vector into label scores.
pub(crate) enum Output {
    Tree(Tree),
    Softmax,
    /// One-vs-all and negative sampling: a sigmoid per label.
    Sigmoid(SigmoidTable),
}

/// A supervised fastText model (a classifier such as lid.176), loaded from a `.bin` or a
/// quantized `.ftz` file. Immutable and `Sync`: share it between threads and give each
/// thread its own [`Predictor`].
pub struct Model {
    pub(crate) dim: usize,
    pub(crate) dict: Dictionary,
    pub(crate) input: Matrix,
    pub(crate) output: Matrix,
    pub(crate) out: Output,
    loss: LossKind,
    labels: Vec<String>,
    quantized: bool,
    /// Whether [`project`](Model::project) replaced the input matrix.
    projected: bool,
    /// Bit `key >> entry_shift` set for the token-cache key of every dictionary entry: a
    /// token whose bit is clear is in no entry, and a predictor's first sight of it skips
    /// fastText's hash and the vocabulary lookup (most tokens of a corpus are unknown
    /// words).
    pub(crate) entry_keys: Vec<u64>,
    pub(crate) entry_shift: u32,
}

/// Bits of [`Model::entry_keys`]: at least 8 per dictionary entry (about one unknown
/// token in eight is then looked up for nothing), at least 2^17 (16 KB: lid.176 has
/// 7,235 words and 176 labels), at most 2^24 (2 MB).
fn entry_key_bits(entries: usize) -> u32 {
    (entries.max(1) * 8)
        .next_power_of_two()
        .trailing_zeros()
        .clamp(17, 24)
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("dim", &self.dim)
            .field("loss", &self.loss)
            .field("words", &self.dict.nwords)
            .field("labels", &self.labels.len())
            .field("quantized", &self.quantized)
            .field("projected", &self.projected)
            .finish()
    }
}

impl Model {
    /// Reads a fastText model file. Fails, naming the file, when it is missing, is not a
    /// fastText model, is truncated or inconsistent, or is not a supervised model.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            file: path.to_path_buf(),
            source,
        };
        let f = File::open(path).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        Model::read(BufReader::with_capacity(1 << 16, f), len, path)
    }

    /// Reads a model from bytes in memory; `name` names it in errors.
    pub fn from_bytes(bytes: &[u8], name: impl AsRef<Path>) -> Result<Model> {
        Model::read(bytes, bytes.len() as u64, name.as_ref())
    }

    fn read<R: BufRead>(inner: R, len: u64, file: &Path) -> Result<Model> {
        let mut r = Reader::new(inner, len, file);
        let not_fasttext = || Error::NotFastText {
            file: file.to_path_buf(),
        };
        if len < 4 {
            return Err(not_fasttext());
        }
        if r.i32("magic number")? != MAGIC {
            return Err(not_fasttext());
        }
        let version = r.i32("format version")?;
        if version > VERSION {
            return Err(Error::Version {
                file: file.to_path_buf(),
                version,
            });
        }
        // Args::load.
        let dim = r.i32("args dim")?;
        let _ws = r.i32("args ws")?;
        let _epoch = r.i32("args epoch")?;
        let _min_count = r.i32("args minCount")?;
        let _neg = r.i32("args neg")?;
        let word_ngrams = r.i32("args wordNgrams")?;
        let loss = r.i32("args loss")?;
        let model = r.i32("args model")?;
        let bucket = r.i32("args bucket")?;
        let minn = r.i32("args minn")?;
        let mut maxn = r.i32("args maxn")?;
        let _lr_update_rate = r.i32("args lrUpdateRate")?;
        let _t = r.f64("args t")?;
        let loss = match loss {
            1 => LossKind::HierarchicalSoftmax,
            2 => LossKind::NegativeSampling,
            3 => LossKind::Softmax,
            4 => LossKind::OneVsAll,
            l => return Err(r.invalid(format!("unknown loss {l} (fastText knows 1 to 4)"))),
        };
        match model {
            3 => {}
            1 | 2 => {
                return Err(Error::Unsupported {
                    file: file.to_path_buf(),
                    reason: format!(
                        "it is a word-vector model ({}), not a supervised classifier",
                        if model == 1 { "cbow" } else { "skipgram" }
                    ),
                });
            }
            m => return Err(r.invalid(format!("unknown model kind {m} (fastText knows 1 to 3)"))),
        }
        if dim < 1 {
            return Err(r.invalid(format!("dim = {dim}")));
        }
        if version == 11 {
            // fastText: "old supervised models do not use char ngrams".
            maxn = 0;
        }
        let raw = Dictionary::read(&mut r, minn, maxn, bucket, word_ngrams)?;
        let dict = raw.dict;
        if dict.nlabels == 0 {
            return Err(r.invalid("the dictionary has no labels"));
        }
        let dim = dim as usize;
        let quant_input = r.bool("quantized-input flag")?;
        let input = Matrix::read(&mut r, quant_input, dim, "input")?;
        if !quant_input && raw.pruneidx_size >= 0 {
            return Err(r.invalid(
                "a pruned dictionary with a dense input matrix (fastText refuses these: see its issue #332)",
            ));
        }
        let qout = r.bool("quantized-output flag")?;
        let output = Matrix::read(&mut r, quant_input && qout, dim, "output")?;

        // What prediction indexes must exist (fastText asserts or reads out of bounds).
        let nwords = dict.nwords as usize;
        let mut rows_needed = nwords;
        if dict.hashes_ngrams() && raw.pruneidx_size < 0 {
            rows_needed += dict.bucket as usize;
        }
        if let Some(max) = raw.max_pruned_row {
            rows_needed = rows_needed.max(nwords + max as usize + 1);
        }
        if input.rows() < rows_needed || input.cols() != dim {
            return Err(r.invalid(format!(
                "the input matrix has {} rows; {nwords} words and the n-gram buckets need {rows_needed}",
                input.rows()
            )));
        }
        if output.rows() != dict.nlabels as usize {
            return Err(r.invalid(format!(
                "the output matrix has {} rows for {} labels",
                output.rows(),
                dict.nlabels
            )));
        }
        let out = match loss {
            LossKind::HierarchicalSoftmax => {
                Output::Tree(Tree::build(dict.label_counts()).ok_or_else(|| {
                    r.invalid("label counts of 10^15 or more break fastText's Huffman tree")
                })?)
            }
            LossKind::Softmax => Output::Softmax,
            LossKind::OneVsAll | LossKind::NegativeSampling => Output::Sigmoid(SigmoidTable::new()),
        };
        let labels = (0..dict.nlabels as usize)
            .map(|i| String::from_utf8_lossy(dict.label(i)).into_owned())
            .collect();
        let bits = entry_key_bits(dict.size());
        let entry_shift = 32 - bits;
        let mut entry_keys = vec![0u64; 1 << (bits - 6)];
        for i in 0..dict.size() {
            let b = (crate::predict::token_key(dict.entry(i)) >> entry_shift) as usize;
            entry_keys[b / 64] |= 1 << (b % 64);
        }
        Ok(Model {
            dim,
            entry_keys,
            entry_shift,
            dict,
            input,
            output,
            out,
            loss,
            labels,
            quantized: quant_input,
            projected: false,
        })
    }

    /// The labels as the model stores them (`__label__en`, …); a [`Prediction`]'s `label`
    /// indexes this.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The index of `label` (with its `__label__` prefix), if the model has it.
    pub fn label_id(&self, label: &str) -> Option<usize> {
        let id = self
            .dict
            .find(label.as_bytes(), crate::dict::hash(label.as_bytes()))?;
        (id >= self.dict.nwords).then(|| (id - self.dict.nwords) as usize)
    }

    /// The index of the label `__label__<name>`.
    pub fn label_id_unprefixed(&self, name: &str) -> Option<usize> {
        let mut l = Vec::with_capacity(LABEL_PREFIX.len() + name.len());
        l.extend_from_slice(LABEL_PREFIX);
        l.extend_from_slice(name.as_bytes());
        let id = self.dict.find(&l, crate::dict::hash(&l))?;
        (id >= self.dict.nwords).then(|| (id - self.dict.nwords) as usize)
    }

    pub fn loss(&self) -> LossKind {
        self.loss
    }

    /// Size of the hidden vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether the input matrix is product-quantized (a `.ftz`).
    pub fn is_quantized(&self) -> bool {
        self.quantized
    }

    /// The same classifier with its input rows projected onto the output layer: each
    /// input row becomes its dot products with the output matrix's rows (one per label),
    /// and the output layer becomes the identity. Prediction then sums rows of a few
    /// floats instead of `dim` — for a DCLM-shaped classifier (dim 100, 2 labels, 2M
    /// n-gram buckets) 8 bytes per token instead of 400, and 16 MB held instead of 800 MB
    /// — and gives the same scores up to float rounding: the output layer is linear, so
    /// the dot products of the mean row are the mean of the rows' dot products. Not
    /// bit-identical to fastText, which rounds the `dim`-wide sum; the difference in a
    /// probability is of the order of 1e-6. A model with as many labels as `dim` or more
    /// gains nothing and is returned unchanged (see [`is_projected`](Self::is_projected)).
    pub fn project(mut self) -> Model {
        let labels = self.output.rows();
        if labels >= self.dim || self.projected {
            return self;
        }
        self.input = self.input.project(&self.output);
        self.output = Matrix::identity(labels);
        self.dim = labels;
        self.projected = true;
        self
    }

    /// Whether [`project`](Self::project) changed the model.
    pub fn is_projected(&self) -> bool {
        self.projected
    }

    /// A predictor with its own scratch space; keep one per thread.
    pub fn predictor(&self) -> Predictor<'_> {
        Predictor::new(self)
    }

    /// fastText's `predictLine` on `text`: the first line of `text` (up to its first
    /// `'\n'`), the `k` best labels (`usize::MAX`: all) of probability at least
    /// `threshold`, best first. Allocates; use a [`Predictor`] for many texts.
    pub fn predict_line(&self, text: &[u8], k: usize, threshold: f32) -> Vec<Prediction> {
        let mut p = self.predictor();
        p.read_line(text);
        let mut out = Vec::new();
        p.predict(k, threshold, &mut out);
        out
    }
}
