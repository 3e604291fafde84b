//! fastText's dictionary (`Dictionary` in dictionary.cc): the vocabulary, its word hash,
//! the character n-grams of a word and the hash buckets they fall in (`pushHash`, with the
//! `pruneidx` map of quantized models).

use std::io::BufRead;

use crate::error::Result;
use crate::read::Reader;

/// The end-of-sentence token fastText reads at a newline.
pub(crate) const EOS: &[u8] = b"</s>";
/// fastText's default label prefix (`-label`); it is not stored in model files.
pub(crate) const LABEL_PREFIX: &[u8] = b"__label__";

const FNV_OFFSET: u32 = 2_166_136_261;
const FNV_PRIME: u32 = 16_777_619;

/// One step of fastText's hash: FNV-1a over *signed* chars, as the released models were
/// trained (`h ^ uint32_t(int8_t(c))`: bytes ≥ 0x80 are sign-extended).
#[inline(always)]
pub(crate) fn hash_step(h: u32, b: u8) -> u32 {
    (h ^ (b as i8 as i32 as u32)).wrapping_mul(FNV_PRIME)
}

/// `Dictionary::hash`.
#[inline]
pub(crate) fn hash(s: &[u8]) -> u32 {
    s.iter().fold(FNV_OFFSET, |h, &b| hash_step(h, b))
}

/// fastText's token separators (`Dictionary::readWord`), as the tests state them; the
/// predictor finds them eight bytes at a time.
#[cfg(test)]
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c | 0)
}

/// Open addressing for the vocabulary: slot = (hash, id), id -1 when empty. Finds the same
/// word as fastText's `find` (which probes `hash % size` linearly and compares strings); a
/// word stored twice maps to its last entry, as fastText's `load` leaves it.
struct WordTable {
    slots: Vec<(u32, i32)>,
    shift: u32,
}

impl WordTable {
    fn new(n: usize) -> Self {
        let bits = (n.max(8) * 2).next_power_of_two().trailing_zeros();
        WordTable {
            slots: vec![(0, -1); 1 << bits],
            shift: 32 - bits,
        }
    }

    #[inline(always)]
    fn start(&self, h: u32) -> usize {
        // Fibonacci hashing: fastText's FNV hash has weak low bits for short words.
        (h.wrapping_mul(0x9E37_79B1) >> self.shift) as usize
    }
}

/// `pruneidx` of a quantized model: hash bucket → row among the kept n-gram rows.
struct PruneTable {
    slots: Vec<(i32, i32)>,
    shift: u32,
}

impl PruneTable {
    fn new(pairs: &[(i32, i32)]) -> Self {
        let bits = (pairs.len().max(8) * 2)
            .next_power_of_two()
            .trailing_zeros();
        let mut t = PruneTable {
            slots: vec![(-1, 0); 1 << bits],
            shift: 32 - bits,
        };
        let mask = t.slots.len() - 1;
        for &(k, v) in pairs {
            // fastText only looks up non-negative buckets.
            if k < 0 {
                continue;
            }
            let mut i = t.start(k);
            loop {
                let s = &mut t.slots[i];
                if s.0 == -1 || s.0 == k {
                    // `pruneidx_[first] = second`: a repeated key keeps the last value.
                    *s = (k, v);
                    break;
                }
                i = (i + 1) & mask;
            }
        }
        t
    }

    #[inline(always)]
    fn start(&self, k: i32) -> usize {
        ((k as u32).wrapping_mul(0x9E37_79B1) >> self.shift) as usize
    }

