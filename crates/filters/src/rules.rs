//! The heuristic filters, each a settings struct whose defaults are the published values and
//! whose `check` follows datatrove 0.10.1's `filter` rule by rule (same order, same
//! reasons, same arithmetic). A threshold of 0 disables its rule, as `None`/0 does in
//! datatrove.

use std::collections::HashSet;
use std::sync::LazyLock;

use primer_text::hash::PassBuild as Fast;
use primer_text::swar;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ngrams::NGrams;
use crate::words::{
    count_sentences, is_datatrove_punct, is_terminal_punct, min_word_count, py_isalpha, py_len,
    py_lines, py_split, py_strip, split_words,
};

/// What a filter decided about one document.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Keep,
    /// Keep the document with this text instead (C4 removes lines).
    KeepText(String),
    /// Drop it; the rule that did, as datatrove names it.
    Drop(&'static str),
}

fn words_of(text: &str) -> Vec<&str> {
    let mut v = Vec::with_capacity(text.len() / 4);
    split_words(text, &mut v);
    v
}

/// The words of `text` from `cache`, split into it on first use (filters of a chain share
/// one split).
pub(crate) fn cached_words<'a, 'c>(
    text: &'a str,
    cache: &'c mut Option<Vec<&'a str>>,
) -> &'c [&'a str] {
    cache.get_or_insert_with(|| words_of(text))
}

/// Gopher quality rules (Rae et al. 2021, table A1; datatrove `GopherQualityFilter`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GopherQualityConfig {
    /// Drop documents with fewer words (words with at least one non-punctuation
    /// character). Default 50; 0 disables.
    #[serde(default = "d_min_doc_words")]
    pub min_doc_words: u64,
    /// Drop documents with more words. Default 100000; 0 disables.
    #[serde(default = "d_max_doc_words")]
    pub max_doc_words: u64,
    /// Drop documents whose mean word length is below this. Default 3; 0 disables.
    #[serde(default = "d_min_avg_word_length")]
    pub min_avg_word_length: f64,
    /// Drop documents whose mean word length is above this. Default 10; 0 disables.
    #[serde(default = "d_max_avg_word_length")]
    pub max_avg_word_length: f64,
    /// Drop documents with more `#` per word, or more ellipses (`...`, `…`) per word, than
    /// this. Default 0.1; 0 disables.
    #[serde(default = "d_max_symbol_word_ratio")]
    pub max_symbol_word_ratio: f64,
    /// Drop documents where more than this fraction of lines start with a bullet (`•`, `-`).
    /// Default 0.9; 0 disables.
    #[serde(default = "d_max_bullet_lines_ratio")]
    pub max_bullet_lines_ratio: f64,
    /// Drop documents where more than this fraction of lines end with an ellipsis.
    /// Default 0.3; 0 disables.
    #[serde(default = "d_max_ellipsis_lines_ratio")]
    pub max_ellipsis_lines_ratio: f64,
    /// Drop documents where fewer than this fraction of words (all tokens, punctuation
    /// included, as datatrove counts them) contain a letter. Default 0.8; 0 disables.
    #[serde(default = "d_max_non_alpha_words_ratio")]
    pub max_non_alpha_words_ratio: f64,
    /// Drop documents containing fewer distinct stop words. Default 2; 0 disables.
    #[serde(default = "d_min_stop_words")]
    pub min_stop_words: u64,
    /// The stop words (case-sensitive). Default `["the", "be", "to", "of", "and", "that",
    /// "have", "with"]`.
    #[serde(default = "d_stop_words")]
    pub stop_words: Vec<String>,
}

fn d_min_doc_words() -> u64 {
    50
}
fn d_max_doc_words() -> u64 {
    100_000
}
fn d_min_avg_word_length() -> f64 {
    3.0
}
fn d_max_avg_word_length() -> f64 {
    10.0
}
fn d_max_symbol_word_ratio() -> f64 {
    0.1
}
fn d_max_bullet_lines_ratio() -> f64 {
    0.9
}
fn d_max_ellipsis_lines_ratio() -> f64 {
    0.3
}
fn d_max_non_alpha_words_ratio() -> f64 {
    0.8
}
fn d_min_stop_words() -> u64 {
    2
}
fn d_stop_words() -> Vec<String> {
    ["the", "be", "to", "of", "and", "that", "have", "with"]
        .map(String::from)
        .to_vec()
}

impl Default for GopherQualityConfig {
    fn default() -> Self {
        GopherQualityConfig {
            min_doc_words: d_min_doc_words(),
            max_doc_words: d_max_doc_words(),
            min_avg_word_length: d_min_avg_word_length(),
            max_avg_word_length: d_max_avg_word_length(),
            max_symbol_word_ratio: d_max_symbol_word_ratio(),
            max_bullet_lines_ratio: d_max_bullet_lines_ratio(),
            max_ellipsis_lines_ratio: d_max_ellipsis_lines_ratio(),
            max_non_alpha_words_ratio: d_max_non_alpha_words_ratio(),
            min_stop_words: d_min_stop_words(),
            stop_words: d_stop_words(),
        }
    }
}

/// Python's `str.count(sub)` (non-overlapping).
fn count_sub(text: &str, sub: &str) -> usize {
    memchr::memmem::find_iter(text.as_bytes(), sub.as_bytes()).count()
}

