//! A faster encoder for GPT-2-style byte-level BPE tokenizer.json files.
//!
//! It does what the `tokenizers` crate does for exactly this configuration — added tokens
//! split out (leftmost, then longest), GPT-2's pre-tokenization regex, byte-to-unicode
//! mapping, BPE merges by rank (lowest first, leftmost on ties) — without building an
//! `Encoding` (token strings, offsets, masks) per document, and with a per-thread cache of
//! pre-token → ids. [`FastBpe::from_json`] accepts only tokenizer.json files it can encode
//! identically (BPE model without dropout, unk, prefixes, suffixes, byte fallback or
//! ignore_merges; no normalizer; a `ByteLevel` pre-tokenizer with the regex and without
//! prefix space; all 256 byte symbols in the vocabulary; plain added tokens); anything
//! else returns `None` and the stage uses `tokenizers`. The tests check that its ids equal
//! `tokenizers`' on real text.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;

/// GPT-2's pre-tokenization regex, as `tokenizers`' ByteLevel uses it.
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// Pre-tokens longer than this skip the cache (they are rare and would fill it).
const CACHE_MAX_BYTES: usize = 64;
/// The per-thread cache is emptied when it holds this many pre-tokens.
const CACHE_MAX_ENTRIES: usize = 200_000;

/// GPT-2's `bytes_to_unicode`: byte → the char that stands for it in the vocabulary.
fn bytes_to_unicode() -> [char; 256] {
    let mut bs: Vec<u32> = ('!' as u32..='~' as u32)
        .chain('¡' as u32..='¬' as u32)
        .chain('®' as u32..='ÿ' as u32)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut out = ['\0'; 256];
    for (b, c) in bs.iter().zip(&cs) {
        out[*b as usize] = char::from_u32(*c).expect("valid char");
    }
    out
}

pub struct FastBpe {
    /// Which encoder filled a thread's cache (two tokenizers in one process do not mix).
    instance: u64,
    /// Id of each single byte.
    byte_ids: [u32; 256],
    /// (left id, right id) → (merge rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Added tokens (text, id), matched in the text before pre-tokenization.
    added: Vec<(String, u32)>,
    regex: fancy_regex::Regex,
}

/// Pre-token bytes → ids, for one encoder instance.
type PieceCache = (u64, HashMap<Vec<u8>, Vec<u32>>);

thread_local! {
    static CACHE: RefCell<PieceCache> = RefCell::new((0, HashMap::new()));
}

static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn is(v: &Value, key: &str, want: &Value) -> bool {
    v.get(key).unwrap_or(&Value::Null) == want
}

fn falsy(v: &Value, key: &str) -> bool {
    matches!(
        v.get(key),
        None | Some(Value::Null) | Some(Value::Bool(false))
    ) || v.get(key).and_then(Value::as_str) == Some("")
}

