//! The input rows of recently seen out-of-vocabulary tokens, per predictor. Most of a
//! corpus's tokens are not in a language-id vocabulary (lid.176 knows 7,235 words; in
//! documentation pages 70% of tokens are other words), but they repeat: finding a token's
//! character n-gram rows again costs a few lookups instead of one hash and bucket lookup
//! per n-gram. The rows depend only on the token's bytes, so this changes no result.
//!
//! Sized for about 128,000 tokens, 18 MB per predictor (the slots 8 MB, the bytes of
//! tokens longer than 16 bytes up to 2 MB, rows 8 MB). A task of the `language` stage sees
//! that many distinct tokens in a few thousand pages; against a quarter of the size,
//! lid.176 predicted 8% faster on all 5,689 docs pages (40 MB) in one pass (152 → 165
//! MB/s) and 9.5% on 2,000 of them, and the same on 400 pages, whose 106,000 distinct
//! tokens fit either way (their first sight is the cost there).
//!
//! A slot (32 bytes, two to a cache line) holds a token of up to 16 bytes itself, as its
//! length and first and last eight bytes, so a lookup reads no token bytes (6% faster on a
//! DCLM-shaped classifier); and fastText's hash of the token, which models with word
//! n-grams need for every token (107 → 125 MB/s there). Neither changed lid.176's speed
//! measurably; a 20-byte slot straddling cache lines had made it 5–10% slower.

/// Slots of the table; it is emptied when half full or when the arenas below are full.
const SLOTS: usize = 1 << 18;
const MAX_TOKEN_BYTES: usize = 1 << 21;
const MAX_ROWS: usize = 1 << 21;
/// Nor tokens with more rows (a 128-byte token has at most 3 · 130 n-grams): their count
/// shares 32 bits with where they start.
const MAX_TOKEN_ROWS: usize = (1 << 10) - 1;
/// Longer tokens are not kept (rarely repeated, and they would crowd out the rest).
pub(crate) const MAX_TOKEN: usize = 128;

pub(crate) struct TokenCache {
    slots: Vec<Slot>,
    /// Slots in use.
    entries: usize,
    tokens: Vec<u8>,
    rows: Vec<i32>,
}

/// One cached token, found in one memory access: its hash, the token itself (up to 16
/// bytes) or where it is, where its rows are. A `token` of 0 (length 0) marks an empty
/// slot (tokens are never empty). 32 bytes, two to a cache line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Slot {
    /// The token's `predict::token_parts`: with its length, the token itself up to 16
    /// bytes, so that most lookups read no token bytes.
    parts: (u64, u64),
    hash: u32,
    /// fastText's hash of the token (`Dictionary::hash`), which word n-grams need.
    fnv: u32,
    /// The token's one row (one memory access fewer for most tokens, which have one row:
    /// the word's own, or one kept n-gram); or, with [`MANY_ROWS`], where its rows start
    /// in `rows` (the low 21 bits) and how many there are (the high bits).
    rows: i32,
    /// The token's length (the low 8 bits), [`MANY_ROWS`], and where its bytes start in
    /// `tokens` (the high 23 bits; tokens of up to 16 bytes are not stored there).
    token: u32,
}

const MANY_ROWS: u32 = 1 << 8;
const TOKEN_START_SHIFT: u32 = 9;

impl TokenCache {
    pub(crate) fn new() -> Self {
        TokenCache {
            slots: Vec::new(),
            entries: 0,
            tokens: Vec::new(),
            rows: Vec::new(),
        }
    }

    #[inline(always)]
    fn start(h: u32) -> usize {
        (h.wrapping_mul(0x9E37_79B1) >> (32 - SLOTS.trailing_zeros())) as usize
    }