impl GopherQualityConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("max_symbol_word_ratio", self.max_symbol_word_ratio),
            ("max_bullet_lines_ratio", self.max_bullet_lines_ratio),
            ("max_ellipsis_lines_ratio", self.max_ellipsis_lines_ratio),
            ("max_non_alpha_words_ratio", self.max_non_alpha_words_ratio),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!(
                    "gopher_quality.{name} = {v}: must be between 0 and 1"
                ));
            }
        }
        if self.min_avg_word_length < 0.0 || self.max_avg_word_length < 0.0 {
            return Err("gopher_quality: word lengths must be ≥ 0".into());
        }
        Ok(())
    }

    pub fn check(&self, text: &str) -> Decision {
        let words = words_of(text);
        self.check_words(text, &words)
    }

    pub(crate) fn check_words(&self, text: &str, words: &[&str]) -> Decision {
        let n_words = words.len();
        let s = WordStats::of(text, words, &self.stop_words, self.min_stop_words);
        let (n_non_symbol, len_sum) = (s.non_symbol, s.non_symbol_chars);
        if self.min_doc_words > 0 && (n_non_symbol as u64) < self.min_doc_words {
            return Decision::Drop("gopher_short_doc");
        }
        if self.max_doc_words > 0 && (n_non_symbol as u64) > self.max_doc_words {
            return Decision::Drop("gopher_long_doc");
        }
        if n_non_symbol > 0 {
            let avg = len_sum as f64 / n_non_symbol as f64;
            if self.min_avg_word_length > 0.0 && avg < self.min_avg_word_length {
                return Decision::Drop("gopher_below_avg_threshold");
            }
            if self.max_avg_word_length > 0.0 && avg > self.max_avg_word_length {
                return Decision::Drop("gopher_above_avg_threshold");
            }
        }
        if n_words == 0 {
            // datatrove divides by zero here; only reachable with min_doc_words disabled.
            return Decision::Drop("gopher_short_doc");
        }
        let nw = n_words as f64;
        let ellipses = count_sub(text, "...") + count_sub(text, "…");
        if self.max_symbol_word_ratio > 0.0 {
            if count_sub(text, "#") as f64 / nw > self.max_symbol_word_ratio {
                return Decision::Drop("gopher_too_many_hashes");
            }
            if ellipses as f64 / nw > self.max_symbol_word_ratio {
                return Decision::Drop("gopher_too_many_ellipsis");
            }
        }
        // The line rules, from bounds when they decide: each bullet line holds a `-` or `•`,
        // each line ending in an ellipsis one of the ellipses counted above (its dots are
        // a run of their own), and each `\n` ends a line, so the ratios are at most these.
        let lines_at_least = memchr::memchr_iter(b'\n', text.as_bytes()).count().max(1) as f64;
        let bullets_at_most =
            || (memchr::memchr_iter(b'-', text.as_bytes()).count() + count_sub(text, "•")) as f64;
        let bounded = (self.max_bullet_lines_ratio <= 0.0
            || bullets_at_most() / lines_at_least <= self.max_bullet_lines_ratio)
            && (self.max_ellipsis_lines_ratio <= 0.0
                || ellipses as f64 / lines_at_least <= self.max_ellipsis_lines_ratio);
        if !bounded {
            // One pass over the lines for both line rules.
            let (mut n_lines, mut bullets, mut ellipsis) = (0usize, 0usize, 0usize);
            for l in py_lines(text) {
                n_lines += 1;
                let s = l.trim_start_matches(crate::words::py_isspace);
                bullets += usize::from(s.starts_with('•') || s.starts_with('-'));
                let s = l.trim_end_matches(crate::words::py_isspace);
                ellipsis += usize::from(s.ends_with("...") || s.ends_with('…'));
            }
            let n_lines = n_lines.max(1) as f64;
            if self.max_bullet_lines_ratio > 0.0
                && bullets as f64 / n_lines > self.max_bullet_lines_ratio
            {
                return Decision::Drop("gopher_too_many_bullets");
            }
            if self.max_ellipsis_lines_ratio > 0.0
                && ellipsis as f64 / n_lines > self.max_ellipsis_lines_ratio
            {
                return Decision::Drop("gopher_too_many_end_ellipsis");
            }
        }
        if self.max_non_alpha_words_ratio > 0.0
            && (s.alpha as f64 / nw) < self.max_non_alpha_words_ratio
        {
            return Decision::Drop("gopher_below_alpha_threshold");
        }
        if self.min_stop_words > 0 && (s.stop_words as u64) < self.min_stop_words {
            return Decision::Drop("gopher_enough_stop_words");
        }
        Decision::Keep
    }
}

/// What Gopher quality counts over a document's words, in one pass.
struct WordStats {
    /// Words with a character outside datatrove's punctuation, and their characters.
    non_symbol: usize,
    non_symbol_chars: usize,
    /// Words with a letter (Python's `isalpha`).
    alpha: usize,
    /// Distinct stop words among the words, counted up to the number the rule needs.
    stop_words: usize,
}

/// A word of 1 to 7 bytes as a number (its bytes, then its length in the last byte): equal
/// numbers, equal words.
fn short_key(w: &str) -> Option<u64> {
    let b = w.as_bytes();
    if b.is_empty() || b.len() > 7 {
        return None;
    }
    let mut k = [0u8; 8];
    k[..b.len()].copy_from_slice(b);
    k[7] = b.len() as u8;
    Some(u64::from_le_bytes(k))
}

/// Bits of [`BYTE_CLASS`]: ASCII outside datatrove's punctuation, ASCII letter, not ASCII.
const NON_PUNCT: u8 = 1;
const ALPHA: u8 = 2;
const NON_ASCII: u8 = 4;

static BYTE_CLASS: LazyLock<[u8; 256]> = LazyLock::new(|| {
    std::array::from_fn(|b| match b as u8 {
        b @ 0..=127 => {
            let c = b as char;
            (if is_datatrove_punct(c) { 0 } else { NON_PUNCT })
                | (if c.is_ascii_alphabetic() { ALPHA } else { 0 })
        }
        _ => NON_ASCII,
    })
});

/// For the first `len` (1 to 8) bytes of `x` (little-endian), when all are ASCII: whether one
/// is outside datatrove's punctuation (a letter, a digit, a tab, a newline or a space) and
/// whether one is a letter; [`BYTE_CLASS`] eight bytes at a time.
#[inline(always)]
fn ascii_classes(x: u64, len: usize) -> Option<(bool, bool)> {
    let valid = swar::first_bytes(len);
    if x & valid != 0 {
        return None;
    }
    let y = x & !swar::HIGH;
    let letters = swar::in_range(y | swar::splat(0x20), b'a', b'z');
    let digits = swar::in_range(y, b'0', b'9');
    let space = swar::in_range(y, b'\t', b'\n') | swar::in_range(y, b' ', b' ');
    Some((
        (letters | digits | space) & valid != 0,
        letters & valid != 0,
    ))
}

