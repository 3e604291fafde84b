//! The input rows of recently seen out-of-vocabulary tokens, per predictor. Most of a
//! corpus's tokens are not in a language-id vocabulary (lid.176 knows 7,235 words; in
//! documentation pages 70% of tokens are other words), but they repeat: finding a token's
//! character n-gram rows again costs a few lookups instead of one hash and bucket lookup
//! per n-gram. The rows depend only on the token's bytes, so this changes no result.
//!
//! Sized for about 128,000 tokens, 14 MB per predictor (the slots 4 MB, token bytes 2 MB,
//! rows 8 MB). A task of the `language` stage sees that many distinct tokens in a few
//! thousand pages; against a quarter of the size, lid.176 predicts 8% faster on all 5,689
//! docs pages (40 MB) in one pass (152 → 165 MB/s) and 9.5% on 2,000 of them, and the same
//! on 400 pages, whose 106,000 distinct tokens fit either way (their first sight is the
//! cost there).

/// Slots of the table; it is emptied when half full or when the arenas below are full.
const SLOTS: usize = 1 << 18;
const MAX_TOKEN_BYTES: usize = 1 << 21;
const MAX_ROWS: usize = 1 << 21;
/// Longer tokens are not kept (rarely repeated, and they would crowd out the rest).
pub(crate) const MAX_TOKEN: usize = 128;
/// Nor tokens with more rows (a 128-byte token has at most 3 · 130 n-grams).
const MAX_TOKEN_ROWS: usize = u16::MAX as usize;

pub(crate) struct TokenCache {
    slots: Vec<Slot>,
    /// Slots in use.
    entries: usize,
    tokens: Vec<u8>,
    rows: Vec<i32>,
}

/// One cached token, found in one memory access: its hash, where its bytes and rows are.
/// `token_len` 0 marks an empty slot (tokens are never empty).
#[derive(Clone, Copy, Default)]
struct Slot {
    hash: u32,
    token_start: u32,
    /// Where the rows start in `rows`; or, for a token of one row, that row (one memory
    /// access fewer for most tokens, which have one row: the word's own, or one kept
    /// n-gram).
    rows_start: i32,
    token_len: u16,
    rows_len: u16,
}

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

    /// The rows cached for `token` (hash `h`).
    #[inline]
    pub(crate) fn get(&self, token: &[u8], h: u32) -> Option<&[i32]> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = Self::start(h);
        loop {
            let s = &self.slots[i];
            if s.token_len == 0 {
                return None;
            }
            if s.hash == h && s.token_len as usize == token.len() {
                let t = s.token_start as usize;
                if &self.tokens[t..t + token.len()] == token {
                    if s.rows_len == 1 {
                        return Some(std::slice::from_ref(&s.rows_start));
                    }
                    let r = s.rows_start as usize;
                    return Some(&self.rows[r..r + s.rows_len as usize]);
                }
            }
            i = (i + 1) & (SLOTS - 1);
        }
    }

    /// Remembers `rows` for `token` (not already cached).
    pub(crate) fn insert(&mut self, token: &[u8], h: u32, rows: &[i32]) {
        if token.is_empty() || token.len() > MAX_TOKEN || rows.len() > MAX_TOKEN_ROWS {
            return;
        }
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); SLOTS];
        }
        if self.entries >= SLOTS / 2
            || self.tokens.len() + token.len() > MAX_TOKEN_BYTES
            || self.rows.len() + rows.len() > MAX_ROWS
        {
            self.slots.fill(Slot::default());
            self.entries = 0;
            self.tokens.clear();
            self.rows.clear();
        }
        let slot = Slot {
            hash: h,
            token_start: self.tokens.len() as u32,
            rows_start: match rows {
                [row] => *row,
                _ => self.rows.len() as i32,
            },
            token_len: token.len() as u16,
            rows_len: rows.len() as u16,
        };
        self.tokens.extend_from_slice(token);
        if rows.len() != 1 {
            self.rows.extend_from_slice(rows);
        }
        self.entries += 1;
        let mut i = Self::start(h);
        while self.slots[i].token_len != 0 {
            i = (i + 1) & (SLOTS - 1);
        }
        self.slots[i] = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_it_keeps_and_forgets_when_full() {
        let mut c = TokenCache::new();
        assert_eq!(c.get(b"abc", 7), None);
        c.insert(b"abc", 7, &[1, 2, 3]);
        c.insert(b"abd", 7, &[4]);
        assert_eq!(c.get(b"abc", 7), Some(&[1, 2, 3][..]));
        assert_eq!(c.get(b"abd", 7), Some(&[4][..]));
        assert_eq!(c.get(b"abe", 7), None);
        for i in 0..SLOTS as u32 {
            c.insert(&i.to_le_bytes(), i.wrapping_mul(2_654_435_761), &[i as i32]);
        }
        assert_eq!(c.get(b"abc", 7), None);
        let last = SLOTS as u32 - 1;
        assert_eq!(
            c.get(&last.to_le_bytes(), last.wrapping_mul(2_654_435_761)),
            Some(&[last as i32][..])
        );
    }
}
