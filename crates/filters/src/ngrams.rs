//! Gopher repetition's n-gram rules over a document's words, hashing each n-gram in O(1).
//!
//! datatrove compares n-grams as joined strings: `" ".join(words[i:i+n])` for the top
//! n-grams and `"".join(words[i:i+n])` for the duplicated ones. Both are hashed here with
//! polynomial hashes modulo the Mersenne prime 2^61 − 1, built from one hash per word:
//!
//! - a word's hash is the polynomial of its bytes in base [`B`]; the hash of a
//!   concatenation is `H(x) · B^|y| + H(y)`, so the `"".join` of words `i..i+n+1` extends
//!   that of `i..i+n` with one multiply-add, whatever the words' lengths, and equal strings
//!   get equal hashes however they split into words (`"ab" + "c"` = `"a" + "bc"`);
//! - the `" ".join` of words `i..i+n` is the polynomial of the word hashes in base [`C`]:
//!   the words hold no whitespace (the splitter strips it), so equal joined strings are
//!   exactly equal word sequences.
//!
//! Two different n-grams of a document get the same hash with probability about
//! `n · len / 2^61` (versus 2^-64 for the xxh3 of each joined string this replaces, which
//! hashed every n-gram's bytes again for each n). Counting uses [`Table`], an open-addressing
//! table sized to the document, cleared between passes.

/// The Mersenne prime 2^61 − 1.
const M: u64 = (1 << 61) - 1;
/// Base of the byte polynomials (a fixed odd number below `M`).
const B: u64 = 0x1d8e_4e27_c47d_124f & M;
/// Base of the word-sequence polynomials.
const C: u64 = 0x0f3c_6d1d_d4a2_b1e7 & M;

/// `a · b mod M` for `a, b < M` (the result is `< M`: `(M − 1)²` keeps the high part
/// below `M`, so one subtraction reduces fully).
#[inline(always)]
fn mul(a: u64, b: u64) -> u64 {
    let p = a as u128 * b as u128;
    let s = (p as u64 & M) + (p >> 61) as u64;
    if s >= M { s - M } else { s }
}

/// `x mod M` for `x < 2^122`.
#[inline(always)]
fn reduce(x: u128) -> u64 {
    let s = (x as u64 & M) + (x >> 61) as u64;
    if s >= M { s - M } else { s }
}

/// Bytes hashed as one block: the powers `B^0..=B^BLOCK` are a table.
const BLOCK: usize = 64;

/// `B^k` for `k` in `0..=BLOCK`.
static POW: [u64; BLOCK + 1] = {
    let mut t = [1u64; BLOCK + 1];
    let mut k = 1;
    while k <= BLOCK {
        let p = t[k - 1] as u128 * B as u128;
        let s = (p as u64 & M) + (p >> 61) as u64;
        t[k] = if s >= M { s - M } else { s };
        k += 1;
    }
    t
};

/// Words up to this long are hashed from [`BYTE_POW`].
const SHORT: usize = 8;

/// `(b + 1) · B^k` for `k < SHORT` and every byte `b` (16 KB): a short word's hash is a sum
/// of table entries, without multiplies.
static BYTE_POW: [[u64; 256]; SHORT] = {
    let mut t = [[0u64; 256]; SHORT];
    let mut k = 0;
    while k < SHORT {
        let mut b = 0;
        while b < 256 {
            let p = (b as u128 + 1) * POW[k] as u128;
            let s = (p as u64 & M) + (p >> 61) as u64;
            t[k][b] = if s >= M { s - M } else { s };
            b += 1;
        }
        k += 1;
    }
    t
};