impl WordStats {
    /// The counts over `words` (slices of `text`); stop words are looked for until `enough`
    /// distinct ones are found (the rule only compares their number with `min_stop_words`).
    fn of(text: &str, words: &[&str], stop_words: &[String], enough: u64) -> Self {
        let mut s = WordStats {
            non_symbol: 0,
            non_symbol_chars: 0,
            alpha: 0,
            stop_words: 0,
        };
        // A stop word is found once however often it occurs; it is known by its first
        // index in `stop_words` (a list may repeat a word). Words of up to 7 bytes are
        // compared as numbers; first bytes and lengths rule out most words before that.
        let mut first_bytes = [false; 256];
        let mut max_len = 0;
        for w in stop_words {
            if let Some(&b) = w.as_bytes().first() {
                first_bytes[b as usize] = true;
            }
            max_len = max_len.max(w.len());
        }
        let short: Vec<Option<u64>> = stop_words.iter().map(|w| short_key(w)).collect();
        let mut found: Vec<bool> = vec![false; stop_words.len()];
        let enough = usize::try_from(enough).unwrap_or(usize::MAX);
        let class = &*BYTE_CLASS;
        let text = text.as_bytes();
        for (k, w) in words.iter().enumerate() {
            s.count(text, w, class);
            if s.stop_words >= enough {
                // Enough stop words: the other words only need the counts.
                for w in &words[k + 1..] {
                    s.count(text, w, class);
                }
                break;
            }
            if w.len() <= max_len
                && w.as_bytes()
                    .first()
                    .is_some_and(|&b| first_bytes[b as usize])
                && let Some(i) = match short_key(w) {
                    Some(k) => short.iter().position(|&s| s == Some(k)),
                    None => stop_words.iter().position(|sw| sw == w),
                }
                && !found[i]
            {
                found[i] = true;
                s.stop_words += 1;
            }
        }
        s
    }

    /// Counts word `w`, a slice of `text` (all but the stop words); `class` is
    /// [`BYTE_CLASS`].
    #[inline(always)]
    fn count(&mut self, text: &[u8], w: &str, class: &[u8; 256]) {
        let at = (w.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
        let (non_symbol, alpha, chars) = if w.len() <= 8
            && let Some(x) = swar::load(text, at)
            && let Some((non_symbol, alpha)) = ascii_classes(x, w.len())
        {
            // Words of up to eight bytes (most) from one load of the text, without a loop.
            (non_symbol, alpha, w.len())
        } else {
            // One pass over the bytes; the characters only for non-ASCII words.
            let bits = w.bytes().fold(0, |acc, b| acc | class[b as usize]);
            if bits & NON_ASCII == 0 {
                (bits & NON_PUNCT != 0, bits & ALPHA != 0, w.len())
            } else {
                (
                    w.chars().any(|c| !is_datatrove_punct(c)),
                    w.chars().any(py_isalpha),
                    py_len(w),
                )
            }
        };
        if non_symbol {
            self.non_symbol += 1;
            self.non_symbol_chars += chars;
        }
        self.alpha += usize::from(alpha);
    }
}

/// Gopher repetition rules (Rae et al. 2021, table A1; datatrove `GopherRepetitionFilter`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GopherRepetitionConfig {
    /// Drop documents where more than this fraction of lines are duplicates of an earlier
    /// line. Default 0.3; 0 disables.
    #[serde(default = "d_03")]
    pub dup_line_frac: f64,
    /// Drop documents where more than this fraction of paragraphs (split on two or more
    /// newlines) are duplicates. Default 0.3; 0 disables.
    #[serde(default = "d_03")]
    pub dup_para_frac: f64,
    /// Drop documents where duplicate lines hold more than this fraction of the characters.
    /// Default 0.2; 0 disables.
    #[serde(default = "d_02")]
    pub dup_line_char_frac: f64,
    /// Drop documents where duplicate paragraphs hold more than this fraction of the
    /// characters. Default 0.2; 0 disables.
    #[serde(default = "d_02")]
    pub dup_para_char_frac: f64,
    /// `[n, fraction]` pairs: drop documents where the most frequent word n-gram covers more
    /// than `fraction` of the characters. Default `[[2, 0.2], [3, 0.18], [4, 0.16]]`.
    #[serde(default = "d_top_n_grams")]
    pub top_n_grams: Vec<(usize, f64)>,
    /// `[n, fraction]` pairs: drop documents where repeated word n-grams cover more than
    /// `fraction` of the characters. Default `[[5, 0.15], [6, 0.14], [7, 0.13], [8, 0.12],
    /// [9, 0.11], [10, 0.1]]`.
    #[serde(default = "d_dup_n_grams")]
    pub dup_n_grams: Vec<(usize, f64)>,
}

fn d_03() -> f64 {
    0.3
}
fn d_02() -> f64 {
    0.2
}
fn d_top_n_grams() -> Vec<(usize, f64)> {
    vec![(2, 0.2), (3, 0.18), (4, 0.16)]
}
fn d_dup_n_grams() -> Vec<(usize, f64)> {
    vec![
        (5, 0.15),
        (6, 0.14),
        (7, 0.13),
        (8, 0.12),
        (9, 0.11),
        (10, 0.10),
    ]
}

impl Default for GopherRepetitionConfig {
    fn default() -> Self {
        GopherRepetitionConfig {
            dup_line_frac: d_03(),
            dup_para_frac: d_03(),
            dup_line_char_frac: d_02(),
            dup_para_char_frac: d_02(),
            top_n_grams: d_top_n_grams(),
            dup_n_grams: d_dup_n_grams(),
        }
    }
}

/// datatrove's `find_duplicates`: (duplicate elements, their characters).
fn find_duplicates<'a>(items: impl Iterator<Item = &'a str>) -> (usize, usize) {
    let mut seen: HashSet<&str, Fast> = HashSet::default();
    let (mut n, mut chars) = (0, 0);
    for it in items {
        if !seen.insert(it) {
            n += 1;
            chars += py_len(it);
        }
    }
    (n, chars)
}

/// Split on `\n{2,}` (Python `re.split`).
fn split_paragraphs(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut from) = (0, 0);
    while let Some(k) = memchr::memchr(b'\n', &b[from..]) {
        let i = from + k;
        if b.get(i + 1) == Some(&b'\n') {
            out.push(&text[start..i]);
            start = newline_run_end(b, i);
            from = start;
        } else {
            from = i + 1;
        }
    }
    out.push(&text[start..]);
    out
}

