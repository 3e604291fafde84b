//! Shard formats, the deterministic shuffle and the assignment of documents to shards.
//!
//! Megatron-LM indexed dataset, as `megatron/core/datasets/indexed_dataset.py` writes and
//! reads it (`_IndexWriter`, `_IndexReader`): `PREFIX.bin` holds the tokens of every
//! sequence back to back in the dtype; `PREFIX.idx` is
//!
//! ```text
//! b"MMIDIDX\x00\x00"                9 bytes
//! version = 1                       u64 little endian
//! dtype code                        u8  (see MEGATRON_DTYPE_CODES)
//! sequence_count                    u64
//! document_count                    u64 (= documents + 1)
//! sequence_lengths                  sequence_count × int32
//! sequence_pointers                 sequence_count × int64 (byte offsets into .bin)
//! document_indices                  document_count × int64 (0, then the end of each document)
//! ```
//!
//! primer writes one document per sequence, so `document_indices` is `0, 1, …, n`.
//!
//! llm.c (`dev/data/data_common.py` `write_datafile`, `llmc/dataloader.h`): a header of
//! 256 int32 (`[0]` magic, `[1]` version, `[2]` token count, the rest 0) then the tokens:
//! magic 20240520 version 1 with uint16 tokens (GPT-2), magic 20240801 version 7 with
//! uint32 tokens (Llama 3).

use serde::{Deserialize, Serialize};

/// `_INDEX_HEADER` of Megatron-LM's indexed dataset.
pub const MEGATRON_MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";
/// Megatron's `DType` enum: numpy dtype name → code. (No uint32: 4-byte tokens are int32.)
pub const MEGATRON_DTYPE_CODES: [(&str, u8); 8] = [
    ("uint8", 1),
    ("int8", 2),
    ("int16", 3),
    ("int32", 4),
    ("int64", 5),
    ("float64", 6),
    ("float32", 7),
    ("uint16", 8),
];
/// Bytes of the `.idx` header before the arrays: 9 + 8 + 1 + 8 + 8.
pub const MEGATRON_HEADER_BYTES: u64 = 34;
/// llm.c's header: 256 int32.
pub const LLMC_HEADER_INTS: usize = 256;
pub const LLMC_HEADER_BYTES: u64 = (LLMC_HEADER_INTS * 4) as u64;
pub const LLMC_MAGIC_U16: i32 = 20240520;
pub const LLMC_VERSION_U16: i32 = 1;
pub const LLMC_MAGIC_U32: i32 = 20240801;
pub const LLMC_VERSION_U32: i32 = 7;

/// How wide a token is on disk, from the vocabulary size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenWidth {
    /// Every id fits in 16 bits (vocabulary of at most 65,536): Megatron uint16 (code 8),
    /// llm.c magic 20240520 version 1.
    U16,
    /// Megatron int32 (code 4), llm.c uint32 (magic 20240801 version 7).
    U32,
}

impl TokenWidth {
    /// The width that holds ids `0..vocab_size`.
    pub fn for_vocab(vocab_size: usize) -> TokenWidth {
        if vocab_size <= 1 << 16 {
            TokenWidth::U16
        } else {
            TokenWidth::U32
        }
    }
    pub fn bytes(self) -> u64 {
        match self {
            TokenWidth::U16 => 2,
            TokenWidth::U32 => 4,
        }
    }
    /// Megatron's dtype name and code.
    pub fn megatron_dtype(self) -> (&'static str, u8) {
        match self {
            TokenWidth::U16 => ("uint16", 8),
            TokenWidth::U32 => ("int32", 4),
        }
    }
    /// llm.c's dtype name, magic and version.
    pub fn llmc_header(self) -> (&'static str, i32, i32) {
        match self {
            TokenWidth::U16 => ("uint16", LLMC_MAGIC_U16, LLMC_VERSION_U16),
            TokenWidth::U32 => ("uint32", LLMC_MAGIC_U32, LLMC_VERSION_U32),
        }
    }
    /// Append `tokens` little endian in this width.
    pub fn encode_into(self, tokens: &[u32], out: &mut Vec<u8>) {
        match self {
            TokenWidth::U16 => {
                out.reserve(tokens.len() * 2);
                for &t in tokens {
                    out.extend_from_slice(&(t as u16).to_le_bytes());
                }
            }
            TokenWidth::U32 => {
                out.reserve(tokens.len() * 4);
                for &t in tokens {
                    out.extend_from_slice(&t.to_le_bytes());
                }
            }
        }
    }
}