    #[inline(always)]
    fn get(&self, k: i32) -> Option<i32> {
        let mask = self.slots.len() - 1;
        let mut i = self.start(k);
        loop {
            let (key, v) = self.slots[i];
            if key == k {
                return Some(v);
            }
            if key == -1 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }
}

/// `pruneidx` as a bitmap over the buckets, 32 buckets and the number of kept buckets
/// before them in each `u64`; a kept bucket's rank indexes its row. Half a megabyte for
/// lid.176 (2M buckets, 43k kept) where a hash table takes 1 MB, and one memory access
/// tells whether a bucket was kept.
struct PruneBits {
    blocks: Vec<u64>,
    /// Input rows (`nwords + pruneidx[bucket]`) in bucket order.
    rows: Vec<i32>,
}

/// Buckets up to this many get a [`PruneBits`] (8 bytes per 32 buckets: 16 MB at most).
const MAX_BITMAP_BUCKETS: i32 = 1 << 26;

impl PruneBits {
    fn new(table: &PruneTable, bucket: i32, nwords: i32) -> Self {
        let mut kept: Vec<(i32, i32)> = table
            .slots
            .iter()
            .copied()
            .filter(|&(k, _)| k != -1 && k < bucket)
            .collect();
        kept.sort_unstable();
        let mut blocks = vec![0u64; (bucket as usize).div_ceil(32)];
        for &(k, _) in &kept {
            blocks[k as usize / 32] |= 1 << (k % 32);
        }
        let mut rank = 0u64;
        for b in &mut blocks {
            let n = b.count_ones() as u64;
            *b |= rank << 32;
            rank += n;
        }
        PruneBits {
            blocks,
            rows: kept.iter().map(|&(_, v)| nwords + v).collect(),
        }
    }

    /// Appends to `out` the row of each kept bucket of `buckets` (each `< bucket`), in
    /// order.
    #[inline]
    fn rows_of(&self, buckets: &[u32], out: &mut Vec<i32>) {
        out.extend(buckets.iter().filter_map(|&k| self.get(k as i32)));
    }