/// Split on `\n+` (Python `re.split`: empty pieces at the ends are kept).
fn split_lines(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(k) = memchr::memchr(b'\n', &b[start..]) {
        let i = start + k;
        out.push(&text[start..i]);
        start = newline_run_end(b, i);
    }
    out.push(&text[start..]);
    out
}

/// The end of the run of newlines at `i`.
fn newline_run_end(b: &[u8], i: usize) -> usize {
    i + b[i..].iter().take_while(|&&c| c == b'\n').count()
}

impl GopherRepetitionConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (n, f) in self.top_n_grams.iter().chain(&self.dup_n_grams) {
            if *n == 0 || !(0.0..=1.0).contains(f) {
                return Err(format!(
                    "gopher_repetition: n-gram rule [{n}, {f}]: n must be ≥ 1 and the fraction between 0 and 1"
                ));
            }
        }
        for (name, v) in [
            ("dup_line_frac", self.dup_line_frac),
            ("dup_para_frac", self.dup_para_frac),
            ("dup_line_char_frac", self.dup_line_char_frac),
            ("dup_para_char_frac", self.dup_para_char_frac),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!(
                    "gopher_repetition.{name} = {v}: must be between 0 and 1"
                ));
            }
        }
        Ok(())
    }

    pub fn check(&self, text: &str) -> Decision {
        self.check_with(text, &mut None)
    }

    /// `words`: the words of `text` if already split (see [`cached_words`]).
    pub(crate) fn check_with<'a>(
        &self,
        text: &'a str,
        words: &mut Option<Vec<&'a str>>,
    ) -> Decision {
        if text.is_empty() {
            return Decision::Drop("empty");
        }
        let text_len = py_len(text) as f64;
        let paragraphs = split_paragraphs(py_strip(text));
        let (pd, pc) = find_duplicates(paragraphs.iter().copied());
        if self.dup_para_frac > 0.0 && pd as f64 / paragraphs.len() as f64 > self.dup_para_frac {
            return Decision::Drop("dup_para_frac");
        }
        if self.dup_para_char_frac > 0.0 && pc as f64 / text_len > self.dup_para_char_frac {
            return Decision::Drop("dup_para_char_frac");
        }
        let lines = split_lines(text);
        let (ld, lc) = find_duplicates(lines.iter().copied());
        if self.dup_line_frac > 0.0 && ld as f64 / lines.len() as f64 > self.dup_line_frac {
            return Decision::Drop("dup_line_frac");
        }
        if self.dup_line_char_frac > 0.0 && lc as f64 / text_len > self.dup_line_char_frac {
            return Decision::Drop("dup_line_char_frac");
        }
        let words = cached_words(text, words);
        let decision = GRAMS.with_borrow_mut(|grams| self.n_gram_rules(grams, words, text_len));
        if words.len() > KEPT_SCRATCH_WORDS {
            // Do not keep a huge document's scratch space (about 100 bytes per word).
            GRAMS.take();
        }
        decision
    }

    /// The top and duplicated n-gram rules, in datatrove's order.
    fn n_gram_rules(&self, grams: &mut NGrams, words: &[&str], text_len: f64) -> Decision {
        grams.reset(words);
        for &(n, frac) in &self.top_n_grams {
            if words.len() < n {
                continue;
            }
            if n_gram_reason(TOP_REASONS, n).is_none() {
                continue;
            }
            // The bound decides most documents without counting the n-grams themselves.
            if grams.top_chars_bound(n) as f64 / text_len <= frac {
                continue;
            }
            if grams.top_chars(n) as f64 / text_len > frac {
                return Decision::Drop(n_gram_reason(TOP_REASONS, n).unwrap_or("top_n_gram"));
            }
        }
        for &(n, frac) in &self.dup_n_grams {
            if grams.duplicate_chars(n) as f64 / text_len > frac {
                return Decision::Drop(
                    n_gram_reason(DUP_REASONS, n).unwrap_or("duplicated_n_grams"),
                );
            }
        }
        Decision::Keep
    }
}

thread_local! {
    /// Each thread's n-gram scratch space, reused from document to document.
    static GRAMS: std::cell::RefCell<NGrams> = std::cell::RefCell::default();
}

/// Documents of up to this many words leave their n-gram scratch space for the next.
const KEPT_SCRATCH_WORDS: usize = 1 << 16;

const TOP_REASONS: &[&str] = &[
    "",
    "top_1_gram",
    "top_2_gram",
    "top_3_gram",
    "top_4_gram",
    "top_5_gram",
    "top_6_gram",
    "top_7_gram",
    "top_8_gram",
    "top_9_gram",
    "top_10_gram",
];
const DUP_REASONS: &[&str] = &[
    "",
    "duplicated_1_n_grams",
    "duplicated_2_n_grams",
    "duplicated_3_n_grams",
    "duplicated_4_n_grams",
    "duplicated_5_n_grams",
    "duplicated_6_n_grams",
    "duplicated_7_n_grams",
    "duplicated_8_n_grams",
    "duplicated_9_n_grams",
    "duplicated_10_n_grams",
];

fn n_gram_reason(table: &'static [&'static str], n: usize) -> Option<&'static str> {
    table.get(n).copied()
}

