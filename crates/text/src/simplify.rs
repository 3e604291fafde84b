//! datatrove 0.10.1's `simplify_text` (`datatrove/utils/text.py`), then spaCy's blank
//! English word tokenizer on the simplified text, then word n-grams: what datatrove's
//! MinHash deduplication hashes.

use std::collections::HashMap;
use std::sync::OnceLock;

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

use crate::tables::{ICON_RANGES, PUNCTUATION_NON_ASCII, SPACY_EXCEPTIONS, UNITS};

fn is_ascii_punct(b: u8) -> bool {
    // datatrove's PUNCTUATION holds every ASCII symbol, the control characters except
    // tab and newline, and DEL; tab and newline are whitespace: all become a space.
    !b.is_ascii_alphanumeric()
}

fn is_punct(c: char) -> bool {
    if c.is_ascii() {
        return is_ascii_punct(c as u8);
    }
    let u = c as u32;
    (0x7f..0xa0).contains(&u) || PUNCTUATION_NON_ASCII.binary_search(&c).is_ok()
}

const DECIMAL_SEPARATORS: [char; 7] = ['.', ',', '،', '٫', '⎖', '⎗', '⎘'];

fn is_digit(c: char) -> bool {
    c.is_ascii_digit()
        || (!c.is_ascii() && get_general_category(c) == GeneralCategory::DecimalNumber)
}

/// datatrove's `simplify_text` with its default `TextNormConfig`: lowercase; every number
/// (`\p{Nd}+` with at most one decimal part) becomes `0`; datatrove's punctuation becomes
/// a space; whitespace runs become one space and the ends are stripped; then NFD and
/// combining marks (category Mn) are removed.
pub fn simplify_text(text: &str, out: &mut String) {
    simplify_text_with(text, true, out)
}

/// [`simplify_text`], with numbers replaced by `0` only when `norm_numbers` (datatrove's
/// `TextNormConfig.norm_numbers`); otherwise digits are kept like letters.
pub fn simplify_text_with(text: &str, norm_numbers: bool, out: &mut String) {
    out.clear();
    if text.is_ascii() {
        simplify_ascii(text.as_bytes(), norm_numbers, out);
        return;
    }
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut spaced = String::with_capacity(lower.len());
    let mut pending_space = false;
    let push = |c: char, spaced: &mut String, pending: &mut bool| {
        if c == ' ' {
            *pending = true;
        } else {
            if *pending && !spaced.is_empty() {
                spaced.push(' ');
            }
            *pending = false;
            spaced.push(c);
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if norm_numbers && is_digit(c) {
            while i < chars.len() && is_digit(chars[i]) {
                i += 1;
            }
            if i + 1 < chars.len()
                && DECIMAL_SEPARATORS.contains(&chars[i])
                && is_digit(chars[i + 1])
            {
                i += 1;
                while i < chars.len() && is_digit(chars[i]) {
                    i += 1;
                }
            }
            push('0', &mut spaced, &mut pending_space);
            continue;
        }
        if is_punct(c) || c.is_whitespace() {
            push(' ', &mut spaced, &mut pending_space);
        } else {
            push(c, &mut spaced, &mut pending_space);
        }
        i += 1;
    }
    for c in spaced.nfd() {
        if get_general_category(c) != GeneralCategory::NonspacingMark {
            out.push(c);
        }
    }
    let trimmed = out.trim();
    if trimmed.len() != out.len() {
        *out = trimmed.to_string();
    }
}

fn simplify_ascii(b: &[u8], norm_numbers: bool, out: &mut String) {
    let mut buf = std::mem::take(out).into_bytes();
    buf.clear();
    buf.reserve(b.len());
    let mut pending_space = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let emit = if norm_numbers && c.is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < b.len() && (b[i] == b'.' || b[i] == b',') && b[i + 1].is_ascii_digit() {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            b'0'
        } else {
            i += 1;
            if is_ascii_punct(c) {
                pending_space = true;
                continue;
            }
            c.to_ascii_lowercase()
        };
        if pending_space && !buf.is_empty() {
            buf.push(b' ');
        }
        pending_space = false;
        buf.push(emit);
    }
    // Only ASCII bytes were pushed.
    *out = String::from_utf8(buf).expect("ASCII");
}

/// A word of at most 16 bytes as one number (zero-padded), for cheap lookups.
fn pack(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() > 16 {
        return None;
    }
    let mut x = [0u8; 16];
    x[..b.len()].copy_from_slice(b);
    Some(u128::from_le_bytes(x))
}