    /// Asks the processor to fetch the slot where a lookup of hash `h` starts.
    #[inline(always)]
    pub(crate) fn prefetch(&self, h: u32) {
        #[cfg(target_arch = "x86_64")]
        if let Some(s) = self.slots.get(Self::start(h)) {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let p: *const Slot = s;
            // SAFETY: a prefetch is only a hint, and `p` points into `slots`.
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p.cast())
            };
        }
    }

    /// The rows cached for `token` (hash `h`, parts `parts`), and its fastText hash.
    #[inline(always)]
    pub(crate) fn get(&self, token: &[u8], h: u32, parts: (u64, u64)) -> Option<(&[i32], u32)> {
        if self.slots.is_empty() {
            return None;
        }
        let n = token.len();
        let mut i = Self::start(h);
        loop {
            let s = &self.slots[i];
            if s.token == 0 {
                return None;
            }
            if s.hash == h && (s.token & 0xFF) as usize == n && s.parts == parts {
                let same = n <= 16 || {
                    let t = (s.token >> TOKEN_START_SHIFT) as usize;
                    self.tokens[t..t + n] == *token
                };
                if same {
                    if s.token & MANY_ROWS == 0 {
                        return Some((std::slice::from_ref(&s.rows), s.fnv));
                    }
                    let r = s.rows as usize & (MAX_ROWS - 1);
                    let n = s.rows as usize >> MAX_ROWS.trailing_zeros();
                    return Some((&self.rows[r..r + n], s.fnv));
                }
            }
            i = (i + 1) & (SLOTS - 1);
        }
    }

    /// Remembers `rows` and fastText's hash `fnv` for `token` (not already cached).
    pub(crate) fn insert(
        &mut self,
        token: &[u8],
        h: u32,
        parts: (u64, u64),
        fnv: u32,
        rows: &[i32],
    ) {
        if token.is_empty() || token.len() > MAX_TOKEN || rows.len() > MAX_TOKEN_ROWS {
            return;
        }
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); SLOTS];
        }
        if self.entries >= SLOTS / 2
            || self.tokens.len() + token.len() > MAX_TOKEN_BYTES
            || self.rows.len() + rows.len() >= MAX_ROWS
        {
            self.slots.fill(Slot::default());
            self.entries = 0;
            self.tokens.clear();
            self.rows.clear();
        }
        let mut packed = (self.tokens.len() as u32) << TOKEN_START_SHIFT | token.len() as u32;
        let rows = match rows {
            [row] => *row,
            _ => {
                packed |= MANY_ROWS;
                let r = self.rows.len() | rows.len() << MAX_ROWS.trailing_zeros();
                self.rows.extend_from_slice(rows);
                r as i32
            }
        };
        if token.len() > 16 {
            self.tokens.extend_from_slice(token);
        }
        self.entries += 1;
        let mut i = Self::start(h);
        while self.slots[i].token != 0 {
            i = (i + 1) & (SLOTS - 1);
        }
        self.slots[i] = Slot {
            parts,
            hash: h,
            fnv,
            rows,
            token: packed,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::token_parts;

    #[test]
    fn tokens_of_every_length_are_told_apart() {
        let mut c = TokenCache::new();
        let text = [b'x'; MAX_TOKEN + 1];
        let text: Vec<u8> = text
            .iter()
            .enumerate()
            .map(|(i, _)| b'a' + (i % 26) as u8)
            .collect();
        // Every prefix under one hash, with one row, none or several: only the bytes
        // tell them apart.
        let rows =
            |n: usize| -> Vec<i32> { (0..n as i32 % 3).map(|r| r * 1000 + n as i32).collect() };
        for n in 1..=MAX_TOKEN {
            c.insert(&text[..n], 9, token_parts(&text[..n]), n as u32, &rows(n));
        }
        c.insert(&text, 9, token_parts(&text), 0, &[1]); // too long to keep
        assert_eq!(c.get(&text, 9, token_parts(&text)), None);
        for n in 1..=MAX_TOKEN {
            assert_eq!(
                c.get(&text[..n], 9, token_parts(&text[..n])),
                Some((&rows(n)[..], n as u32))
            );
            let mut t = text[..n].to_vec();
            t[n / 2] ^= 0x20;
            assert_eq!(c.get(&t, 9, token_parts(&t)), None, "{n} bytes");
        }
    }

    #[test]
    fn finds_what_it_keeps_and_forgets_when_full() {
        let mut c = TokenCache::new();
        assert_eq!(c.get(b"abc", 7, token_parts(b"abc")), None);
        c.insert(b"abc", 7, token_parts(b"abc"), 70, &[1, 2, 3]);
        c.insert(b"abd", 7, token_parts(b"abd"), 71, &[4]);
        assert_eq!(
            c.get(b"abc", 7, token_parts(b"abc")),
            Some((&[1, 2, 3][..], 70))
        );
        assert_eq!(c.get(b"abd", 7, token_parts(b"abd")), Some((&[4][..], 71)));
        assert_eq!(c.get(b"abe", 7, token_parts(b"abe")), None);
        for i in 0..SLOTS as u32 {
            let t = i.to_le_bytes();
            c.insert(
                &t,
                i.wrapping_mul(2_654_435_761),
                token_parts(&t),
                i,
                &[i as i32],
            );
        }
        assert_eq!(c.get(b"abc", 7, token_parts(b"abc")), None);
        let last = SLOTS as u32 - 1;
        assert_eq!(
            c.get(
                &last.to_le_bytes(),
                last.wrapping_mul(2_654_435_761),
                token_parts(&last.to_le_bytes())
            ),
            Some((&[last as i32][..], last))
        );
    }
}