/// The byte polynomial of `s` (bytes counted from 1) and `B^len`: blocks of up to
/// [`BLOCK`] bytes are summed as independent products (no chain of dependent multiplies
/// per byte), then joined by Horner's rule.
#[inline]
fn hash_bytes(s: &[u8]) -> (u64, u64) {
    if s.len() <= SHORT {
        // Up to eight terms below M: their sum fits a u64.
        let n = s.len();
        let mut sum = 0u64;
        for (i, &b) in s.iter().enumerate() {
            sum += BYTE_POW[n - 1 - i][b as usize];
        }
        return (reduce(sum as u128), POW[n]);
    }
    if s.len() <= BLOCK {
        // One block (nearly every longer word): no joining. The powers' low and high 32
        // bits are summed apart, in `u64`s (each product is below 2^41; at most 64 of them).
        let n = s.len();
        let (mut lo, mut hi) = (0u64, 0u64);
        for (i, &b) in s.iter().enumerate() {
            let p = POW[n - 1 - i];
            lo += (b as u64 + 1) * (p & 0xFFFF_FFFF);
            hi += (b as u64 + 1) * (p >> 32);
        }
        return (reduce(lo as u128 + ((hi as u128) << 32)), POW[n]);
    }
    let (mut h, mut p) = (0u64, 1u64);
    for block in s.chunks(BLOCK) {
        let n = block.len();
        // Each term is below 2^70 and there are at most 64: the sum fits in 77 bits.
        let mut sum = 0u128;
        for (i, &b) in block.iter().enumerate() {
            sum += (b as u128 + 1) * POW[n - 1 - i] as u128;
        }
        h = add(mul(h, POW[n]), reduce(sum));
        p = mul(p, POW[n]);
    }
    (h, p)
}

/// `a + b mod M` for `a, b < M`.
#[inline(always)]
fn add(a: u64, b: u64) -> u64 {
    let s = a + b;
    if s >= M { s - M } else { s }
}

/// The `n` up to which [`NGrams::top_chars_bound`] finds the bounds together (the
/// defaults ask 2, 3 and 4).
const FUSED_BOUNDS: usize = 4;

/// A document's words as n-gram material: each word's hash, `B^bytes` and length in
/// characters, and the n-gram hashes of the last pass of each kind.
#[derive(Default)]
pub(crate) struct NGrams {
    /// Byte polynomial of each word (bytes counted from 1, so that a NUL byte counts).
    hash: Vec<u64>,
    /// `B^len` of each word, in bytes.
    pow: Vec<u64>,
    /// Python `len` of each word.
    chars: Vec<u32>,
    /// `"".join` hashes of `plain_n`-grams at each start, and that `n`.
    plain: Vec<u64>,
    plain_n: usize,
    /// `" ".join` hashes of `spaced_n`-grams at each start, and that `n`.
    spaced: Vec<u64>,
    spaced_n: usize,
    /// How often each position's word occurs in the document (filled on first use).
    word_counts: Vec<u32>,
    /// [`top_chars_bound`](Self::top_chars_bound) of each `n` up to [`FUSED_BOUNDS`],
    /// found with `word_counts`.
    bounds: [usize; FUSED_BOUNDS + 1],
    table: Table,
    seen: SeenSet,
}

impl NGrams {
    /// Starts over with `words` (none of which holds whitespace).
    pub(crate) fn reset(&mut self, words: &[&str]) {
        self.hash.clear();
        self.pow.clear();
        self.chars.clear();
        for w in words {
            let (h, p) = hash_bytes(w.as_bytes());
            self.hash.push(h);
            self.pow.push(p);
            let chars = if w.is_ascii() {
                w.len()
            } else {
                w.bytes().filter(|&b| b & 0xC0 != 0x80).count()
            };
            self.chars.push(chars as u32);
        }
        self.plain.clear();
        self.plain_n = 0;
        self.spaced.clear();
        self.spaced_n = 0;
        self.word_counts.clear();
    }