/// Hashes a packed word with one multiplication (the keys are a fixed, small set).
#[derive(Default)]
struct PackedHasher(u64);

impl std::hash::Hasher for PackedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u128(&mut self, x: u128) {
        self.0 =
            ((x as u64) ^ ((x >> 64) as u64).rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type SpecialMap =
    HashMap<u128, &'static [&'static str], std::hash::BuildHasherDefault<PackedHasher>>;

/// spaCy's special cases, by packed text (all are shorter than 16 bytes), and a quick
/// test that rules most words out before the lookup.
struct Specials {
    map: SpecialMap,
    /// Bit `first_class(k[0])` of `maybe[k.len()]` is set for every key `k`.
    maybe: [u32; 17],
}

fn first_class(b: u8) -> u32 {
    match b {
        b'a'..=b'z' => (b - b'a') as u32,
        b'0'..=b'9' => 26,
        _ => 27,
    }
}

fn special_cases() -> &'static Specials {
    static MAP: OnceLock<Specials> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut maybe = [0u32; 17];
        let mut map = SpecialMap::default();
        // Only exceptions whose text can survive normalisation: lowercase ASCII letters
        // and digits.
        let survives = |k: &str| {
            k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        for (k, v) in SPACY_EXCEPTIONS.iter().filter(|(k, _)| survives(k)) {
            if let Some(p) = pack(k) {
                maybe[k.len()] |= 1 << first_class(k.as_bytes()[0]);
                map.insert(p, *v);
            }
        }
        Specials { map, maybe }
    })
}

fn special(s: &str) -> Option<&'static [&'static str]> {
    let sp = special_cases();
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 16 || sp.maybe[b.len()] & (1 << first_class(b[0])) == 0 {
        return None;
    }
    sp.map.get(&pack(s)?).copied()
}

/// The length of the unit spaCy's suffix rule splits off the end of `s` (a unit right
/// after an ASCII digit; the leftmost match, that is the longest unit).
fn unit_suffix(s: &str) -> Option<usize> {
    if !s.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    UNITS
        .iter()
        .filter(|u| {
            s.len() > u.len()
                && s.ends_with(*u)
                && s.as_bytes()[s.len() - u.len() - 1].is_ascii_digit()
        })
        .map(|u| u.len())
        .max()
}

fn is_icon(c: char) -> bool {
    let u = c as u32;
    u >= 0xA6 && {
        let i = ICON_RANGES.partition_point(|r| r.1 < u);
        i < ICON_RANGES.len() && ICON_RANGES[i].0 <= u
    }
}

/// Split simplified text into words as datatrove's English word tokenizer (a blank spaCy
/// pipeline) does: on spaces; spaCy's icon symbols (`©`, `°`, `�`, emoji, …) each become a
/// word of their own; then spaCy's tokenizer exceptions (`cannot` → `can not`, `id` →
/// `i d`) and its unit suffixes after digits (`0km` → `0 km`). spaCy's other prefix, suffix
/// and infix rules only concern characters datatrove's normalisation has already turned
/// into spaces, except a few (`‘`, `§`, currency signs), which stay attached here.
pub fn words<'a>(simplified: &'a str, out: &mut Vec<&'a str>) {
    out.clear();
    for tok in simplified.split(' ') {
        if tok.is_ascii() {
            split_affixes(tok, out);
            continue;
        }
        let mut start = 0;
        for (i, c) in tok.char_indices() {
            if is_icon(c) {
                split_affixes(&tok[start..i], out);
                out.push(&tok[i..i + c.len_utf8()]);
                start = i + c.len_utf8();
            }
        }
        split_affixes(&tok[start..], out);
    }
}

fn split_affixes<'a>(tok: &'a str, out: &mut Vec<&'a str>) {
    if tok.is_empty() {
        return;
    }
    // Most words: no exception, no digit (so no unit suffix).
    if let Some(parts) = special(tok) {
        out.extend(parts.iter().copied());
        return;
    }
    if !tok.bytes().any(|b| b.is_ascii_digit()) {
        out.push(tok);
        return;
    }
    let mut s = tok;
    let mut suffixes: Vec<&'a str> = Vec::new();
    while special(s).is_none() {
        match unit_suffix(s) {
            Some(n) => {
                suffixes.push(&s[s.len() - n..]);
                s = &s[..s.len() - n];
            }
            None => break,
        }
    }
    match special(s) {
        Some(parts) => out.extend(parts.iter().copied()),
        None => out.push(s),
    }
    out.extend(suffixes.iter().rev());
}