/// C4 rules (Raffel et al. 2020; datatrove `C4QualityFilter`): line removals and
/// document rules. Removes lines, so it changes the text of documents it keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct C4Config {
    /// Split the text into lines (true, as C4 did) — the only mode primer implements.
    /// Default true.
    #[serde(default = "d_true")]
    pub split_paragraph: bool,
    /// Remove Wikipedia-style citation markers (`[1]`, `[edit]`, `[citation needed]`).
    /// Default true.
    #[serde(default = "d_true")]
    pub remove_citations: bool,
    /// Remove lines that do not end in terminal punctuation (`.`, `?`, `!`, `"`, `'`) or that
    /// end in `...`. Default true.
    #[serde(default = "d_true")]
    pub filter_no_terminal_punct: bool,
    /// Drop documents with fewer sentences (counted in the kept lines with spaCy's
    /// sentencizer rules). Default 5; -1 disables.
    #[serde(default = "d_min_num_sentences")]
    pub min_num_sentences: i64,
    /// Remove lines with fewer words (split on whitespace). Default 3; -1 disables.
    #[serde(default = "d_min_words_per_line")]
    pub min_words_per_line: i64,
    /// Remove lines with a word longer than this many characters. Default 1000; -1
    /// disables.
    #[serde(default = "d_max_word_length")]
    pub max_word_length: i64,
    /// Drop documents containing "lorem ipsum" (any case). Default true.
    #[serde(default = "d_true")]
    pub filter_lorem_ipsum: bool,
    /// Remove lines mentioning "javascript" (any case). Default true.
    #[serde(default = "d_true")]
    pub filter_javascript: bool,
    /// Drop documents with a curly bracket `{` in a kept line. Default true.
    #[serde(default = "d_true")]
    pub filter_curly_bracket: bool,
    /// Remove lines about terms of use, privacy or cookie policies. Default true.
    #[serde(default = "d_true")]
    pub filter_policy: bool,
}

fn d_true() -> bool {
    true
}
fn d_min_num_sentences() -> i64 {
    5
}
fn d_min_words_per_line() -> i64 {
    3
}
fn d_max_word_length() -> i64 {
    1000
}

impl Default for C4Config {
    fn default() -> Self {
        C4Config {
            split_paragraph: true,
            remove_citations: true,
            filter_no_terminal_punct: true,
            min_num_sentences: d_min_num_sentences(),
            min_words_per_line: d_min_words_per_line(),
            max_word_length: d_max_word_length(),
            filter_lorem_ipsum: true,
            filter_javascript: true,
            filter_curly_bracket: true,
            filter_policy: true,
        }
    }
}

const POLICY_SUBSTRINGS: [&str; 6] = [
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
];

/// Every phrase C4 looks for in a lowercased line, ASCII-case-insensitively: a line without
/// any of them is neither dropped nor removed for one.
static C4_PHRASES: std::sync::LazyLock<aho_corasick::AhoCorasick> =
    std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(
                ["lorem ipsum", "javascript"]
                    .iter()
                    .chain(POLICY_SUBSTRINGS.iter()),
            )
            .expect("C4 phrases")
    });

/// Line-level removals C4 counts, by reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct C4LineCounts {
    pub too_long_word: u64,
    pub no_terminal_punct: u64,
    pub too_few_words: u64,
    pub javascript: u64,
    pub policy: u64,
}

/// Remove `\[\d*]|\[edit]|\[citation needed]` (Python `re.sub`, `\d` = Unicode digits).
fn remove_citations(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('[') {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let digits: usize = after
            .char_indices()
            .take_while(|(_, c)| c.is_numeric() && is_decimal_digit(*c))
            .map(|(j, c)| j + c.len_utf8())
            .last()
            .unwrap_or(0);
        if after[digits..].starts_with(']') {
            rest = &after[digits + 1..];
        } else if let Some(r) = after.strip_prefix("edit]") {
            rest = r;
        } else if let Some(r) = after.strip_prefix("citation needed]") {
            rest = r;
        } else {
            out.push('[');
            rest = after;
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Unicode decimal digits (category Nd), which Python's `\d` matches.
fn is_decimal_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.to_digit(10).is_none() && is_nd(c))
}

fn is_nd(c: char) -> bool {
    // Nd blocks come in runs of ten starting at a zero; Rust has no general-category API, so
    // test against the common Nd ranges.
    let u = c as u32;
    const ZEROS: &[u32] = &[
        0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
        0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
        0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
        0xFF10,
    ];
    ZEROS.iter().any(|&z| u >= z && u < z + 10)
}

impl C4Config {
    pub fn validate(&self) -> Result<(), String> {
        if !self.split_paragraph {
            return Err(
                "c4.split_paragraph = false (sentence mode) is not supported; use true".into(),
            );
        }
        for (name, v) in [
            ("min_num_sentences", self.min_num_sentences),
            ("min_words_per_line", self.min_words_per_line),
            ("max_word_length", self.max_word_length),
        ] {
            if v < -1 {
                return Err(format!("c4.{name} = {v}: must be ≥ 0, or -1 to disable"));
            }
        }
        Ok(())
    }

    pub fn check(&self, text: &str) -> Decision {
        self.check_counting(text, &mut C4LineCounts::default())
    }

    pub fn check_counting(&self, text: &str, counts: &mut C4LineCounts) -> Decision {
        let mut kept: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        for line in py_lines(text) {
            let line = py_strip(line);
            // (A word has at least as many bytes as characters: a shorter line has no word
            // too long.)
            if self.max_word_length != -1
                && line.len() as i64 > self.max_word_length
                && py_split(line).any(|w| {
                    w.len() as i64 > self.max_word_length && py_len(w) as i64 > self.max_word_length
                })
            {
                counts.too_long_word += 1;
                continue;
            }
            let original = line;
            let line = if self.remove_citations {
                remove_citations(line)
            } else {
                std::borrow::Cow::Borrowed(line)
            };
            if self.filter_no_terminal_punct
                && (!line.ends_with(['.', '?', '!', '"', '\'']) || line.ends_with("..."))
            {
                counts.no_terminal_punct += 1;
                continue;
            }
            // The words of the line as it was, counted up to the minimum.
            let enough = usize::try_from(self.min_words_per_line).unwrap_or(0);
            if py_split(original).take(enough).count() < enough {
                counts.too_few_words += 1;
                continue;
            }
            // Most lines hold none of the phrases; an ASCII line can be told so without
            // lowercasing it (Python's `lower()` maps a few non-ASCII letters to ASCII ones,
            // so other lines always take the exact path).
            if line.is_ascii() && !C4_PHRASES.is_match(line.as_bytes()) {
                if self.filter_curly_bracket && line.contains('{') {
                    return Decision::Drop("curly_bracket");
                }
                kept.push(line);
                continue;
            }
            let lower = line.to_lowercase();
            if self.filter_lorem_ipsum && lower.contains("lorem ipsum") {
                return Decision::Drop("lorem_ipsum");
            }
            if self.filter_javascript && lower.contains("javascript") {
                counts.javascript += 1;
                continue;
            }
            if self.filter_curly_bracket && line.contains('{') {
                return Decision::Drop("curly_bracket");
            }
            if self.filter_policy && POLICY_SUBSTRINGS.iter().any(|p| lower.contains(p)) {
                counts.policy += 1;
                continue;
            }
            kept.push(line);
        }
        // Only whether the kept lines hold the minimum number of sentences matters. A line
        // with a character other than whitespace holds one or more, so enough such lines
        // decide it without splitting any into sentences; otherwise they are counted, up
        // to the minimum.
        let min = self.min_num_sentences;
        let enough_sentences =
            min <= 0 || kept.iter().filter(|l| !py_strip(l).is_empty()).count() as i64 >= min || {
                let mut n = 0i64;
                for line in &kept {
                    if n >= min {
                        break;
                    }
                    n += count_sentences(line) as i64;
                }
                n >= min
            };
        if !enough_sentences {
            return Decision::Drop("too_few_sentences");
        }
        let joined = kept.join("\n");
        let new = py_strip(&joined);
        if new == text {
            Decision::Keep
        } else {
            Decision::KeepText(new.to_string())
        }
    }
}

/// FineWeb rules (Penedo et al. 2024; datatrove `FineWebQualityFilter`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FinewebConfig {
    /// Drop documents where fewer than this fraction of non-empty lines end in terminal
    /// punctuation. Default 0.12.
    #[serde(default = "d_line_punct_thr")]
    pub line_punct_thr: f64,
    /// Do not apply `line_punct_thr` to documents where no line ends in punctuation.
    /// Default false.
    #[serde(default)]
    pub line_punct_exclude_zero: bool,
    /// Drop documents where more than this fraction of non-empty lines are short. Default
    /// 0.67.
    #[serde(default = "d_short_line_thr")]
    pub short_line_thr: f64,
    /// A line of at most this many characters is short. Default 30.
    #[serde(default = "d_short_line_length")]
    pub short_line_length: usize,
    /// Drop documents where duplicate lines hold more than this fraction of the
    /// characters (newlines excluded). Default 0.01.
    #[serde(default = "d_char_duplicates_ratio")]
    pub char_duplicates_ratio: f64,
    /// Drop documents with more than this many newlines per word. Default 0.3.
    #[serde(default = "d_03")]
    pub new_line_ratio: f64,
}