    /// An upper bound of [`top_chars(n)`](Self::top_chars), from the words' counts alone
    /// (one pass of the table for all `n`, instead of one per `n`): an n-gram occurs at
    /// most as often as each of its words, so the top n-gram, which starts at some
    /// position `i`, scores at most `min(count of words i..i+n) · characters of i..i+n`.
    /// For prose it stays below the rules' thresholds (the frequent words are short and
    /// sit next to rare ones): on the 92 of 400 docs pages that reach this rule it decides
    /// 275 of the 276 (document, n) pairs without the exact count.
    pub(crate) fn top_chars_bound(&mut self, n: usize) -> usize {
        let len = self.hash.len();
        if len < n || n == 0 {
            return 0;
        }
        if self.word_counts.len() != len {
            // Each position's slot first, then the slot's final count.
            self.table.reset(len);
            self.word_counts.clear();
            self.word_counts.extend(self.hash.iter().map(|&h| {
                let (slot, new) = self.table.claim(h);
                let v = &mut self.table.values[slot];
                v.0 = if new { 1 } else { v.0 + 1 };
                slot as u32
            }));
            for c in &mut self.word_counts {
                *c = self.table.values[*c as usize].0;
            }
            // The bounds of every n up to FUSED_BOUNDS in one pass, each window grown
            // from the one before.
            self.bounds = [0; FUSED_BOUNDS + 1];
            for i in 0..len {
                let (mut count, mut chars) = (u32::MAX, 0);
                for m in 1..=FUSED_BOUNDS.min(len - i) {
                    count = count.min(self.word_counts[i + m - 1]);
                    chars += self.chars[i + m - 1] as usize;
                    let b = &mut self.bounds[m];
                    *b = (*b).max(count as usize * (chars + (m - 1)));
                }
            }
        }
        if n <= FUSED_BOUNDS {
            return self.bounds[n];
        }
        let mut best = 0;
        for i in 0..=len - n {
            let count = self.word_counts[i..i + n]
                .iter()
                .min()
                .copied()
                .unwrap_or(0) as usize;
            best = best.max(count * (window_chars(&self.chars, i, n) + (n - 1)));
        }
        best
    }

    /// Makes `plain[i]` the `"".join` hash of words `i..i + n` for every start `i`.
    fn plain_hashes(&mut self, n: usize) {
        let from = start_extension(&mut self.plain, self.plain_n, n, &self.hash);
        let len = self.hash.len();
        let (plain, pow, hash) = (&mut self.plain[..], &self.pow[..], &self.hash[..]);
        for k in from..n.min(len) {
            // Extend each n-gram by the word after it (the last `k` starts have none).
            let starts = len - k;
            for ((p, &w), &h) in plain[..starts].iter_mut().zip(&pow[k..]).zip(&hash[k..]) {
                *p = add(mul(*p, w), h);
            }
        }
        self.plain_n = n;
    }

    /// Makes `spaced[i]` the `" ".join` hash of words `i..i + n` for every start `i`.
    fn spaced_hashes(&mut self, n: usize) {
        let from = start_extension(&mut self.spaced, self.spaced_n, n, &self.hash);
        let len = self.hash.len();
        let (spaced, hash) = (&mut self.spaced[..], &self.hash[..]);
        for k in from..n.min(len) {
            for (p, &h) in spaced[..len - k].iter_mut().zip(&hash[k..]) {
                *p = add(mul(*p, C), h);
            }
        }
        self.spaced_n = n;
    }

    /// datatrove's `find_top_duplicate(get_n_grams(words, n))`: characters of the most
    /// frequent `" "`-joined n-gram (the first seen among equals) times its count; 0 without
    /// any n-gram. `n ≥ 1`.
    pub(crate) fn top_chars(&mut self, n: usize) -> usize {
        if self.hash.len() < n {
            return 0;
        }
        self.spaced_hashes(n);
        let starts = self.hash.len() + 1 - n;
        self.table.reset(starts);
        let mut best: Option<(u32, u32)> = None; // (count, first index)
        for i in 0..starts {
            let (c, first) = self.table.count(self.spaced[i], i as u32);
            let better = match best {
                None => true,
                Some((bc, bf)) => c > bc || (c == bc && first < bf),
            };
            if better {
                best = Some((c, first));
            }
        }
        best.map_or(0, |(c, first)| {
            c as usize * (window_chars(&self.chars, first as usize, n) + (n - 1))
        })
    }

