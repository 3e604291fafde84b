//! Prediction: `Dictionary::getLine` → `Model::computeHidden` → the loss's `predict`, with
//! fastText's float operations in fastText's order, into reusable scratch space.

use crate::cache::TokenCache;
use crate::dict::{EOS, LABEL_PREFIX, hash};
use crate::loss::{hs_sigmoid, pop_heap, push_heap, sort_heap, std_log};
use crate::model::{Model, Output};

/// `</s>` in [`Predictor::tokens`] (no token of a text starts at `u32::MAX`); its key is
/// found when it is read.
const EOS_TOKEN: (u32, u32, u32, (u64, u64)) = (u32::MAX, u32::MAX, 0, (0, 0));

/// The high bit of each byte of `x` that is a separator (`is_space`: NUL, `\t \n \v \f \r`
/// and the space).
#[inline(always)]
fn separators(x: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const fn splat(b: u8) -> u64 {
        b as u64 * 0x0101_0101_0101_0101
    }
    // Bytes below 0x80 (the others are never separators), with the high bit as a flag:
    // for such a byte `y`, `y + (0x7F - m)` sets the high bit exactly when `y > m`, and
    // no byte carries into the next.
    let ascii = !x & HIGH;
    let y = x & !HIGH;
    let gt = |v: u64, m: u8| v.wrapping_add(splat(0x7F - m)) & HIGH;
    let nul = !gt(y, 0) & HIGH;
    let space = !gt(y ^ splat(b' '), 0) & HIGH;
    let controls = gt(y, 0x08) & !gt(y, 0x0D); // \t \n \v \f \r
    (nul | space | controls) & ascii
}

/// Bit `k` set when `text[base + k]` is a separator, for the 64 bytes from `base`; the
/// bytes past the text's end count as separators.
#[inline(always)]
fn separator_mask(text: &[u8], base: usize) -> u64 {
    let mut padded = [b' '; 64];
    let block: &[u8] = match text.get(base..base + 64) {
        Some(b) => b,
        None => {
            let rest = &text[base..];
            padded[..rest.len()].copy_from_slice(rest);
            &padded
        }
    };
    let mut mask = 0;
    for (k, x) in block.chunks_exact(8).enumerate() {
        let m = separators(u64::from_le_bytes(x.try_into().expect("8 bytes")));
        // The high bits of the eight bytes gathered into the top byte, in order.
        mask |= ((m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
    }
    mask
}

/// A token as two numbers: its first and last eight bytes (all of them, for up to 16
/// bytes: a token of up to 8 is its bytes zero-padded, and 0), beyond 16 bytes the first
/// number folds in its other bytes. With the length, they are the token for up to 16
/// bytes, so the token cache compares them instead of the bytes.
#[inline(always)]
pub(crate) fn token_parts(t: &[u8]) -> (u64, u64) {
    let n = t.len();
    let u64_at = |i: usize| u64::from_le_bytes(t[i..i + 8].try_into().expect("8 bytes"));
    match n {
        0..=8 => {
            let mut x = [0u8; 8];
            x[..n].copy_from_slice(t);
            (u64::from_le_bytes(x), 0)
        }
        _ => {
            let mut a = u64_at(0);
            for i in (8..n.saturating_sub(8)).step_by(8) {
                a = (a ^ u64_at(i))
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .rotate_left(23);
            }
            (a, u64_at(n - 8))
        }
    }
}

/// The token cache's key of a token: a multiplicative hash of its [`token_parts`] and its
/// length. fastText's own hash (FNV-1a) takes a dependent multiply per byte; it is
/// computed only for tokens the cache does not hold.
#[inline(always)]
pub(crate) fn token_key(t: &[u8]) -> u32 {
    let (a, b) = token_parts(t);
    mix_key(a, b, t.len())
}

#[inline(always)]
fn mix_key(a: u64, b: u64, n: usize) -> u32 {
    let x = (a ^ b.rotate_left(29) ^ (n as u64) << 56).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    (x ^ (x >> 29) ^ (x >> 47)) as u32
}

/// [`token_parts`] of `text[start..end]`: a token of up to 16 bytes with 8 bytes of text
/// from its start is read with one or two loads (no branch on its length up to 8).
#[inline(always)]
fn token_parts_in(text: &[u8], start: usize, end: usize) -> (u64, u64) {
    let n = end - start;
    let u64_at = |i: usize| u64::from_le_bytes(text[i..i + 8].try_into().expect("8 bytes"));
    match text.get(start..start + 8) {
        Some(x) if n <= 8 => {
            let x = u64::from_le_bytes(x.try_into().expect("8 bytes"));
            (x & (u64::MAX >> (64 - 8 * n.max(1))), 0)
        }
        Some(_) if n <= 16 => (u64_at(start), u64_at(end - 8)),
        _ => token_parts(&text[start..end]),
    }
}

/// Pending input rows that trigger a [`Predictor::flush`].
const FLUSH_ROWS: usize = 256;

/// One label's score, as fastText's `predictLine` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Index into [`Model::labels`].
    pub label: usize,
    /// The score fastText ranks by: `log(p + 1e-5)` of the label's probability `p`, or for
    /// hierarchical softmax the sum of that over the branches on the label's tree path.
    pub log_prob: f32,
    /// `exp(log_prob)`, the probability fastText returns.
    pub prob: f32,
}

impl Prediction {
    fn new(label: usize, log_prob: f32) -> Self {
        Prediction {
            label,
            log_prob,
            // `std::exp(float)` in `predictLine`.
            prob: log_prob.exp(),
        }
    }
}

/// Predicts labels for one text at a time, reusing its buffers: no allocation once they
/// have grown to the longest text's needs. First [`read_line`](Self::read_line) or
/// [`read_document`](Self::read_document) a text, then ask for [`predict`](Self::predict),
/// [`best`](Self::best) or [`label`](Self::label) as often as needed.
pub struct Predictor<'m> {
    model: &'m Model,
    hidden: Vec<f32>,
    /// Input rows summed into `hidden` (fastText's `words.size()`).
    inputs: usize,
    /// Input rows found but not yet summed: finding rows (hashes, bucket lookups) and
    /// summing them (centroid lookups, float adds) go in batches, which lets the processor
    /// overlap the memory accesses of many n-grams.
    rows: Vec<i32>,
    output: Vec<f32>,
    output_ready: bool,
    /// Token hashes for word n-grams.
    hashes: Vec<i32>,
    /// `<token>` of an out-of-vocabulary token.
    word: Vec<u8>,
    /// Its character n-grams' buckets.
    buckets: Vec<u32>,
    /// The text's tokens: (start, end, hash), `EOS_TOKEN` for `</s>`.
    tokens: Vec<(u32, u32, u32, (u64, u64))>,
    cache: TokenCache,
    heap: Vec<(f32, i32)>,
    stack: Vec<(u32, f32)>,
    path: Vec<u32>,
}