    /// The row of bucket `k` (`0 <= k < bucket`), if kept.
    #[inline(always)]
    fn get(&self, k: i32) -> Option<i32> {
        let k = k as usize;
        let b = self.blocks[k / 32];
        let bit = 1u64 << (k % 32);
        if b & bit == 0 {
            return None;
        }
        let rank = (b >> 32) as u32 + (b as u32 & (bit as u32 - 1)).count_ones();
        Some(self.rows[rank as usize])
    }
}

/// What `pushHash` does with a bucket.
enum Prune {
    /// Not a pruned model: bucket `h` is input row `nwords + h`.
    No,
    /// `pruneidx_size_ == 0`: every n-gram was pruned away.
    All,
    /// Kept buckets and their rows.
    Bits(PruneBits),
    /// The same, for a number of buckets too large for a bitmap.
    Map(PruneTable),
}

pub(crate) struct Dictionary {
    pub(crate) nwords: i32,
    pub(crate) nlabels: i32,
    /// All entries' bytes; entry `i` is `arena[offsets[i]..offsets[i + 1]]`.
    arena: Vec<u8>,
    offsets: Vec<usize>,
    counts: Vec<i64>,
    table: WordTable,
    /// Input rows of word `i` (itself, then its character n-grams, as `initNgrams`):
    /// `subwords[sub_start[i]..sub_start[i + 1]]`.
    subwords: Vec<i32>,
    sub_start: Vec<usize>,
    prune: Prune,
    pub(crate) minn: i32,
    pub(crate) maxn: i32,
    pub(crate) bucket: i32,
    /// `bucket` for [`fastmod`].
    bucket_magic: u64,
    pub(crate) word_ngrams: i32,
}

/// `a % d` for 32-bit numbers by multiplications instead of a division (Lemire, Kaser
/// and Kurz, "Faster remainder by direct computation", 2019: exact for every `a` and
/// `d > 0`); `magic = u64::MAX / d + 1`, wrapping (to 0 for `d = 1`).
#[inline(always)]
fn fastmod(a: u32, magic: u64, d: u32) -> u32 {
    let low = magic.wrapping_mul(a as u64);
    ((low as u128 * d as u128) >> 64) as u32
}

/// The dictionary as stored, before it is checked against the input matrix.
pub(crate) struct RawDictionary {
    pub(crate) dict: Dictionary,
    pub(crate) pruneidx_size: i64,
    /// The largest `pruneidx` row, if any.
    pub(crate) max_pruned_row: Option<i32>,
}

impl Dictionary {
    /// `Dictionary::load`, with `args` = (minn, maxn, bucket, wordNgrams) as the model's
    /// args say (after fastText's version-11 fix-up).
    pub(crate) fn read<R: BufRead>(
        r: &mut Reader<R>,
        minn: i32,
        maxn: i32,
        bucket: i32,
        word_ngrams: i32,
    ) -> Result<RawDictionary> {
        let size = r.i32("dictionary size")?;
        let nwords = r.i32("dictionary word count")?;
        let nlabels = r.i32("dictionary label count")?;
        let _ntokens = r.i64("dictionary token count")?;
        let pruneidx_size = r.i64("dictionary pruneidx size")?;
        if size < 0 || nwords < 0 || nlabels < 0 || nwords.checked_add(nlabels) != Some(size) {
            return Err(r.invalid(format!(
                "the dictionary has {size} entries, {nwords} words and {nlabels} labels"
            )));
        }
        let hashes_ngrams = maxn >= minn.max(1) || word_ngrams > 1;
        if hashes_ngrams && bucket <= 0 {
            return Err(r.invalid(format!(
                "bucket = {bucket}, but the model hashes character n-grams (minn {minn}, maxn {maxn}) or word n-grams (wordNgrams {word_ngrams}) into buckets"
            )));
        }
        // Each entry takes at least 10 bytes (NUL, count, type): the capacity is capped so
        // that a corrupt size fails on reading, not on allocating.
        let mut arena = Vec::new();
        let mut offsets = Vec::with_capacity((size as usize).min(1 << 20) + 1);
        let mut counts = Vec::with_capacity((size as usize).min(1 << 20));
        offsets.push(0);
        for i in 0..size {
            r.cstr("a dictionary word", &mut arena)?;
            offsets.push(arena.len());
            counts.push(r.i64("a dictionary count")?);
            let ty = r.u8("a dictionary entry type")?;
            let want = u8::from(i >= nwords);
            if ty != want {
                return Err(r.invalid(format!(
                    "dictionary entry {i} has type {ty}; fastText stores the {nwords} words (type 0) before the {nlabels} labels (type 1)"
                )));
            }
        }
        let mut pairs = Vec::new();
        let mut max_pruned_row = None;
        if pruneidx_size > 0 {
            let n = r.need("pruneidx", pruneidx_size as u64, 8)? / 8;
            pairs.reserve(n);
            for _ in 0..n {
                let k = r.i32("a pruneidx bucket")?;
                let v = r.i32("a pruneidx row")?;
                pairs.push((k, v));
            }
            // Only the value a key ends up with is ever used.
            let table = PruneTable::new(&pairs);
            for &(k, v) in &table.slots {
                if k != -1 {
                    if v < 0 {
                        return Err(r.invalid(format!("pruneidx maps bucket {k} to row {v}")));
                    }
                    max_pruned_row = Some(max_pruned_row.map_or(v, |m: i32| m.max(v)));
                }
            }
        }
        let prune = match pruneidx_size {
            0 => Prune::All,
            n if n > 0 => {
                let table = PruneTable::new(&pairs);
                if (1..=MAX_BITMAP_BUCKETS).contains(&bucket) {
                    Prune::Bits(PruneBits::new(&table, bucket, nwords))
                } else {
                    Prune::Map(table)
                }
            }
            _ => Prune::No,
        };
        let mut table = WordTable::new(size as usize);
        let mask = table.slots.len() - 1;
        for i in 0..size as usize {
            let w = &arena[offsets[i]..offsets[i + 1]];
            let h = hash(w);
            let mut s = table.start(h);
            loop {
                let (sh, id) = table.slots[s];
                if id == -1
                    || (sh == h && &arena[offsets[id as usize]..offsets[id as usize + 1]] == w)
                {
                    table.slots[s] = (h, i as i32);
                    break;
                }
                s = (s + 1) & mask;
            }
        }
        let mut dict = Dictionary {
            nwords,
            nlabels,
            arena,
            offsets,
            counts,
            table,
            subwords: Vec::new(),
            sub_start: Vec::new(),
            prune,
            minn,
            maxn,
            bucket,
            bucket_magic: if bucket > 0 {
                (u64::MAX / bucket as u64).wrapping_add(1)
            } else {
                0
            },
            word_ngrams,
        };
        dict.init_ngrams();
        Ok(RawDictionary {
            dict,
            pruneidx_size,
            max_pruned_row,
        })
    }

    /// The number of entries (words, then labels).
    pub(crate) fn size(&self) -> usize {
        self.offsets.len() - 1
    }

