use std::path::PathBuf;

use primer_core::{BuildContext, Error, Result};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::shards::TokenWidth;

/// Settings of the `tokenize` stage: documents → token ids → shuffled shards that trainers
/// read (Megatron-LM `.bin`/`.idx`, llm.c `.bin`), with a `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizeConfig {
    /// A Hugging Face `tokenizer.json` (any model: BPE, WordPiece, Unigram, …), relative to
    /// the pipeline file's directory. Required.
    pub tokenizer: String,
    /// The directory the shards go to, relative to the pipeline file's directory: it gets
    /// `manifest.json`, `megatron/{train,val}-NNNNN.{bin,idx}` and/or
    /// `llmc/{train,val}-NNNNN.bin`. Shard files there that this run does not write are
    /// removed. Required.
    pub output: String,
    /// The shard formats to write: `megatron` (Megatron-LM indexed dataset, one document
    /// per sequence) and/or `llmc` (llm.c / nanoGPT: 256 × int32 header, then the tokens).
    /// Default `["megatron", "llmc"]`.
    #[serde(default = "default_formats")]
    pub formats: Vec<ShardFormat>,
    /// The input column holding the text. Default `text`.
    #[serde(default = "default_text_column")]
    pub text_column: String,
    /// The token appended after every document: `auto` (the tokenizer's end-of-text token,
    /// the first of `<|endoftext|>`, `<|end_of_text|>`, `</s>`, `<eos>` it has), `none`, or
    /// a token's text such as `<|im_end|>`. Default `auto`.
    #[serde(default = "default_eos")]
    pub eos: String,
    /// The end-of-document token by id, instead of `eos` (leave `eos` at `auto` then).
    /// Default none.
    #[serde(default)]
    pub eos_id: Option<u32>,
    /// A token put before every document: `none` or a token's text (`<|begin_of_text|>`).
    /// Default `none`.
    #[serde(default = "default_bos")]
    pub bos: String,
    /// The beginning-of-document token by id, instead of `bos` (leave `bos` at `none`
    /// then). Default none.
    #[serde(default)]
    pub bos_id: Option<u32>,
    /// Target shard size in tokens: documents are added to a shard, whole and in shuffled
    /// order, until it holds at least this many tokens. From 1 to 2,000,000,000 (llm.c's
    /// header stores the count as int32). Default 100,000,000 (llm.c's FineWeb shards).
    #[serde(default = "default_shard_tokens")]
    pub shard_tokens: u64,
    /// The fraction of documents (after the shuffle, the first ones) that go to the
    /// validation shards `val-NNNNN`, from 0 to 0.5. When above 0 and there are at least
    /// two documents, at least one. Default 0 (no validation split).
    #[serde(default)]
    pub validation_fraction: f64,
    /// Shuffle the documents before splitting and sharding (Fisher–Yates driven by
    /// SplitMix64 from `seed`). Same input and seed give byte-identical shards. Default
    /// true.
    #[serde(default = "default_true")]
    pub shuffle: bool,
    /// The shuffle's seed. Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Encode GPT-2-style byte-level BPE tokenizers (GPT-2, r50k-like files) with primer's
    /// own encoder, which gives the same ids as `tokenizers` (tested on real text) several
    /// times faster; other tokenizers always use `tokenizers`. Default true.
    #[serde(default = "default_true")]
    pub fast_bpe: bool,
}

/// A shard file format.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ShardFormat {
    /// Megatron-LM's `MMIDIDX` indexed dataset: `PREFIX.bin` (the tokens) + `PREFIX.idx`.
    Megatron,
    /// llm.c's `.bin`: 256 × int32 header (magic, version, token count), then the tokens.
    Llmc,
}

impl ShardFormat {
    pub fn dir_name(self) -> &'static str {
        match self {
            ShardFormat::Megatron => "megatron",
            ShardFormat::Llmc => "llmc",
        }
    }
}

fn default_formats() -> Vec<ShardFormat> {
    vec![ShardFormat::Megatron, ShardFormat::Llmc]
}
fn default_text_column() -> String {
    "text".into()
}
fn default_eos() -> String {
    "auto".into()
}
fn default_bos() -> String {
    "none".into()
}
fn default_shard_tokens() -> u64 {
    100_000_000
}
fn default_true() -> bool {
    true
}

/// Largest `shard_tokens`: llm.c stores a shard's token count as int32, and a shard may
/// exceed the target by one document.
pub const MAX_SHARD_TOKENS: u64 = 2_000_000_000;

/// End-of-text tokens `eos = "auto"` looks for, in order.
pub const EOS_CANDIDATES: [&str; 4] = ["<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"];