impl<'m> Predictor<'m> {
    pub fn new(model: &'m Model) -> Self {
        Predictor {
            model,
            hidden: vec![0.0; model.dim],
            inputs: 0,
            rows: Vec::with_capacity(FLUSH_ROWS + 1024),
            output: vec![0.0; model.labels().len()],
            output_ready: false,
            hashes: Vec::new(),
            word: Vec::new(),
            buckets: Vec::new(),
            tokens: Vec::new(),
            cache: TokenCache::new(),
            heap: Vec::new(),
            stack: Vec::new(),
            path: Vec::new(),
        }
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Reads `text` as fastText's `predictLine` reads a stream holding exactly `text`: up
    /// to and including its first `'\n'` (fastText's `</s>` token), everything after it is
    /// ignored. Returns whether any input row was found; without one fastText predicts
    /// nothing.
    pub fn read_line(&mut self, text: &[u8]) -> bool {
        self.read(text, false)
    }

    /// Reads all of `text` as one line with every `'\n'` a space and a `'\n'` appended —
    /// what Python fastText's `predict(text.replace("\n", " "))` computes, and the C++
    /// `predictLine` on that string. (`'\0'` is a separator to fastText either way.)
    pub fn read_document(&mut self, text: &[u8]) -> bool {
        self.read(text, true)
    }

    fn read(&mut self, text: &[u8], document: bool) -> bool {
        self.hidden.fill(0.0);
        self.inputs = 0;
        self.rows.clear();
        self.hashes.clear();
        self.output_ready = false;
        // The tokens first, with their hashes, so that the cache slots of the tokens a few
        // places ahead are fetched while one token is looked up: each lookup is
        // independent of the others, but most miss the processor's caches.
        self.tokens.clear();
        // A line ends at its first '\n' (fastText's `</s>`); a document has no '\n' left
        // (each is a space), and a `</s>` after its last token.
        let (text, mut eos) = match document {
            true => (text, true),
            false => match text.iter().position(|&b| b == b'\n') {
                Some(end) => (&text[..end], true),
                None => (text, false),
            },
        };
        // The tokens: runs of bytes between separators, found from a bitmap of each 64
        // bytes' separators, without a branch per byte or per token to find their ends.
        let mut open = usize::MAX; // where the token being read starts
        let mut carry = 1u64; // whether the byte before the block is a separator
        let mut base = 0;
        'blocks: while base < text.len() {
            let sep = separator_mask(text, base);
            let before = sep << 1 | carry;
            carry = sep >> 63;
            let mut starts = !sep & before;
            let mut ends = sep & !before;
            loop {
                if open == usize::MAX {
                    if starts == 0 {
                        break;
                    }
                    open = base + starts.trailing_zeros() as usize;
                    starts &= starts - 1;
                }
                if ends == 0 {
                    break;
                }
                let end = base + ends.trailing_zeros() as usize;
                ends &= ends - 1;
                let start = std::mem::replace(&mut open, usize::MAX);
                if self.push_token(text, start, end) {
                    eos = false;
                    break 'blocks;
                }
            }
            base += 64;
        }
        if open != usize::MAX && self.push_token(text, open, text.len()) {
            eos = false;
        }
        if eos {
            self.tokens.push(EOS_TOKEN);
        }
        const AHEAD: usize = 12;
        for i in 0..self.tokens.len() {
            if let Some(&(_, _, h, _)) = self.tokens.get(i + AHEAD) {
                self.cache.prefetch(h);
            }
            let (start, end, key, parts) = self.tokens[i];
            let (token, key, parts) = if start == u32::MAX {
                (EOS, token_key(EOS), token_parts(EOS))
            } else {
                let (start, end) = (start as usize, end as usize);
                (&text[start..end], key, parts)
            };
            self.add_token(token, key, parts);
        }
        let dict = &self.model.dict;
        if dict.word_ngrams > 1 {
            let rows = &mut self.rows;
            dict.word_ngram_rows(&self.hashes, |row| rows.push(row));
        }
        self.flush();
        if self.inputs == 0 {
            return false;
        }
        // `hidden.mul(1.0 / input.size())`: the factor is a double rounded to float.
        let a = (1.0f64 / self.inputs as f64) as f32;
        for x in &mut self.hidden {
            *x *= a;
        }
        true
    }