    pub(crate) fn entry(&self, i: usize) -> &[u8] {
        &self.arena[self.offsets[i]..self.offsets[i + 1]]
    }

    /// `initNgrams` for the words (labels' n-grams are never used).
    fn init_ngrams(&mut self) {
        let mut subwords = Vec::new();
        let mut sub_start = Vec::with_capacity(self.nwords as usize + 1);
        let mut buf = Vec::new();
        let mut buckets = Vec::new();
        for i in 0..self.nwords as usize {
            sub_start.push(subwords.len());
            subwords.push(i as i32);
            let w = self.entry(i);
            if w != EOS {
                buf.clear();
                buf.push(b'<');
                buf.extend_from_slice(w);
                buf.push(b'>');
                self.subword_rows(&buf, &mut buckets, &mut subwords);
            }
        }
        sub_start.push(subwords.len());
        self.subwords = subwords;
        self.sub_start = sub_start;
    }

    /// Counts of the labels, in label order (`getCounts(entry_type::label)`).
    pub(crate) fn label_counts(&self) -> &[i64] {
        &self.counts[self.nwords as usize..]
    }

    pub(crate) fn label(&self, i: usize) -> &[u8] {
        self.entry(self.nwords as usize + i)
    }

    /// Whether any character or word n-gram is ever hashed into a bucket.
    pub(crate) fn hashes_ngrams(&self) -> bool {
        self.maxn >= self.minn.max(1) || self.word_ngrams > 1
    }

    /// The id of `w` (hash `h`), or `None`: `Dictionary::getId`.
    #[inline]
    pub(crate) fn find(&self, w: &[u8], h: u32) -> Option<i32> {
        let t = &self.table;
        let mask = t.slots.len() - 1;
        let mut s = t.start(h);
        loop {
            let (sh, id) = t.slots[s];
            if id == -1 {
                return None;
            }
            if sh == h && self.entry(id as usize) == w {
                return Some(id);
            }
            s = (s + 1) & mask;
        }
    }

    /// Input rows of in-vocabulary word `id` (`getSubwords(id)`).
    #[inline]
    pub(crate) fn word_rows(&self, id: usize) -> &[i32] {
        &self.subwords[self.sub_start[id]..self.sub_start[id + 1]]
    }

    /// `pushHash`: the input row of n-gram bucket `id`, if the model kept it.
    #[inline(always)]
    pub(crate) fn bucket_row(&self, id: i32) -> Option<i32> {
        match &self.prune {
            Prune::No => Some(self.nwords + id),
            Prune::All => None,
            Prune::Bits(b) => b.get(id),
            Prune::Map(t) => t.get(id).map(|v| self.nwords + v),
        }
    }

    /// `computeSubwords(word)` for `word` = `<token>`: appends to `out` the input row of
    /// every character n-gram of [`subword_buckets`], in fastText's order. `buckets` is
    /// scratch space.
    ///
    /// All buckets are hashed first and looked up after, in a loop of their own: the
    /// lookups of a pruned model mostly miss the cache, and away from the hashing the
    /// processor overlaps them (lid.176 predicts about 5% faster).
    #[inline]
    pub(crate) fn subword_rows(&self, word: &[u8], buckets: &mut Vec<u32>, out: &mut Vec<i32>) {
        let (minn, maxn) = (self.minn, self.maxn);
        if maxn < minn.max(1) {
            return;
        }
        let (bucket, magic) = (self.bucket as u32, self.bucket_magic);
        let len = word.len();
        buckets.clear();
        if (minn, maxn) == (2, 4) && word.is_ascii() && len >= 4 {
            ascii_2_4_buckets(word, bucket, magic, buckets);
        } else {
            subword_buckets(word, minn, maxn, bucket, magic, buckets);
        }
        match &self.prune {
            Prune::Bits(b) => b.rows_of(buckets, out),
            _ => out.extend(buckets.iter().filter_map(|&k| self.bucket_row(k as i32))),
        }
    }

