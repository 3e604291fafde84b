//! The input rows of recently seen out-of-vocabulary tokens, per predictor. Most of a
//! corpus's tokens are not in a language-id vocabulary (lid.176 knows 7,235 words; in
//! documentation pages 70% of tokens are other words), but they repeat: finding a token's
//! character n-gram rows again costs a few lookups instead of one hash and bucket lookup
//! per n-gram. The rows depend only on the token's bytes, so this changes no result.

/// Slots of the table; it is emptied when half full or when the arenas below are full.
const SLOTS: usize = 1 << 15;
const MAX_TOKEN_BYTES: usize = 1 << 18;
const MAX_ROWS: usize = 1 << 18;
/// Longer tokens are not kept (rarely repeated, and they would crowd out the rest).
pub(crate) const MAX_TOKEN: usize = 128;

pub(crate) struct TokenCache {
    /// (token hash, entry + 1); 0: empty.
    slots: Vec<(u32, u32)>,
    /// (token start, token end, rows start, rows end).
    entries: Vec<(u32, u32, u32, u32)>,
    tokens: Vec<u8>,
    rows: Vec<i32>,
}

impl TokenCache {
    pub(crate) fn new() -> Self {
        TokenCache {
            slots: Vec::new(),
            entries: Vec::new(),
            tokens: Vec::new(),
            rows: Vec::new(),
        }
    }

    #[inline(always)]
    fn start(h: u32) -> usize {
        (h.wrapping_mul(0x9E37_79B1) >> (32 - SLOTS.trailing_zeros())) as usize
    }

    /// The rows cached for `token` (hash `h`).
    #[inline]
    pub(crate) fn get(&self, token: &[u8], h: u32) -> Option<&[i32]> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = Self::start(h);
        loop {
            let (sh, e) = self.slots[i];
            if e == 0 {
                return None;
            }
            if sh == h {
                let (ts, te, rs, re) = self.entries[e as usize - 1];
                if &self.tokens[ts as usize..te as usize] == token {
                    return Some(&self.rows[rs as usize..re as usize]);
                }
            }
            i = (i + 1) & (SLOTS - 1);
        }
    }

    /// Remembers `rows` for `token` (not already cached).
    pub(crate) fn insert(&mut self, token: &[u8], h: u32, rows: &[i32]) {
        if token.len() > MAX_TOKEN || rows.len() > MAX_ROWS {
            return;
        }
        if self.slots.is_empty() {
            self.slots = vec![(0, 0); SLOTS];
        }
        if self.entries.len() >= SLOTS / 2
            || self.tokens.len() + token.len() > MAX_TOKEN_BYTES
            || self.rows.len() + rows.len() > MAX_ROWS
        {
            self.slots.fill((0, 0));
            self.entries.clear();
            self.tokens.clear();
            self.rows.clear();
        }
        let e = (
            self.tokens.len() as u32,
            (self.tokens.len() + token.len()) as u32,
            self.rows.len() as u32,
            (self.rows.len() + rows.len()) as u32,
        );
        self.tokens.extend_from_slice(token);
        self.rows.extend_from_slice(rows);
        self.entries.push(e);
        let mut i = Self::start(h);
        while self.slots[i].1 != 0 {
            i = (i + 1) & (SLOTS - 1);
        }
        self.slots[i] = (h, self.entries.len() as u32);
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