    /// datatrove's `find_all_duplicate(words, n)`: characters of `""`-joined n-grams already
    /// seen, skipping ahead by `n` after each repeat. `n ≥ 1`.
    pub(crate) fn duplicate_chars(&mut self, n: usize) -> usize {
        let len = self.hash.len();
        if len < n {
            return 0;
        }
        self.plain_hashes(n);
        let mut seen = self.seen.reset(len + 1 - n);
        let (plain, chars) = (&self.plain[..len + 1 - n], &self.chars[..]);
        let mut repeated = 0;
        let mut idx = 0;
        while let Some(&key) = plain.get(idx) {
            if seen.insert(key) {
                idx += 1;
            } else {
                repeated += window_chars(chars, idx, n);
                idx += n;
            }
        }
        repeated
    }
}

/// The length `k` from which `grams`, the hashes of `done`-grams at each start, extend to
/// `n`-grams: `done`, or 1 after starting over from the words' own hashes (the 1-grams)
/// when `grams` holds none or longer ones.
fn start_extension(grams: &mut Vec<u64>, done: usize, n: usize, hash: &[u64]) -> usize {
    if done == 0 || n < done {
        grams.clear();
        grams.extend_from_slice(hash);
        1
    } else {
        done
    }
}

/// Characters of words `i..i + n`, given each word's (`NGrams::chars`).
fn window_chars(chars: &[u32], i: usize, n: usize) -> usize {
    chars[i..i + n].iter().map(|&c| c as usize).sum()
}

/// The set of keys a pass of [`NGrams::duplicate_chars`] has seen, for a walk whose keys
/// are nearly all new: a bitmap of 32 bits per key answers "new" for most of them from the
/// L1 cache with a branch the processor predicts, and only keys whose bit is set are
/// looked for in the chained buckets behind it. (Open addressing at a load of a quarter to
/// a half probes a second slot for a third of new keys, a branch the processor cannot
/// predict.)
#[derive(Default)]
struct SeenSet {
    bits: Vec<u64>,
    head: Vec<u32>,
    keys: Vec<u64>,
    next: Vec<u32>,
}

impl SeenSet {
    /// Empties the set and sizes it for at most `n` keys; the set as slices, which a walk
    /// keeps in registers (through the vectors, each added key's store could alias the
    /// others' lengths and pointers, which the loop would reload).
    fn reset(&mut self, n: usize) -> SeenSlices<'_> {
        let bits = (n.max(2) * 32).next_power_of_two().trailing_zeros();
        self.bits.clear();
        self.bits.resize(1 << (bits - 6), 0);
        self.head.clear();
        self.head.resize(n.max(2).next_power_of_two(), u32::MAX);
        // Written before they are read: only grown.
        if self.keys.len() < n {
            self.keys.resize(n, 0);
            self.next.resize(n, 0);
        }
        SeenSlices {
            bits: &mut self.bits,
            bit_shift: 64 - bits,
            head: &mut self.head,
            keys: &mut self.keys,
            next: &mut self.next,
            count: 0,
        }
    }
}

/// A [`SeenSet`] during one walk.
struct SeenSlices<'a> {
    bits: &'a mut [u64],
    bit_shift: u32,
    /// The last key added to each bucket (an index into `keys`), `u32::MAX` for none.
    head: &'a mut [u32],
    keys: &'a mut [u64],
    /// The key added to the same bucket before each key.
    next: &'a mut [u32],
    /// Keys added.
    count: u32,
}

impl SeenSlices<'_> {
    /// Adds `key` (a hash below 2^61); whether it was new.
    #[inline(always)]
    fn insert(&mut self, key: u64) -> bool {
        // The bit from the high bits of a multiply; the bucket from the key's low bits.
        let bit = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.bit_shift) as usize;
        let bucket = key as usize & (self.head.len() - 1);
        let mask = 1u64 << (bit & 63);
        if self.bits[bit >> 6] & mask != 0 {
            let mut i = self.head[bucket];
            while i != u32::MAX {
                if self.keys[i as usize] == key {
                    return false;
                }
                i = self.next[i as usize];
            }
        }
        self.bits[bit >> 6] |= mask;
        let at = self.count as usize;
        self.next[at] = self.head[bucket];
        self.keys[at] = key;
        self.head[bucket] = self.count;
        self.count += 1;
        true
    }
}