impl FastBpe {
    /// The encoder for `json` (a parsed tokenizer.json), when it is a configuration this
    /// encoder reproduces exactly; `None` otherwise.
    pub fn from_json(json: &Value) -> Option<FastBpe> {
        let model = json.get("model")?;
        if model.get("type")?.as_str()? != "BPE" {
            return None;
        }
        for k in [
            "dropout",
            "unk_token",
            "continuing_subword_prefix",
            "end_of_word_suffix",
            "fuse_unk",
            "byte_fallback",
            "ignore_merges",
        ] {
            if !falsy(model, k) {
                return None;
            }
        }
        if !is(json, "normalizer", &Value::Null) {
            return None;
        }
        let pre = json.get("pre_tokenizer")?;
        if pre.get("type")?.as_str()? != "ByteLevel"
            || pre.get("add_prefix_space")?.as_bool()?
            || !pre
                .get("use_regex")
                .and_then(Value::as_bool)
                .unwrap_or(true)
        {
            return None;
        }
        let b2u = bytes_to_unicode();
        let mut u2b: HashMap<char, u8> = HashMap::new();
        for (b, c) in b2u.iter().enumerate() {
            u2b.insert(*c, b as u8);
        }
        let vocab = model.get("vocab")?.as_object()?;
        let mut ids: HashMap<&str, u32> = HashMap::with_capacity(vocab.len());
        for (tok, id) in vocab {
            ids.insert(tok.as_str(), u32::try_from(id.as_u64()?).ok()?);
        }
        let mut byte_ids = [0u32; 256];
        for (b, c) in b2u.iter().enumerate() {
            byte_ids[b] = *ids.get(c.to_string().as_str())?;
        }
        let mut merges = HashMap::new();
        for (rank, m) in model.get("merges")?.as_array()?.iter().enumerate() {
            let (a, b): (String, String) = match m {
                Value::String(s) => {
                    let (a, b) = s.split_once(' ')?;
                    (a.to_string(), b.to_string())
                }
                Value::Array(v) if v.len() == 2 => {
                    (v[0].as_str()?.to_string(), v[1].as_str()?.to_string())
                }
                _ => return None,
            };
            let ia = *ids.get(a.as_str())?;
            let ib = *ids.get(b.as_str())?;
            let new = *ids.get(format!("{a}{b}").as_str())?;
            // As `tokenizers` collects its merge map: a repeated pair keeps the last rank.
            merges.insert((ia, ib), (rank as u32, new));
        }
        let mut added = Vec::new();
        for t in json.get("added_tokens")?.as_array()? {
            for k in ["single_word", "lstrip", "rstrip"] {
                if t.get(k).and_then(Value::as_bool).unwrap_or(false) {
                    return None;
                }
            }
            let content = t.get("content")?.as_str()?;
            if content.is_empty() {
                return None;
            }
            added.push((
                content.to_string(),
                u32::try_from(t.get("id")?.as_u64()?).ok()?,
            ));
        }
        if added.len() > 64 {
            return None;
        }
        Some(FastBpe {
            instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            byte_ids,
            merges,
            added,
            regex: fancy_regex::Regex::new(GPT2_PATTERN).ok()?,
        })
    }

    /// The ids of `text` (no BOS/EOS), as `tokenizers` encodes it without special-token
    /// templates.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let mut out = Vec::with_capacity(text.len() / 3);
        let mut rest = text;
        while !rest.is_empty() {
            // The leftmost added token, the longest at that position.
            let mut hit: Option<(usize, usize, u32)> = None;
            for (t, id) in &self.added {
                if let Some(at) = rest.find(t.as_str()) {
                    let better = match hit {
                        None => true,
                        Some((a, len, _)) => at < a || (at == a && t.len() > len),
                    };
                    if better {
                        hit = Some((at, t.len(), *id));
                    }
                }
            }
            match hit {
                Some((at, len, id)) => {
                    self.encode_plain(&rest[..at], &mut out)?;
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.encode_plain(rest, &mut out)?;
                    rest = "";
                }
            }
        }
        Ok(out)
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) -> Result<(), String> {
        let mut last = 0;
        for m in self.regex.find_iter(text) {
            let m = m.map_err(|e| e.to_string())?;
            if m.start() > last {
                self.encode_piece(&text.as_bytes()[last..m.start()], out);
            }
            self.encode_piece(m.as_str().as_bytes(), out);
            last = m.end();
        }
        if last < text.len() {
            self.encode_piece(&text.as_bytes()[last..], out);
        }
        Ok(())
    }

    fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if piece.is_empty() {
            return;
        }
        if piece.len() > CACHE_MAX_BYTES {
            self.bpe(piece, out);
            return;
        }
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if c.0 != self.instance {
                *c = (self.instance, HashMap::new());
            }
            let c = &mut c.1;
            if let Some(ids) = c.get(piece) {
                out.extend_from_slice(ids);
                return;
            }
            let start = out.len();
            self.bpe(piece, out);
            if c.len() >= CACHE_MAX_ENTRIES {
                c.clear();
            }
            c.insert(piece.to_vec(), out[start..].to_vec());
        });
    }

    /// Merge the bytes of one pre-token: the lowest-ranked adjacent pair first (leftmost
    /// on ties), until no pair has a merge.
    fn bpe(&self, piece: &[u8], out: &mut Vec<u32>) {
        let mut syms: Vec<u32> = piece.iter().map(|&b| self.byte_ids[b as usize]).collect();
        loop {
            let mut best: Option<(u32, usize, u32)> = None;
            for i in 0..syms.len().saturating_sub(1) {
                if let Some(&(rank, new)) = self.merges.get(&(syms[i], syms[i + 1]))
                    && best.is_none_or(|(r, _, _)| rank < r)
                {
                    best = Some((rank, i, new));
                }
            }
            let Some((_, i, new)) = best else {
                break;
            };
            syms[i] = new;
            syms.remove(i + 1);
        }
        out.extend_from_slice(&syms);
    }
}