    /// `addWordNgrams`: hashes of word n-grams of 2..=wordNgrams words, from the tokens'
    /// hashes as fastText keeps them (`int32_t`, sign-extended to 64 bits).
    pub(crate) fn word_ngram_rows(&self, hashes: &[i32], mut push: impl FnMut(i32)) {
        let n = self.word_ngrams as i64;
        let bucket = self.bucket as u64;
        for i in 0..hashes.len() {
            let mut h = hashes[i] as i64 as u64;
            let mut j = i + 1;
            while j < hashes.len() && (j as i64) < i as i64 + n {
                h = h
                    .wrapping_mul(116_049_371)
                    .wrapping_add(hashes[j] as i64 as u64);
                if let Some(row) = self.bucket_row((h % bucket) as i32) {
                    push(row);
                }
                j += 1;
            }
        }
    }
}

/// The n-gram buckets of `word` (`<token>`) for `Dictionary::subword_rows`, in fastText's
/// order: for each character start, the n-grams of `minn..=maxn` characters (UTF-8
/// sequences count as one), skipping the lone `<` and `>`; each hash extended byte by byte.
fn subword_buckets(
    word: &[u8],
    minn: i32,
    maxn: i32,
    bucket: u32,
    magic: u64,
    buckets: &mut Vec<u32>,
) {
    let len = word.len();
    for i in 0..len {
        if word[i] & 0xC0 == 0x80 {
            continue;
        }
        let mut h = FNV_OFFSET;
        let mut j = i;
        let mut n = 1;
        while j < len && n <= maxn {
            h = hash_step(h, word[j]);
            j += 1;
            while j < len && word[j] & 0xC0 == 0x80 {
                h = hash_step(h, word[j]);
                j += 1;
            }
            if n >= minn && !(n == 1 && (i == 0 || j == len)) {
                // `int32_t h = hash(ngram) % args_->bucket` (unsigned arithmetic).
                buckets.push(fastmod(h, magic, bucket));
            }
            n += 1;
        }
    }
}

/// [`subword_buckets`] for fastText's default n-gram range, 2 to 4 (lid.176's), on an ASCII
/// word of at least 4 bytes: the same buckets in the same order, with each start's steps
/// unrolled so that starts overlap in the processor (lid.176 predicts about 7% faster).
fn ascii_2_4_buckets(word: &[u8], bucket: u32, magic: u64, buckets: &mut Vec<u32>) {
    let len = word.len();
    let step = |h: u32, i: usize| hash_step(h, word[i]);
    for i in 0..len - 3 {
        let h2 = step(step(FNV_OFFSET, i), i + 1);
        let h3 = step(h2, i + 2);
        let h4 = step(h3, i + 3);
        buckets.extend([h2, h3, h4].map(|h| fastmod(h, magic, bucket)));
    }
    // The last three starts have fewer characters left.
    let h2 = step(step(FNV_OFFSET, len - 3), len - 2);
    let h3 = step(h2, len - 1);
    buckets.extend([h2, h3].map(|h| fastmod(h, magic, bucket)));
    buckets.push(fastmod(
        step(step(FNV_OFFSET, len - 2), len - 1),
        magic,
        bucket,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrolled_ascii_buckets_are_the_general_ones() {
        let magic = |d: u32| (u64::MAX / d as u64).wrapping_add(1);
        let mut seed = 1u64;
        for len in 4..40 {
            for _ in 0..50 {
                let word: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (seed >> 57) as u8 // ASCII, control bytes included
                    })
                    .collect();
                for d in [2_000_000u32, 1, 7] {
                    let (mut general, mut unrolled) = (Vec::new(), Vec::new());
                    subword_buckets(&word, 2, 4, d, magic(d), &mut general);
                    ascii_2_4_buckets(&word, d, magic(d), &mut unrolled);
                    assert_eq!(general, unrolled, "{word:?}, bucket {d}");
                }
            }
        }
    }

    #[test]
    fn fastmod_is_the_remainder() {
        let mut x = 0x1234_5678u32;
        for d in [1u32, 2, 3, 7, 1000, 2_000_000, 2_000_003, i32::MAX as u32] {
            let magic = (u64::MAX / d as u64).wrapping_add(1);
            for a in [0u32, 1, d - 1, d, d.wrapping_add(1), u32::MAX, u32::MAX - 1] {
                assert_eq!(fastmod(a, magic, d), a % d, "{a} % {d}");
            }
            for _ in 0..100_000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                assert_eq!(fastmod(x, magic, d), x % d, "{x} % {d}");
            }
        }
    }
}