/// Open addressing from hashes to a count and the index where the key was first counted;
/// linear probing from the hash's high bits. The hashes are below 2^61: a slot's top three
/// bits hold the generation (pass) that wrote it, so starting a pass writes nothing but
/// once in seven passes, and the keys of a few thousand words fit in the L1 cache.
#[derive(Default)]
struct Table {
    /// Key | generation << 61; 0 (generation 0) is never used.
    keys: Vec<u64>,
    /// (count, first index) of the slot's key.
    values: Vec<(u32, u32)>,
    /// Slots in use this pass (a power of two, at most `keys.len()`).
    size: usize,
    shift: u32,
    /// This pass's generation, 1..=7, shifted into place.
    generation: u64,
}

impl Table {
    const GENERATION: u64 = 1 << 61;

    /// Empties the table and sizes it for `n` keys (at most half full).
    fn reset(&mut self, n: usize) {
        let bits = (n.max(4) * 2).next_power_of_two().trailing_zeros();
        self.size = 1 << bits;
        self.shift = 64 - bits;
        self.generation = self.generation.wrapping_add(Self::GENERATION);
        if self.generation == 0 || self.keys.len() < self.size {
            self.generation = Self::GENERATION;
            let len = self.size.max(self.keys.len());
            self.keys.clear();
            self.keys.resize(len, 0);
            self.values.resize(len, (0, 0));
        }
    }

    /// The slot of `key`, claimed for it if it was not in the table this pass; and whether
    /// it was not.
    #[inline(always)]
    fn claim(&mut self, key: u64) -> (usize, bool) {
        let mask = self.size - 1;
        let tagged = key | self.generation;
        // The hashes are uniform below 2^61; a multiply spreads them over the high bits.
        let mut i = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        loop {
            let k = self.keys[i];
            if k == tagged {
                return (i, false);
            }
            if k & !M != self.generation {
                self.keys[i] = tagged;
                return (i, true);
            }
            i = (i + 1) & mask;
        }
    }