/// The 1024-byte llm.c header for a shard of `tokens` tokens.
pub fn llmc_header(width: TokenWidth, tokens: u64) -> Vec<u8> {
    let (_, magic, version) = width.llmc_header();
    let mut header = [0i32; LLMC_HEADER_INTS];
    header[0] = magic;
    header[1] = version;
    header[2] = i32::try_from(tokens).expect("shard token counts are checked to fit int32");
    header.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The `.idx` file of a Megatron shard whose sequences (one per document) have `lengths`.
pub fn megatron_index(width: TokenWidth, lengths: &[u32]) -> Vec<u8> {
    let n = lengths.len() as u64;
    let mut out = Vec::with_capacity(34 + lengths.len() * 20 + 8);
    out.extend_from_slice(MEGATRON_MAGIC);
    out.extend_from_slice(&1u64.to_le_bytes());
    out.push(width.megatron_dtype().1);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(n + 1).to_le_bytes());
    for &l in lengths {
        out.extend_from_slice(&(l as i32).to_le_bytes());
    }
    let mut ptr = 0i64;
    for &l in lengths {
        out.extend_from_slice(&ptr.to_le_bytes());
        ptr += l as i64 * width.bytes() as i64;
    }
    for d in 0..=n as i64 {
        out.extend_from_slice(&d.to_le_bytes());
    }
    out
}

/// SplitMix64 (Steele, Lea, Flood 2014): the shuffle's random numbers.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (Lemire's multiply-shift with rejection), `n > 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            let low = m as u64;
            if low >= n || low >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }
}

/// `0..n` in the order documents go to shards: Fisher–Yates (from the last position down)
/// driven by SplitMix64 from `seed`, or the identity without `shuffle`.
pub fn document_order(n: u32, shuffle: bool, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n).collect();
    if shuffle {
        let mut rng = SplitMix64::new(seed);
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
    }
    order
}

/// How many of `n` documents go to the validation split.
pub fn validation_count(n: u64, fraction: f64) -> u64 {
    if fraction <= 0.0 || n == 0 {
        return 0;
    }
    let k = (fraction * n as f64).round() as u64;
    if n >= 2 { k.clamp(1, n - 1) } else { k.min(n) }
}

/// One shard of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// `train-00000`, `val-00000`, …: the file name without extension.
    pub name: String,
    /// `train` or `val`.
    pub split: String,
    pub documents: u64,
    pub tokens: u64,
}

/// Where every document goes: shard and token offset in it, by document index.
pub struct ShardPlan {
    pub shards: Vec<ShardInfo>,
    /// Shard of each document (index into `shards`).
    pub shard_of: Vec<u32>,
    /// Token offset of each document inside its shard.
    pub offset_of: Vec<u32>,
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub String);

impl ShardPlan {
    /// Walk `order`: the first `n_val` documents fill validation shards, the rest training
    /// shards; a shard is closed once it holds at least `shard_tokens` tokens. Documents
    /// are never split. `lens[d]` is document `d`'s token count.
    pub fn build(
        order: &[u32],
        lens: &[u32],
        n_val: u64,
        shard_tokens: u64,
    ) -> Result<ShardPlan, PlanError> {
        let mut shards: Vec<ShardInfo> = Vec::new();
        let mut shard_of = vec![u32::MAX; lens.len()];
        let mut offset_of = vec![0u32; lens.len()];
        let mut counters = [0usize; 2];
        let mut open: Option<usize> = None;
        for (k, &d) in order.iter().enumerate() {
            let split = if (k as u64) < n_val { 1 } else { 0 };
            let name = ["train", "val"][split];
            let cur = match open {
                Some(s) if shards[s].split == name && shards[s].tokens < shard_tokens => s,
                _ => {
                    shards.push(ShardInfo {
                        name: format!("{name}-{:05}", counters[split]),
                        split: name.to_string(),
                        documents: 0,
                        tokens: 0,
                    });
                    counters[split] += 1;
                    shards.len() - 1
                }
            };
            open = Some(cur);
            let s = &mut shards[cur];
            let len = lens[d as usize] as u64;
            if s.tokens + len > i32::MAX as u64 {
                return Err(PlanError(format!(
                    "shard {} would hold {} tokens, more than llm.c's int32 header and \
                     Megatron's offsets allow: lower shard_tokens",
                    s.name,
                    s.tokens + len
                )));
            }
            shard_of[d as usize] = cur as u32;
            offset_of[d as usize] = s.tokens as u32;
            s.documents += 1;
            s.tokens += len;
        }
        Ok(ShardPlan {
            shards,
            shard_of,
            offset_of,
        })
    }
}