    /// Keeps the token `text[start..end]`; true when it is a literal `</s>`, which ends the
    /// line as a newline does (fastText's `getLine`).
    #[inline(always)]
    fn push_token(&mut self, text: &[u8], start: usize, end: usize) -> bool {
        let parts = token_parts_in(text, start, end);
        self.tokens.push((
            start as u32,
            end as u32,
            mix_key(parts.0, parts.1, end - start),
            parts,
        ));
        &text[start..end] == EOS
    }

    /// One token of `Dictionary::getLine`: its input rows go straight into `hidden`, in
    /// the order fastText lists them.
    #[inline]
    fn add_token(&mut self, token: &[u8], key: u32, parts: (u64, u64)) {
        let model = self.model;
        let dict = &model.dict;
        // fastText's hash of the token: word n-grams need it; a cached token has it.
        let fnv;
        if let Some((rows, h)) = self.cache.get(token, key, parts) {
            self.rows.extend_from_slice(rows);
            fnv = h;
        } else {
            let b = (key >> model.entry_shift) as usize;
            let known = model.entry_keys[b / 64] & (1 << (b % 64)) != 0;
            fnv = if known || dict.word_ngrams > 1 {
                hash(token)
            } else {
                0
            };
            let wid = if known { dict.find(token, fnv) } else { None };
            let is_word = match wid {
                Some(id) => id < dict.nwords,
                None => !token.starts_with(LABEL_PREFIX),
            };
            if !is_word {
                return;
            }
            let start = self.rows.len();
            match wid {
                Some(id) => self.rows.extend_from_slice(dict.word_rows(id as usize)),
                None if token != EOS => {
                    self.word.clear();
                    self.word.push(b'<');
                    self.word.extend_from_slice(token);
                    self.word.push(b'>');
                    dict.subword_rows(&self.word, &mut self.buckets, &mut self.rows);
                }
                None => {}
            }
            self.cache
                .insert(token, key, parts, fnv, &self.rows[start..]);
        }
        if dict.word_ngrams > 1 {
            // `std::vector<int32_t> word_hashes; word_hashes.push_back(uint32_t h)`.
            self.hashes.push(fnv as i32);
        }
        if self.rows.len() >= FLUSH_ROWS {
            self.flush();
        }
    }