    /// Counts `key` once more; returns its count and the `at` it was first counted with.
    #[inline]
    fn count(&mut self, key: u64, at: u32) -> (u32, u32) {
        let (i, new) = self.claim(key);
        let v = &mut self.values[i];
        if new {
            *v = (0, at);
        }
        v.0 += 1;
        *v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// datatrove's functions, on strings, as the reference.
    fn top_reference(words: &[&str], n: usize) -> usize {
        let grams: Vec<String> = words.windows(n).map(|w| w.join(" ")).collect();
        let mut counts: Vec<(String, usize)> = Vec::new();
        for g in grams {
            match counts.iter_mut().find(|(k, _)| *k == g) {
                Some(e) => e.1 += 1,
                None => counts.push((g, 1)),
            }
        }
        // `Counter.most_common(1)`: the first of the largest counts, in insertion order.
        let mut best: Option<&(String, usize)> = None;
        for e in &counts {
            if best.is_none_or(|b| e.1 > b.1) {
                best = Some(e);
            }
        }
        best.map_or(0, |(g, c)| g.chars().count() * c)
    }

    fn dup_reference(words: &[&str], n: usize) -> usize {
        let mut seen = std::collections::HashSet::new();
        let (mut repeated, mut idx) = (0, 0);
        while idx + n <= words.len() {
            let g: String = words[idx..idx + n].concat();
            if seen.contains(&g) {
                repeated += g.chars().count();
                idx += n;
            } else {
                seen.insert(g);
                idx += 1;
            }
        }
        repeated
    }

    #[test]
    fn block_hashes_equal_byte_by_byte_hashes() {
        for len in [0, 1, 2, 7, 8, 9, 63, 64, 65, 128, 200] {
            let s: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
            let (mut h, mut p) = (0, 1);
            for &b in &s {
                h = add(mul(h, B), b as u64 + 1);
                p = mul(p, B);
            }
            assert_eq!(hash_bytes(&s), (h, p), "{len} bytes");
        }
    }

    #[test]
    fn modular_arithmetic_reduces_fully() {
        assert_eq!(mul(M - 1, M - 1), 1);
        assert_eq!(mul(M - 1, 2), M - 2);
        assert_eq!(add(M - 1, 1), 0);
        assert_eq!(mul(1 << 60, 2), 1);
        assert_eq!(mul(1 << 60, 4), 2);
    }

    #[test]
    fn agree_with_datatrove_on_joined_strings() {
        let mut g = NGrams::default();
        // "".join: ("ab", "c") and ("a", "bc") are the same n-gram; " ".join tells them apart.
        g.reset(&["ab", "c", "a", "bc"]);
        assert_eq!(g.duplicate_chars(2), 3);
        assert_eq!(g.top_chars(2), 4);
        // The first of equally frequent n-grams decides the top n-gram's length.
        g.reset(&["a", "b", "c", "dddddddddd", "eeeeeeeeee"]);
        assert_eq!(g.top_chars(2), 3);
        // A NUL byte is a character like any other.
        g.reset(&["\0a", "a", "\0a", "a"]);
        assert_eq!(g.duplicate_chars(1), 3);

        // Every n, in any order, on words with repeats, splits and non-ASCII.
        let text = "the cat sat on the mat the cat sat on the mat ab c a bc \
                    é è é è x y x y the cat sat on the hat der Kater saß auf der Matte \
                    naïve naïve naïve café café 東京 東京 東 京 東京";
        let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
        g.reset(&words);
        for n in [3, 1, 2, 10, 4, 7, 5, 6, 8, 9, 2, 1] {
            assert_eq!(g.top_chars(n), top_reference(&words, n), "top {n}");
            assert_eq!(g.duplicate_chars(n), dup_reference(&words, n), "dup {n}");
        }
        assert_eq!(g.duplicate_chars(words.len() + 1), 0);
    }

    #[test]
    fn seen_set_is_a_set() {
        // Keys from a small range repeat often, and fill buckets with chains.
        let mut set = SeenSet::default();
        for (sized, count) in [(1000, 1000), (5000, 5000), (0, 0), (10, 7)] {
            let mut set = set.reset(sized);
            let mut want = std::collections::HashSet::new();
            let mut x = 12345u64;
            for _ in 0..count {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let key = ((x >> 33) % 700 * 0x0123_4567_89AB) & M;
                assert_eq!(set.insert(key), want.insert(key), "{key}");
            }
        }
    }

    #[test]
    fn top_bound_is_never_below_the_top_n_gram() {
        let text = "the cat sat on the mat the cat sat on the mat ab c a bc \
                    é è é è x y x y the cat sat on the hat der Kater saß auf der Matte \
                    naïve naïve naïve café café 東京 東京 東 京 東京 a a a a a b a a";
        let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
        let mut g = NGrams::default();
        for start in 0..words.len() {
            let w = &words[start..];
            g.reset(w);
            for n in [1, 2, 3, 4, 7] {
                let (bound, top) = (g.top_chars_bound(n), g.top_chars(n));
                assert!(bound >= top, "{w:?} n = {n}: bound {bound} < top {top}");
            }
        }
        // One word ten times: its count times the pair's length (nine pairs in fact).
        g.reset(&["ab"; 10]);
        assert_eq!((g.top_chars_bound(2), g.top_chars(2)), (50, 45));
        // All words distinct: the bound is the longest n-gram.
        g.reset(&["a", "bbb", "cc", "d"]);
        assert_eq!(g.top_chars_bound(2), 6);
    }
}