/// The word n-grams of `words` joined by spaces, as datatrove's `ngrams` yields them
/// (none when there are fewer than `n` words), each passed to `f`.
///
/// `simplified` is the text the words were split from: an n-gram whose words stand in it
/// one space apart (nearly all of them) is passed as that slice of it, without copying;
/// the others (words spaCy split apart or replaced) are joined in `buf`.
pub fn for_each_ngram(
    simplified: &str,
    words: &[&str],
    n: usize,
    buf: &mut String,
    mut f: impl FnMut(&str),
) {
    if n == 0 || words.len() < n {
        return;
    }
    let base = simplified.as_ptr() as usize;
    let end = base + simplified.len();
    // The offset of each word in `simplified`, or None for words that are not in it.
    let offset = |w: &str| {
        let p = w.as_ptr() as usize;
        (p >= base && p + w.len() <= end).then(|| p - base)
    };
    // gap[i]: words i and i + 1 are not one space apart in `simplified`.
    let bytes = simplified.as_bytes();
    let gap = |i: usize| match (offset(words[i]), offset(words[i + 1])) {
        (Some(a), Some(b)) => {
            let e = a + words[i].len();
            !(b == e + 1 && bytes[e] == b' ')
        }
        _ => true,
    };
    // Gaps inside the current window.
    let mut gaps = (0..n - 1).filter(|&i| gap(i)).count();
    for start in 0..=words.len() - n {
        if start > 0 {
            gaps += gap(start + n - 2) as usize;
            gaps -= gap(start - 1) as usize;
        }
        let w = &words[start..start + n];
        if gaps == 0
            && let Some(a) = offset(w[0])
        {
            let last = w[n - 1];
            let b = last.as_ptr() as usize - base + last.len();
            f(&simplified[a..b]);
            continue;
        }
        buf.clear();
        for (i, x) in w.iter().enumerate() {
            if i > 0 {
                buf.push(' ');
            }
            buf.push_str(x);
        }
        f(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simplify(s: &str) -> String {
        let mut o = String::new();
        simplify_text(s, &mut o);
        o
    }

    fn split(s: &str) -> Vec<String> {
        let t = simplify(s);
        let mut w = Vec::new();
        words(&t, &mut w);
        w.into_iter().map(String::from).collect()
    }

    // Expected values printed by datatrove 0.10.1's simplify_text and its English
    // word tokenizer (spaCy 3.8) on the same strings.
    #[test]
    fn simplify_matches_datatrove() {
        assert_eq!(
            simplify("  Hello,   World!\n\tIt's 3.14 or 1,000,000 "),
            "hello world it s 0 or 0 0"
        );
        assert_eq!(
            simplify("def f(x_1):\n    return x_1+2"),
            "def f x 0 return x 0 0"
        );
        assert_eq!(
            simplify("Café «naïve» — ÉTÉ ١٢٣ Σοφός"),
            "cafe naive ete 0 σοφος"
        );
        assert_eq!(simplify("a\u{0085}b\u{00a0}c"), "a b c");
        assert_eq!(simplify("!!!"), "");
    }

    #[test]
    fn spacy_exceptions_and_units_split_words() {
        assert_eq!(
            split("I cannot id it, dont 10km 5MB x1m"),
            [
                "i", "can", "not", "i", "d", "it", "do", "nt", "0", "km", "0", "mb", "x0", "m"
            ]
        );
    }

    #[test]
    fn ngrams_need_n_words() {
        let mut got = Vec::new();
        let mut buf = String::new();
        for_each_ngram("", &["a", "b", "c"], 2, &mut buf, |g| {
            got.push(g.to_string())
        });
        assert_eq!(got, ["a b", "b c"]);
        got.clear();
        for_each_ngram("", &["a"], 2, &mut buf, |g| got.push(g.to_string()));
        assert!(got.is_empty());
    }

    #[test]
    fn ngrams_are_slices_or_joined_words() {
        // Split words (`cannot`, `0km`) are joined; the rest are slices of the text.
        let t = simplify("I cannot go 10km, I think; so it goes");
        let mut w = Vec::new();
        words(&t, &mut w);
        let mut got = Vec::new();
        let mut buf = String::new();
        for_each_ngram(&t, &w, 3, &mut buf, |g| got.push(g.to_string()));
        let want: Vec<String> = w.windows(3).map(|x| x.join(" ")).collect();
        assert_eq!(got, want);
    }
}