    /// Sums the pending rows into `hidden`, in order (`computeHidden`'s `addRow` loop).
    fn flush(&mut self) {
        self.model.input.add_rows(&mut self.hidden, &self.rows);
        self.inputs += self.rows.len();
        self.rows.clear();
    }

    /// The hidden vector of the text read last (fastText's `computeHidden`).
    pub fn hidden(&self) -> &[f32] {
        &self.hidden
    }

    /// fastText's `predict(k, threshold)` on the text read last: the `k` best labels
    /// (`usize::MAX` for all, fastText's `k = -1`; 0 gives none where fastText throws)
    /// with probability at least `threshold`, best first, in fastText's order among equal
    /// scores.
    pub fn predict(&mut self, k: usize, threshold: f32, out: &mut Vec<Prediction>) {
        out.clear();
        if self.inputs == 0 || k == 0 {
            return;
        }
        self.fill_heap(k.min(self.output.len()), threshold);
        out.extend(
            self.heap
                .iter()
                .map(|&(s, l)| Prediction::new(l as usize, s)),
        );
    }

    /// The heap of fastText's `Loss::predict`, sorted.
    fn fill_heap(&mut self, k: usize, threshold: f32) {
        self.heap.clear();
        match &self.model.out {
            Output::Tree(_) => self.dfs(k, threshold),
            _ => {
                self.compute_output();
                let thr = threshold;
                for i in 0..self.output.len() {
                    let o = self.output[i];
                    // `findKBest`.
                    if o < thr {
                        continue;
                    }
                    if self.heap.len() == k && std_log(o) < self.heap[0].0 {
                        continue;
                    }
                    self.heap.push((std_log(o), i as i32));
                    push_heap(&mut self.heap);
                    if self.heap.len() > k {
                        pop_heap(&mut self.heap);
                        self.heap.pop();
                    }
                }
            }
        }
        sort_heap(&mut self.heap);
    }

    /// `HierarchicalSoftmaxLoss::dfs`, with an explicit stack (left subtree first).
    fn dfs(&mut self, k: usize, threshold: f32) {
        let Output::Tree(tree) = &self.model.out else {
            return;
        };
        let out = &self.model.output;
        let thr = std_log(threshold);
        let osz = tree.osz;
        self.stack.clear();
        self.stack.push((tree.root() as u32, 0.0));
        while let Some((node, score)) = self.stack.pop() {
            let node = node as usize;
            if score < thr {
                continue;
            }
            if self.heap.len() == k && score < self.heap[0].0 {
                continue;
            }
            if node < osz {
                self.heap.push((score, node as i32));
                push_heap(&mut self.heap);
                if self.heap.len() > k {
                    pop_heap(&mut self.heap);
                    self.heap.pop();
                }
                continue;
            }
            let f = hs_sigmoid(out.dot_row(&self.hidden, node - osz));
            self.stack
                .push((tree.right[node] as u32, score + std_log(f)));
            self.stack.push((
                tree.left[node] as u32,
                score + std_log((1.0f64 - f as f64) as f32),
            ));
        }
    }

    /// `computeOutput` of softmax, one-vs-all and negative sampling, once per text.
    fn compute_output(&mut self) {
        if self.output_ready {
            return;
        }
        self.output_ready = true;
        let m = self.model;
        for (i, o) in self.output.iter_mut().enumerate() {
            *o = m.output.dot_row(&self.hidden, i);
        }
        match &m.out {
            Output::Softmax => {
                let mut max = self.output[0];
                for &o in &self.output {
                    // `std::max(output[i], max)`.
                    max = if o < max { max } else { o };
                }
                let mut z = 0.0f32;
                for o in &mut self.output {
                    // Unqualified `exp` on a float: the double `::exp`.
                    *o = ((*o - max) as f64).exp() as f32;
                    z += *o;
                }
                for o in &mut self.output {
                    *o /= z;
                }
            }
            Output::Sigmoid(t) => {
                for o in &mut self.output {
                    *o = t.sigmoid(*o);
                }
            }
            Output::Tree(_) => {}
        }
    }

    /// The first of `predict(usize::MAX, 0.0)`: the best label and its probability, as
    /// fastText ranks them. For hierarchical softmax, a branch-and-bound search of the
    /// tree that visits only subtrees that can still hold the best leaf; if two leaves tie
    /// for best it falls back to the full search, so that the tie is broken as fastText's.
    pub fn best(&mut self) -> Option<Prediction> {
        if self.inputs == 0 {
            return None;
        }
        if let Some(found) = self.hs_best() {
            return found;
        }
        self.fill_heap(self.output.len(), 0.0);
        self.heap
            .first()
            .map(|&(s, l)| Prediction::new(l as usize, s))
    }

