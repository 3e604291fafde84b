//! The last stage: documents → token ids → shards that trainers read.
//!
//! [`TokenizeConfig`] / [`Tokenize`]: the `tokenize` stage loads any Hugging Face
//! `tokenizer.json` (the `tokenizers` crate, pure Rust), encodes each input part's
//! documents in parallel (rayon) with an optional BOS and an end-of-document token, and
//! writes a dataset of `id`, `num_tokens`, `tokens` — one task per input part, so a killed
//! run resumes per part. A second phase of one task then assembles the shards: a deterministic
//! shuffle of all documents (Fisher–Yates driven by SplitMix64 from a seed), a validation
//! split by fraction, shards of a target size in tokens, in the Megatron-LM indexed
//! dataset format (`.bin` + `.idx`, [`shards`]) and/or llm.c's `.bin` (256 × int32
//! header), plus `manifest.json` ([`ShardsManifest`]). Token width follows the
//! vocabulary: uint16 up to 65,536 ids, otherwise int32 (Megatron) / uint32 (llm.c).
//!
//! Memory: the assembling task holds 16 bytes per document (token count, shuffled position,
//! shard and offset, 4 bytes each) and never all tokens: it streams the parts and writes
//! each document at its precomputed offset, so the bytes do not depend on the thread
//! count. [`reader`] reads shards back and checks every header, offset and count.

mod config;
pub mod fastbpe;
pub mod reader;
pub mod shards;
mod stage;

pub use config::{
    EOS_CANDIDATES, MAX_SHARD_TOKENS, ShardFormat, Tokenize, TokenizeConfig, load_tokenizer,
};
pub use shards::{ShardsManifest, TokenWidth};
pub use stage::tokens_schema;
/// The `tokenizers` crate, for decoding shards (`primer shards inspect`).
pub use tokenizers;

#[cfg(test)]
mod tests;