/// The `tokenize` stage, built: the tokenizer loaded and the settings checked.
pub struct Tokenize {
    pub(crate) config: TokenizeConfig,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) tokenizer_path: PathBuf,
    /// xxh3-128 of the tokenizer file's bytes.
    pub(crate) tokenizer_hash: String,
    pub(crate) output: PathBuf,
    pub(crate) vocab_size: usize,
    pub(crate) eos: Option<(u32, String)>,
    pub(crate) bos: Option<(u32, String)>,
    pub(crate) width: TokenWidth,
    pub(crate) formats: Vec<ShardFormat>,
    /// primer's byte-level BPE encoder, when the tokenizer is one it reproduces.
    pub(crate) fast: Option<crate::fastbpe::FastBpe>,
}

/// Load a `tokenizer.json`, with messages that say what is wrong with the file.
pub fn load_tokenizer(path: &std::path::Path) -> Result<(Tokenizer, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::input(format!("tokenizer: {} does not exist", path.display()))
        } else {
            Error::io(path, e)
        }
    })?;
    let mut tok = Tokenizer::from_bytes(&bytes).map_err(|e| {
        Error::input(format!(
            "tokenizer: {} is not a Hugging Face tokenizer.json: {e}",
            path.display()
        ))
    })?;
    // Documents are encoded whole, as they are: no truncation, no padding.
    tok.with_truncation(None)
        .map_err(|e| Error::input(format!("tokenizer: {}: {e}", path.display())))?;
    tok.with_padding(None);
    Ok((tok, bytes))
}

fn special_token(
    tok: &Tokenizer,
    what: &str,
    text: &str,
    id: Option<u32>,
    auto: &[&str],
) -> Result<Option<(u32, String)>> {
    let vocab = tok.get_vocab_size(true);
    if let Some(id) = id {
        if !(text == "auto" || text == "none" && what == "bos") {
            return Err(Error::input(format!(
                "{what}_id and {what} = \"{text}\" are both set: give one of them"
            )));
        }
        return match tok.id_to_token(id) {
            Some(t) => Ok(Some((id, t))),
            None => Err(Error::input(format!(
                "{what}_id {id} is not a token of this tokenizer (ids 0 to {})",
                vocab.saturating_sub(1)
            ))),
        };
    }
    match text {
        "none" => Ok(None),
        "auto" => auto
            .iter()
            .find_map(|t| tok.token_to_id(t).map(|id| (id, t.to_string())))
            .map(Some)
            .ok_or_else(|| {
                Error::input(format!(
                    "{what} = \"auto\": the tokenizer has none of {}; name its end-of-text token, give {what}_id, or write {what} = \"none\"",
                    auto.iter()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }),
        t => match tok.token_to_id(t) {
            Some(id) => Ok(Some((id, t.to_string()))),
            None => Err(Error::input(format!(
                "{what} = \"{t}\": the tokenizer has no such token (write the token's text exactly, `auto`, or `none`)"
            ))),
        },
    }
}

impl TokenizeConfig {
    pub fn build(&self, ctx: &BuildContext) -> Result<Tokenize> {
        if self.formats.is_empty() {
            return Err(Error::input(
                "formats is empty: name `megatron`, `llmc` or both",
            ));
        }
        if self.shard_tokens == 0 || self.shard_tokens > MAX_SHARD_TOKENS {
            return Err(Error::input(format!(
                "shard_tokens = {}: must be from 1 to {MAX_SHARD_TOKENS}",
                self.shard_tokens
            )));
        }
        if !(0.0..=0.5).contains(&self.validation_fraction) {
            return Err(Error::input(format!(
                "validation_fraction = {}: must be from 0 to 0.5",
                self.validation_fraction
            )));
        }
        if self.output.trim().is_empty() {
            return Err(Error::input("output is empty: name a directory"));
        }
        let tokenizer_path = ctx.resolve(&self.tokenizer);
        let (tokenizer, bytes) = load_tokenizer(&tokenizer_path)?;
        // Ids run from 0 to the largest one (the count can be lower when ids have gaps).
        let vocab_size = tokenizer
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |m| *m as usize + 1)
            .max(tokenizer.get_vocab_size(true));
        let eos = if self.eos == "auto" && self.eos_id.is_none() {
            special_token(&tokenizer, "eos", "auto", None, &EOS_CANDIDATES)?
        } else {
            special_token(&tokenizer, "eos", &self.eos, self.eos_id, &EOS_CANDIDATES)?
        };
        if self.bos == "auto" {
            return Err(Error::input(
                "bos = \"auto\" is not supported: name the token, give bos_id, or write bos = \"none\"",
            ));
        }
        let bos = special_token(&tokenizer, "bos", &self.bos, self.bos_id, &[])?;
        let fast = if self.fast_bpe {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|j| crate::fastbpe::FastBpe::from_json(&j))
        } else {
            None
        };
        let mut formats = self.formats.clone();
        formats.sort();
        formats.dedup();
        Ok(Tokenize {
            config: self.clone(),
            tokenizer_hash: primer_core::hash_hex(&bytes),
            tokenizer,
            tokenizer_path,
            output: ctx.resolve(&self.output),
            vocab_size,
            eos,
            bos,
            width: TokenWidth::for_vocab(vocab_size),
            formats,
            fast,
        })
    }
}