    /// `Some(best)` when the bounded search decides it, `None` to fall back.
    fn hs_best(&mut self) -> Option<Option<Prediction>> {
        let Output::Tree(tree) = &self.model.out else {
            return None;
        };
        let out = &self.model.output;
        let thr = std_log(0.0);
        // Each step down adds `std_log(x)` with x ≤ 1, at most `std_log(1)` (> 0, tiny);
        // float addition is monotonic, so adding it `height` times bounds every leaf below.
        let step = std_log(1.0);
        let osz = tree.osz;
        let mut best = f32::NEG_INFINITY;
        let mut best_leaf = 0;
        let mut at_best = 0u32;
        self.stack.clear();
        self.stack.push((tree.root() as u32, 0.0));
        while let Some((node, score)) = self.stack.pop() {
            let node = node as usize;
            if score < thr {
                continue;
            }
            if node < osz {
                if score > best {
                    best = score;
                    best_leaf = node;
                    at_best = 1;
                } else if score == best {
                    at_best += 1;
                } else if score.is_nan() {
                    return None;
                }
                continue;
            }
            if at_best > 0 {
                let mut bound = score;
                for _ in 0..tree.height[node] {
                    bound += step;
                }
                if bound < best {
                    continue;
                }
            }
            let f = hs_sigmoid(out.dot_row(&self.hidden, node - osz));
            self.stack
                .push((tree.right[node] as u32, score + std_log(f)));
            self.stack.push((
                tree.left[node] as u32,
                score + std_log((1.0f64 - f as f64) as f32),
            ));
        }
        match at_best {
            1 => Some(Some(Prediction::new(best_leaf, best))),
            _ => None,
        }
    }

    /// The entry `predict(usize::MAX, threshold)` has for `label`, or `None` when fastText
    /// leaves the label out (its probability is below `threshold`, or for hierarchical
    /// softmax a node on its path is). For hierarchical softmax this is one root-to-leaf
    /// path: the same additions in the same order as fastText's full search.
    pub fn label(&mut self, label: usize, threshold: f32) -> Option<Prediction> {
        if self.inputs == 0 || label >= self.output.len() {
            return None;
        }
        let model = self.model;
        let thr = std_log(threshold);
        match &model.out {
            Output::Tree(tree) => {
                self.path.clear();
                let mut n = label;
                while tree.parent[n] != -1 {
                    self.path.push(n as u32);
                    n = tree.parent[n] as usize;
                }
                let mut score = 0.0f32;
                if score < thr {
                    return None;
                }
                for &child in self.path.iter().rev() {
                    let f = hs_sigmoid(model.output.dot_row(&self.hidden, n - tree.osz));
                    let child = child as usize;
                    score += if tree.binary[child] {
                        std_log(f)
                    } else {
                        std_log((1.0f64 - f as f64) as f32)
                    };
                    if score < thr {
                        return None;
                    }
                    n = child;
                }
                Some(Prediction::new(label, score))
            }
            _ => {
                self.compute_output();
                let o = self.output[label];
                if o < threshold {
                    None
                } else {
                    Some(Prediction::new(label, std_log(o)))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_parts_in_text_are_the_token_parts() {
        let text =
            "a bc def ghij klmno pqrstu vwxyzab cdefghij klmnopqrs tuvwxyzabcdefghijk é东京x";
        let b = text.as_bytes();
        for start in 0..b.len() {
            for end in start + 1..=b.len().min(start + 30) {
                let (x, y) = super::token_parts_in(b, start, end);
                assert_eq!(
                    super::mix_key(x, y, end - start),
                    super::token_key(&b[start..end]),
                    "{start}..{end}"
                );
                assert_eq!(
                    super::token_parts_in(b, start, end),
                    super::token_parts(&b[start..end]),
                    "{start}..{end}"
                );
            }
        }
    }

    #[test]
    fn separator_masks_are_what_is_space_finds() {
        for b in 0..=255u8 {
            for at in 0..64 {
                for len in [at + 1, 64, 70] {
                    let mut t = vec![b'a'; len];
                    t[at] = b;
                    let mask = super::separator_mask(&t, 0);
                    for k in 0..64 {
                        let want = t.get(k).is_none_or(|&c| crate::dict::is_space(c));
                        assert_eq!(
                            mask >> k & 1 == 1,
                            want,
                            "{b:#x} at {at}, byte {k} of {len}"
                        );
                    }
                }
            }
        }
    }
}