/// `manifest.json` beside the shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardsManifest {
    /// `primer-shards/1`.
    pub format: String,
    /// The stage that wrote the shards.
    pub stage: String,
    pub tokenizer: TokenizerInfo,
    /// Token width: `uint16` or `uint32` (Megatron files say `int32` for the latter).
    pub dtype: String,
    pub formats: Vec<FormatInfo>,
    pub shuffle: bool,
    pub seed: u64,
    pub validation_fraction: f64,
    pub shard_tokens: u64,
    /// Documents and tokens over all shards.
    pub documents: u64,
    pub tokens: u64,
    /// Per split (`train`, `val`): documents, tokens, shards.
    pub splits: std::collections::BTreeMap<String, SplitTotals>,
    pub shards: Vec<ShardInfo>,
    /// The datasets the shards were made from: stage id, fingerprint, content id, rows.
    pub sources: Vec<SourceInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizerInfo {
    /// The tokenizer.json, as an absolute path (`primer shards inspect` decodes with it).
    pub path: String,
    /// xxh3-128 of its bytes.
    pub xxh3: String,
    pub vocab_size: u64,
    pub eos_id: Option<u32>,
    pub eos_token: Option<String>,
    pub bos_id: Option<u32>,
    pub bos_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormatInfo {
    /// `megatron` or `llmc`.
    pub name: String,
    /// Subdirectory of the shards.
    pub dir: String,
    /// The dtype the format's reader sees (`uint16`, `int32`, `uint32`).
    pub dtype: String,
    /// Megatron: the dtype code in the `.idx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype_code: Option<u8>,
    /// llm.c: header magic and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub magic: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitTotals {
    pub documents: u64,
    pub tokens: u64,
    pub shards: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub stage: String,
    pub fingerprint: String,
    pub content_id: String,
    pub rows: u64,
}

impl ShardsManifest {
    pub const FORMAT: &'static str = "primer-shards/1";
    pub const FILE: &'static str = "manifest.json";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megatron_index_layout_matches_indexed_dataset_py() {
        // Two documents of 3 and 1 uint16 tokens.
        let idx = megatron_index(TokenWidth::U16, &[3, 1]);
        let mut want = b"MMIDIDX\x00\x00".to_vec();
        want.extend_from_slice(&1u64.to_le_bytes());
        want.push(8);
        want.extend_from_slice(&2u64.to_le_bytes());
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(&3i32.to_le_bytes());
        want.extend_from_slice(&1i32.to_le_bytes());
        want.extend_from_slice(&0i64.to_le_bytes());
        want.extend_from_slice(&6i64.to_le_bytes());
        for d in 0..3i64 {
            want.extend_from_slice(&d.to_le_bytes());
        }
        assert_eq!(idx, want);
        assert_eq!(idx.len(), 34 + 2 * 4 + 2 * 8 + 3 * 8);
        assert_eq!(megatron_index(TokenWidth::U32, &[1])[17], 4, "int32 code");
    }

    #[test]
    fn llmc_header_is_256_ints() {
        let h = llmc_header(TokenWidth::U16, 1234);
        assert_eq!(h.len(), 1024);
        assert_eq!(&h[0..4], &20240520i32.to_le_bytes());
        assert_eq!(&h[4..8], &1i32.to_le_bytes());
        assert_eq!(&h[8..12], &1234i32.to_le_bytes());
        assert!(h[12..].iter().all(|&b| b == 0));
        let h = llmc_header(TokenWidth::U32, 5);
        assert_eq!(&h[0..4], &20240801i32.to_le_bytes());
        assert_eq!(&h[4..8], &7i32.to_le_bytes());
    }

    #[test]
    fn widths_follow_the_vocabulary() {
        assert_eq!(TokenWidth::for_vocab(50257), TokenWidth::U16);
        assert_eq!(TokenWidth::for_vocab(65536), TokenWidth::U16);
        assert_eq!(TokenWidth::for_vocab(65537), TokenWidth::U32);
        assert_eq!(TokenWidth::for_vocab(151669), TokenWidth::U32);
        let mut b = Vec::new();
        TokenWidth::U16.encode_into(&[1, 65535], &mut b);
        assert_eq!(b, [1, 0, 255, 255]);
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The first output for seed 0 of Vigna's splitmix64.c.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn order_is_a_seeded_permutation() {
        let a = document_order(1000, true, 7);
        let b = document_order(1000, true, 7);
        let c = document_order(1000, true, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
        assert_eq!(document_order(3, false, 7), [0, 1, 2]);
    }

    #[test]
    fn validation_counts() {
        assert_eq!(validation_count(100, 0.0), 0);
        assert_eq!(validation_count(100, 0.1), 10);
        assert_eq!(validation_count(100, 0.001), 1);
        assert_eq!(validation_count(2, 0.5), 1);
        assert_eq!(validation_count(1, 0.5), 1);
        assert_eq!(validation_count(1, 0.4), 0);
        assert_eq!(validation_count(0, 0.5), 0);
    }

    #[test]
    fn shards_close_at_the_target() {
        let lens = [5, 5, 5, 1, 10];
        let order = [4, 3, 2, 1, 0];
        let p = ShardPlan::build(&order, &lens, 1, 6).unwrap();
        let names: Vec<(&str, u64, u64)> = p
            .shards
            .iter()
            .map(|s| (s.name.as_str(), s.documents, s.tokens))
            .collect();
        assert_eq!(
            names,
            [
                ("val-00000", 1, 10),
                ("train-00000", 2, 6),
                ("train-00001", 2, 10)
            ]
        );
        assert_eq!(p.shard_of, [2, 2, 1, 1, 0]);
        assert_eq!(p.offset_of, [5, 0, 1, 0, 0]);
    }
}