fn d_line_punct_thr() -> f64 {
    0.12
}
fn d_short_line_thr() -> f64 {
    0.67
}
fn d_short_line_length() -> usize {
    30
}
fn d_char_duplicates_ratio() -> f64 {
    0.01
}

impl Default for FinewebConfig {
    fn default() -> Self {
        FinewebConfig {
            line_punct_thr: d_line_punct_thr(),
            line_punct_exclude_zero: false,
            short_line_thr: d_short_line_thr(),
            short_line_length: d_short_line_length(),
            char_duplicates_ratio: d_char_duplicates_ratio(),
            new_line_ratio: d_03(),
        }
    }
}

impl FinewebConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("line_punct_thr", self.line_punct_thr),
            ("short_line_thr", self.short_line_thr),
            ("char_duplicates_ratio", self.char_duplicates_ratio),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("fineweb.{name} = {v}: must be between 0 and 1"));
            }
        }
        if self.new_line_ratio < 0.0 {
            return Err("fineweb.new_line_ratio must be ≥ 0".into());
        }
        Ok(())
    }

    pub fn check(&self, text: &str) -> Decision {
        self.check_with(text, &mut None)
    }

    /// `words`: the words of `text` if already split (see [`cached_words`]).
    pub(crate) fn check_with<'a>(
        &self,
        text: &'a str,
        words: &mut Option<Vec<&'a str>>,
    ) -> Decision {
        let lines: Vec<&str> = text
            .split('\n')
            .filter(|l| !py_strip(l).is_empty())
            .collect();
        if lines.is_empty() {
            return Decision::Drop("empty");
        }
        let n = lines.len() as f64;
        let punct = lines
            .iter()
            .filter(|l| l.chars().next_back().is_some_and(is_terminal_punct))
            .count() as f64
            / n;
        if punct < self.line_punct_thr && !(punct == 0.0 && self.line_punct_exclude_zero) {
            return Decision::Drop("line_punct_ratio");
        }
        let short = lines
            .iter()
            .filter(|l| py_len(l) <= self.short_line_length)
            .count() as f64
            / n;
        if short > self.short_line_thr {
            return Decision::Drop("short_line_ratio");
        }
        let (_, dup_chars) = find_duplicates(lines.iter().copied());
        let newlines = memchr::memchr_iter(b'\n', text.as_bytes()).count();
        let denom = py_len(text) - newlines;
        if dup_chars as f64 / denom as f64 > self.char_duplicates_ratio {
            return Decision::Drop("char_dup_ratio");
        }
        let newlines = newlines as f64;
        if words.is_none() {
            // Without the words at hand (C4 changed the text), a lower bound of their number
            // decides most documents: the ratio can only be smaller with the true count.
            let at_least = min_word_count(text);
            if at_least > 0 && newlines / at_least as f64 <= self.new_line_ratio {
                return Decision::Keep;
            }
        }
        let nw = cached_words(text, words).len();
        if nw == 0 || newlines / nw as f64 > self.new_line_ratio {
            return Decision::Drop("list_ratio");
        }
        Decision::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` words: two stop words, then `n - 2` four-letter words, on one line.
    fn doc(n: usize) -> String {
        let mut s = String::from("the and");
        for i in 0..n - 2 {
            s.push_str(if i % 2 == 0 { " abcd" } else { " wxyz" });
        }
        s
    }

    fn gq(text: &str) -> Decision {
        GopherQualityConfig::default().check(text)
    }

    #[test]
    fn gopher_quality_word_count_edges() {
        assert_eq!(gq(&doc(50)), Decision::Keep);
        assert_eq!(gq(&doc(49)), Decision::Drop("gopher_short_doc"));
        let c = GopherQualityConfig {
            max_doc_words: 60,
            ..Default::default()
        };
        assert_eq!(c.check(&doc(60)), Decision::Keep);
        assert_eq!(c.check(&doc(61)), Decision::Drop("gopher_long_doc"));
        // Punctuation-only tokens are not words.
        assert_eq!(
            gq(&format!("{} , , , .", doc(49))),
            Decision::Drop("gopher_short_doc")
        );
    }

    #[test]
    fn gopher_quality_mean_word_length_edges() {
        // "the and" + 98 words of length 3 → mean exactly 3: kept; length-2 words pull it below.
        let ok = format!("the and{}", " abc".repeat(98));
        assert_eq!(gq(&ok), Decision::Keep);
        let short = format!("the and{}", " ab".repeat(98));
        assert_eq!(gq(&short), Decision::Drop("gopher_below_avg_threshold"));
        let long = format!("the and{}", " abcdefghijkl".repeat(98));
        assert_eq!(gq(&long), Decision::Drop("gopher_above_avg_threshold"));
    }

    #[test]
    fn gopher_quality_symbol_edges() {
        // 100 words + k "#" tokens: k / (100 + k) > 0.1 from k = 12.
        assert_eq!(
            gq(&format!("{}{}", doc(100), " #".repeat(11))),
            Decision::Keep
        );
        assert_eq!(
            gq(&format!("{}{}", doc(100), " #".repeat(12))),
            Decision::Drop("gopher_too_many_hashes")
        );
        assert_eq!(
            gq(&format!("{}{}", doc(100), " …".repeat(12))),
            Decision::Drop("gopher_too_many_ellipsis")
        );
    }

    #[test]
    fn gopher_quality_line_edges() {
        // 10 lines, 9 bullets = 0.9: kept; 10 of 10: dropped.
        let lines = |bullets: usize, total: usize, ell: bool| {
            (0..total)
                .map(|i| {
                    let b = if i < bullets { "• " } else { "" };
                    let e = if ell && i < bullets { "..." } else { "" };
                    format!("{b}the and abcd wxyz abcd{e}")
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(gq(&lines(9, 10, false)), Decision::Keep);
        assert_eq!(
            gq(&lines(10, 10, false)),
            Decision::Drop("gopher_too_many_bullets")
        );
        let ell = |n: usize| {
            (0..10)
                .map(|i| format!("the and abcd wxyz abcd{}", if i < n { "…" } else { "" }))
                .collect::<Vec<_>>()
                .join("\n")
        };
        // 3 of 10 lines end with an ellipsis: 0.3 is kept; 4: dropped. (3 "…" / 53 words
        // stays under the symbol ratio.)
        assert_eq!(gq(&ell(3)), Decision::Keep);
        assert_eq!(gq(&ell(4)), Decision::Drop("gopher_too_many_end_ellipsis"));
    }

    #[test]
    fn ascii_classes_are_the_byte_classes() {
        let class = &*BYTE_CLASS;
        for len in 1..=8 {
            for v in 0..=255u8 {
                for at in 0..8 {
                    let mut b = [b'!'; 8];
                    b[at] = v;
                    let bits = b[..len].iter().fold(0, |acc, &b| acc | class[b as usize]);
                    let want = (bits & NON_ASCII == 0)
                        .then_some((bits & NON_PUNCT != 0, bits & ALPHA != 0));
                    assert_eq!(
                        ascii_classes(u64::from_le_bytes(b), len),
                        want,
                        "{b:?}, {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn gopher_quality_alpha_and_stop_words() {
        // 100 words of which 20 are numbers: alpha 80/100 = 0.8 is kept; 21: dropped.
        let mix = |nums: usize| format!("{}{}", doc(100 - nums), " 1234".repeat(nums));
        assert_eq!(gq(&mix(20)), Decision::Keep);
        assert_eq!(gq(&mix(21)), Decision::Drop("gopher_below_alpha_threshold"));
        // One distinct stop word (repeated) is not enough.
        let one = format!("the the{}", " abcd".repeat(60));
        assert_eq!(gq(&one), Decision::Drop("gopher_enough_stop_words"));
        // Case matters, as in datatrove.
        let upper = format!("The And{}", " abcd".repeat(60));
        assert_eq!(gq(&upper), Decision::Drop("gopher_enough_stop_words"));
    }

    fn gr(text: &str) -> Decision {
        GopherRepetitionConfig::default().check(text)
    }

    #[test]
    fn paragraph_and_line_splits_are_re_split() {
        let paragraphs = regex::Regex::new("\n{2,}").unwrap();
        let lines = regex::Regex::new("\n+").unwrap();
        for text in [
            "",
            "\n",
            "\n\n",
            "a",
            "a\n",
            "a\n\n",
            "\na",
            "\n\na",
            "a\nb",
            "a\n\nb",
            "a\n\n\n\nb\nc\n\n",
            "\n\n\na\n\n\n",
            "é\n\n東\nx",
        ] {
            let want: Vec<&str> = paragraphs.split(text).collect();
            assert_eq!(split_paragraphs(text), want, "{text:?}");
            let want: Vec<&str> = lines.split(text).collect();
            assert_eq!(split_lines(text), want, "{text:?}");
        }
    }

    #[test]
    fn gopher_repetition_line_and_paragraph_edges() {
        assert_eq!(gr(""), Decision::Drop("empty"));
        let gr = |t: &str| {
            GopherRepetitionConfig {
                top_n_grams: vec![],
                dup_n_grams: vec![],
                ..Default::default()
            }
            .check(t)
        };
        // Distinct long lines; 10 paragraphs, 3 repeated: 0.3 kept, 4: dropped.
        let uniq = |i: usize| {
            format!(
                "line number {i} says something different from the others {}",
                "x".repeat(i)
            )
        };
        let paras = |dups: usize| {
            let mut v: Vec<String> = (0..10 - dups).map(uniq).collect();
            v.extend((0..dups).map(|_| "ok".to_string()));
            v.insert(0, "ok".into());
            v.pop();
            v.join("\n\n")
        };
        // 3 duplicates of the 2-char "ok" among 10 paragraphs: 3/10 = 0.3 is kept.
        let p3 = paras(4);
        assert_eq!(p3.split("\n\n").filter(|p| *p == "ok").count(), 4);
        assert_eq!(gr(&p3), Decision::Keep);
        let p4 = paras(5);
        assert_eq!(gr(&p4), Decision::Drop("dup_para_frac"));
        // Line fraction: single newlines.
        let lines4 = p4.replace("\n\n", "\n");
        assert_eq!(gr(&lines4), Decision::Drop("dup_line_frac"));
    }

    #[test]
    fn gopher_repetition_char_fractions() {
        // One long paragraph repeated once: duplicate chars ≈ half the text.
        let p = "a long paragraph made of many different words that do not repeat inside";
        let t = format!("one\n\ntwo\n\nthree\n\nfour\n\n{p}\n\n{p}");
        assert_eq!(gr(&t), Decision::Drop("dup_para_char_frac"));
        assert_eq!(
            gr(&t.replace("\n\n", "\n")),
            Decision::Drop("dup_line_char_frac")
        );
    }

    #[test]
    fn gopher_repetition_n_grams() {
        // "w0 w1 … w99" has no repeated n-grams: kept.
        let base: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
        assert_eq!(gr(&base.join(" ")), Decision::Keep);
        // The same bigram 30 times in 300 chars dominates.
        let top = format!("{} {}", "ab cd", vec!["ab cd"; 30].join(" "));
        assert_eq!(gr(&top), Decision::Drop("top_2_gram"));
        // A 5-gram sequence repeated: first top-n, else duplicated n-grams.
        let mut words = base.clone();
        words.extend(base[..40].iter().cloned());
        assert_eq!(gr(&words.join(" ")), Decision::Drop("duplicated_5_n_grams"));
    }

    fn sentence_line(i: usize) -> String {
        format!("This is sentence number {i} of the page.")
    }

    #[test]
    fn c4_sentence_count_edge() {
        let five: Vec<String> = (0..5).map(sentence_line).collect();
        assert_eq!(C4Config::default().check(&five.join("\n")), Decision::Keep);
        assert_eq!(
            C4Config::default().check(&five[..4].join("\n")),
            Decision::Drop("too_few_sentences")
        );
        // Two sentences on one line count twice.
        let two = "One sentence here. Another one there.";
        let t = format!("{two}\n{two}\n{}", sentence_line(0));
        assert_eq!(C4Config::default().check(&t), Decision::Keep);
    }

    #[test]
    fn c4_line_removals() {
        let five: Vec<String> = (0..5).map(sentence_line).collect();
        let mut lines = five.clone();
        lines.insert(1, "Menu.".into()); // too few words
        lines.insert(2, "A line without an end".into()); // no terminal punctuation
        lines.insert(3, "Please enable JavaScript to view.".into());
        lines.insert(4, "Read our privacy policy today.".into());
        lines.insert(5, "Wait for it...".into());
        let mut counts = C4LineCounts::default();
        let d = C4Config::default().check_counting(&lines.join("\n"), &mut counts);
        assert_eq!(d, Decision::KeepText(five.join("\n")));
        assert_eq!(
            counts,
            C4LineCounts {
                too_long_word: 0,
                no_terminal_punct: 2,
                too_few_words: 1,
                javascript: 1,
                policy: 1
            }
        );
        // Citation markers go; the line stays.
        let mut cited = five.clone();
        cited[0] = "This is cited[1] text[edit] of the page[citation needed].".into();
        let d = C4Config::default().check(&cited.join("\n"));
        let mut expect = five.clone();
        expect[0] = "This is cited text of the page.".into();
        assert_eq!(d, Decision::KeepText(expect.join("\n")));
        // A 1001-character word removes its line; 1000 does not.
        let mut long = five.clone();
        long.push(format!("word {} end.", "x".repeat(1001)));
        assert_eq!(
            C4Config::default().check(&long.join("\n")),
            Decision::KeepText(five.join("\n"))
        );
        let mut ok = five.clone();
        ok.push(format!("word {} end.", "x".repeat(1000)));
        assert_eq!(C4Config::default().check(&ok.join("\n")), Decision::Keep);
    }

    #[test]
    fn c4_document_rules() {
        let mut five: Vec<String> = (0..5).map(sentence_line).collect();
        five.push("Lorem ipsum dolor sit amet.".into());
        assert_eq!(
            C4Config::default().check(&five.join("\n")),
            Decision::Drop("lorem_ipsum")
        );
        five.pop();
        five.push("Use a dict like {1: 2} here.".into());
        assert_eq!(
            C4Config::default().check(&five.join("\n")),
            Decision::Drop("curly_bracket")
        );
        // A curly bracket in a removed line does not drop the document.
        five.pop();
        five.push("code {".into());
        assert_eq!(
            C4Config::default().check(&five.join("\n")),
            Decision::KeepText(five[..5].join("\n"))
        );
    }

    fn fw(text: &str) -> Decision {
        FinewebConfig::default().check(text)
    }

    #[test]
    fn fineweb_edges() {
        assert_eq!(fw("\n \n"), Decision::Drop("empty"));
        let long = |i: usize, end: &str| {
            format!("this is a reasonably long line of prose number {i}{end}")
        };
        // 25 lines, 3 end in punctuation: 0.12 is kept; 2: 0.08 dropped.
        let punct = |k: usize| {
            (0..25)
                .map(|i| long(i, if i < k { "." } else { "" }))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(fw(&punct(3)), Decision::Keep);
        assert_eq!(fw(&punct(2)), Decision::Drop("line_punct_ratio"));
        // Short lines: 67 of 100 (0.67) kept, 68 dropped.
        let short = |k: usize| {
            (0..100)
                .map(|i| {
                    if i < k {
                        format!("short {i}.")
                    } else {
                        long(i, ".")
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(fw(&short(67)), Decision::Keep);
        assert_eq!(fw(&short(68)), Decision::Drop("short_line_ratio"));
        // One duplicated line among many: duplicate characters over 1%.
        let mut v: Vec<String> = (0..20).map(|i| long(i, ".")).collect();
        v.push(long(0, "."));
        assert_eq!(fw(&v.join("\n")), Decision::Drop("char_dup_ratio"));
        // Newlines per word above 0.3: lists of short items.
        let list = (0..20)
            .map(|i| format!("item number {i}, a fairly long list entry text."))
            .collect::<Vec<_>>()
            .join("\n\n\n\n\n\n\n\n\n\n");
        assert_eq!(fw(&list), Decision::Drop("list_ratio"));
    }
}
