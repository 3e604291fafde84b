//! Python string semantics and a word splitter that agrees with spaCy's blank English
//! tokenizer, which datatrove 0.10.1 uses to count words (`split_into_words`) and, with
//! spaCy's sentencizer, to count sentences (`split_into_sentences`).
//!
//! spaCy's tokenizer splits on whitespace, then peels prefixes (`(`, `"`, `$`, …) and
//! suffixes (`)`, `,`, `.` after a lowercase letter, `'s`, units after digits, …) off each
//! chunk until a tokenizer exception (`don't`, `e.g.`, `:)`, …) or nothing is left, then
//! splits what remains on infixes (`...`, `-` between letters, `/` before a letter, …) unless
//! it looks like a URL. The rules here are those of `spacy/lang/punctuation.py` and
//! `spacy/lang/en/punctuation.py` (3.8), written out as character tests; the exceptions
//! and character tables are generated from spaCy and datatrove (`scripts/gen_tables.py`).

use std::collections::HashMap;

use smallvec::SmallVec;
use xxhash_rust::xxh3::xxh3_64;

type Fast = crate::hash::PassBuild;
use std::sync::LazyLock;

use crate::swar;
use crate::tables;

/// Python's `str.isspace()` for one character.
pub fn py_isspace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\x0b'
            | '\x0c'
            | '\r'
            | '\x1c'..='\x1f'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

fn in_ranges(c: char, ranges: &[(u32, u32)]) -> bool {
    let c = c as u32;
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Python's `str.isalpha()` for one character (general categories L*).
pub fn py_isalpha(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    in_ranges(c, tables::ALPHA_RANGES)
}

/// Unicode general category P* (what spaCy's `is_punct` tests).
pub fn is_unicode_punct(c: char) -> bool {
    if c.is_ascii() {
        return matches!(
            c,
            '!' | '"'
                | '#'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | ','
                | '-'
                | '.'
                | '/'
                | ':'
                | ';'
                | '?'
                | '@'
                | '['
                | '\\'
                | ']'
                | '_'
                | '{'
                | '}'
        );
    }
    in_ranges(c, tables::PUNCT_RANGES)
}

/// Whether `c` is in datatrove's `PUNCTUATION_SET`.
pub fn is_datatrove_punct(c: char) -> bool {
    static ASCII: LazyLock<[bool; 128]> = LazyLock::new(|| {
        let mut t = [false; 128];
        for &c in tables::PUNCTUATION_SET.iter().filter(|c| c.is_ascii()) {
            t[c as usize] = true;
        }
        t
    });
    if c.is_ascii() {
        return ASCII[c as usize];
    }
    tables::PUNCTUATION_SET.binary_search(&c).is_ok()
}

/// Whether `c` is in datatrove's `TERMINAL_PUNCTUATION`.
pub fn is_terminal_punct(c: char) -> bool {
    tables::TERMINAL_PUNCTUATION.binary_search(&c).is_ok()
}

/// Python's `str.strip()`.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// The bytes that may start a line end of [`py_splitlines`].
static MAY_END_LINE: [bool; 256] = {
    let mut t = [false; 256];
    let ends: [u8; 9] = [b'\n', 0x0b, 0x0c, b'\r', 0x1c, 0x1d, 0x1e, 0xC2, 0xE2];
    let mut k = 0;
    while k < ends.len() {
        t[ends[k] as usize] = true;
        k += 1;
    }
    t
};

/// The index of the first byte at or after `i` that may start a line end
/// ([`MAY_END_LINE`]), or the length; eight bytes at a time.
#[inline(always)]
fn next_may_end_line(b: &[u8], mut i: usize) -> usize {
    while let Some(x) = swar::load(b, i) {
        let y = x & !swar::HIGH;
        let ascii = swar::in_range(y, 0x0A, 0x0D) | swar::in_range(y, 0x1C, 0x1E);
        // The lead bytes of U+0085 and U+2028/9 (the lowest flagged byte is exact).
        let lead = swar::eq_lowest(x, 0xC2) | swar::eq_lowest(x, 0xE2);
        let m = (ascii & !x) | lead;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !MAY_END_LINE[b[i] as usize] {
        i += 1;
    }
    i
}

/// Python's `str.splitlines()` (without the line ends).
pub fn py_splitlines(text: &str) -> Vec<&str> {
    py_lines(text).collect()
}

/// The lines of Python's `str.splitlines()` (without the line ends), one at a time.
pub fn py_lines(text: &str) -> PyLines<'_> {
    PyLines { text, start: 0 }
}

/// Iterator of [`py_lines`].
pub struct PyLines<'a> {
    text: &'a str,
    /// Where the next line starts.
    start: usize,
}

impl<'a> Iterator for PyLines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let b = self.text.as_bytes();
        let start = self.start;
        if start >= b.len() {
            return None;
        }
        let mut i = start;
        loop {
            // Skip bytes that cannot start a line end.
            i = next_may_end_line(b, i);
            let Some(&c) = b.get(i) else {
                self.start = b.len();
                return Some(&self.text[start..]);
            };
            // ASCII line ends, or the UTF-8 lead bytes of U+0085 (C2 85) and U+2028/9
            // (E2 80 A8/A9).
            let end_len = match c {
                b'\n' | 0x0b | 0x0c | 0x1c | 0x1d | 0x1e => 1,
                b'\r' => {
                    if b.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    }
                }
                0xC2 if b.get(i + 1) == Some(&0x85) => 2,
                0xE2 if b.get(i + 1) == Some(&0x80)
                    && matches!(b.get(i + 2), Some(0xA8 | 0xA9)) =>
                {
                    3
                }
                _ => 0,
            };
            if end_len > 0 {
                self.start = i + end_len;
                return Some(&self.text[start..i]);
            }
            i += 1;
        }
    }
}

/// Python's `str.split()` (runs of whitespace, no empty pieces).
pub fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(py_isspace).filter(|w| !w.is_empty())
}

/// Characters in `s` (Python's `len`).
pub fn py_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// spaCy's exceptions by the xxh3 of their text, with a bitmap over a cheap hash of the
/// first, middle and last bytes and the length (1,627 exceptions in 65,536 bits): most lookups
/// end on one bit, without hashing the text.
struct Exceptions {
    map: crate::hash::HashedMap<(&'static str, &'static [&'static str])>,
    maybe: Vec<u64>,
}

/// Bits of [`Exceptions::maybe`].
const MAYBE_BITS: u32 = 16;

/// Whether bit `i` of the bitmap `bits` is set.
#[inline(always)]
fn has_bit(bits: &[u64], i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

/// Sets bit `i` of the bitmap `bits`.
fn set_bit(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

/// The [`Exceptions::maybe`] bit of non-empty `s`.
#[inline(always)]
fn maybe_bit(s: &[u8]) -> usize {
    let n = s.len();
    let x = s[0] as u32 | (s[n / 2] as u32) << 8 | (s[n - 1] as u32) << 16 | (n as u32) << 24;
    (x.wrapping_mul(0x9E37_79B1) >> (32 - MAYBE_BITS)) as usize
}

static EXCEPTIONS: LazyLock<Exceptions> = LazyLock::new(|| {
    let mut maybe = vec![0u64; 1 << (MAYBE_BITS - 6)];
    let mut map = crate::hash::HashedMap::default();
    for &(k, v) in tables::SPACY_EXCEPTIONS {
        let old = map.insert(xxh3_64(k.as_bytes()), (k, v));
        assert!(old.is_none(), "two exceptions with one 64-bit hash");
        set_bit(&mut maybe, maybe_bit(k.as_bytes()));
    }
    Exceptions { map, maybe }
});

/// The tokens spaCy's exception `s` splits into, if `s` is one.
#[inline]
pub(crate) fn special(s: &str) -> Option<&'static [&'static str]> {
    let e = &*EXCEPTIONS;
    if s.is_empty() {
        return None;
    }
    if !has_bit(&e.maybe, maybe_bit(s.as_bytes())) {
        return None;
    }
    look_up_special(e, s)
}

#[inline(never)]
fn look_up_special(e: &Exceptions, s: &str) -> Option<&'static [&'static str]> {
    match e.map.get(&xxh3_64(s.as_bytes())) {
        Some(&(k, v)) if k == s => Some(v),
        _ => None,
    }
}

fn is_icon(c: char) -> bool {
    let u = c as u32;
    if u < 0xA6 {
        return false;
    }
    in_ranges(c, tables::ICON_RANGES)
}

/// spaCy's LIST_PUNCT single characters.
const fn is_list_punct(c: char) -> bool {
    matches!(
        c,
        '…' | ','
            | ':'
            | ';'
            | '!'
            | '?'
            | '¿'
            | '؟'
            | '¡'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '<'
            | '>'
            | '_'
            | '#'
            | '*'
            | '&'
            | '。'
            | '？'
            | '！'
            | '，'
            | '、'
            | '；'
            | '：'
            | '～'
            | '·'
            | '।'
            | '،'
            | '۔'
            | '؛'
            | '٪'
    )
}

/// spaCy's LIST_QUOTES.
const fn is_quote(c: char) -> bool {
    matches!(
        c,
        '\'' | '"'
            | '”'
            | '“'
            | '`'
            | '‘'
            | '´'
            | '’'
            | '‚'
            | ','
            | '„'
            | '»'
            | '«'
            | '「'
            | '」'
            | '『'
            | '』'
            | '（'
            | '）'
            | '〔'
            | '〕'
            | '【'
            | '】'
            | '《'
            | '》'
            | '〈'
            | '〉'
            | '\u{2329}'
            | '\u{232a}'
            | '⟦'
            | '⟧'
    )
}

fn is_currency_char(c: char) -> bool {
    matches!(
        c,
        '$' | '£' | '€' | '¥' | '฿' | '﷼' | '\u{20a0}'..='\u{20bf}'
    )
}

/// spaCy's ALPHA class.
fn is_alpha(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    in_ranges(c, tables::SPACY_ALPHA)
}
/// spaCy's ALPHA_LOWER class.
fn is_lower(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_lowercase();
    }
    in_ranges(c, tables::SPACY_ALPHA_LOWER)
}
/// spaCy's ALPHA_UPPER class.
fn is_upper(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_uppercase();
    }
    in_ranges(c, tables::SPACY_ALPHA_UPPER)
}

/// The characters of the class `[0-9{ALPHA_LOWER}%²\-\+{PUNCT}(?:{QUOTES})]` that precede a
/// suffix `.` in spaCy.
fn before_suffix_dot(c: char) -> bool {
    c.is_ascii_digit()
        || is_lower(c)
        || matches!(c, '%' | '²' | '-' | '+' | '|' | '(' | '?' | ':' | ')')
        || is_list_punct(c)
        || is_quote(c)
}

const CURRENCIES: &[&str] = &["US$", "C$", "A$"];

/// [`AFFIX`] bit of the ASCII characters that are a prefix by themselves wherever they
/// start a chunk: list punctuation, quotes, `%`, `=` and `$`.
const PREFIX: u8 = 1;
/// [`AFFIX`] bit of the ASCII characters that are a suffix by themselves wherever they end
/// a chunk: list punctuation and quotes.
const SUFFIX: u8 = 2;
/// Affix classes of the ASCII characters.
static AFFIX: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8 as char;
        let always = is_list_punct(c) || is_quote(c);
        if always || matches!(c, '%' | '=' | '$') {
            t[b] |= PREFIX;
        }
        if always {
            t[b] |= SUFFIX;
        }
        b += 1;
    }
    t
};

/// Length in bytes of spaCy's prefix at the start of `s` (0 if none).
fn find_prefix(s: &str) -> usize {
    // ASCII first characters: one table lookup for most.
    if let Some(&c) = s.as_bytes().first()
        && c < 0x80
        && !matches!(c, b'+' | b'.' | b'U' | b'C' | b'A')
    {
        return usize::from(AFFIX[c as usize] & PREFIX != 0);
    }
    find_prefix_general(s)
}

/// [`find_prefix`] for any first character.
fn find_prefix_general(s: &str) -> usize {
    let mut it = s.chars();
    let Some(c) = it.next() else { return 0 };
    if c == '+' {
        return match it.next() {
            Some(d) if d.is_ascii_digit() => 0,
            _ => 1,
        };
    }
    if c == '.' {
        let n = s.bytes().take_while(|&b| b == b'.').count();
        return if n >= 2 { n } else { 0 };
    }
    if matches!(c, '§' | '%' | '=' | '—' | '–')
        || is_list_punct(c)
        || is_quote(c)
        || is_currency_char(c)
        || is_icon(c)
    {
        return c.len_utf8();
    }
    for cur in CURRENCIES {
        if s.starts_with(cur) {
            return cur.len();
        }
    }
    0
}

/// Whether `s[i..]` (to the end) is one of spaCy's suffixes, given the text before it.
fn suffix_at(s: &str, i: usize) -> bool {
    let rest = &s[i..];
    let before = &s[..i];
    let prev = before.chars().next_back();
    let mut rc = rest.chars();
    let first = rc.next().expect("non-empty");
    let single = rc.next().is_none();
    if single
        && (is_list_punct(first) || is_quote(first) || is_icon(first) || matches!(first, '—' | '–'))
    {
        return true;
    }
    if rest == "……" || (rest.len() >= 2 && rest.bytes().all(|b| b == b'.')) {
        return true;
    }
    if matches!(rest, "'s" | "'S" | "’s" | "’S") {
        return true;
    }
    let prev_digit = prev.is_some_and(|p| p.is_ascii_digit());
    if rest == "+" && prev_digit {
        return true;
    }
    if rest == "." {
        let mut b = before.chars().rev();
        let p1 = b.next();
        let p2 = b.next();
        if let (Some(x), Some('°')) = (p1, p2)
            && matches!(x, 'F' | 'f' | 'C' | 'c' | 'K' | 'k')
        {
            return true;
        }
        if p1.is_some_and(before_suffix_dot) {
            return true;
        }
        if let (Some(x), Some(y)) = (p1, p2)
            && is_upper(x)
            && is_upper(y)
        {
            return true;
        }
    }
    if prev_digit
        && ((single && is_currency_char(first))
            || CURRENCIES.contains(&rest)
            || (may_start_unit(first) && tables::UNITS.contains(&rest)))
    {
        return true;
    }
    false
}

/// False for characters no unit starts with: every one starts with a letter or `%`. Most
/// text after a digit is more digits and punctuation (`2006`, `.4.1`, `-2`), which is then
/// not compared with each of the hundred units.
fn may_start_unit(c: char) -> bool {
    c == '%' || c.is_alphabetic()
}

/// Length in bytes of spaCy's suffix at the end of `s` (leftmost match), 0 if none.
fn find_suffix(s: &str) -> usize {
    let b = s.as_bytes();
    let n = b.len();
    if n == 0 {
        return 0;
    }
    // ASCII tails (most chunks that reach the affix loop): the candidates are the last six
    // bytes, and a byte or two rules out most of them.
    if b[n.saturating_sub(7)..].is_ascii() {
        let last = b[n - 1];
        // No suffix of two or more characters ends in list punctuation or a quote.
        if AFFIX[last as usize] & SUFFIX != 0 {
            return 1;
        }
        let dots = b.iter().rev().take_while(|&&b| b == b'.').count();
        if dots >= 2 {
            // A run of dots is a suffix, and none starts before it: no other suffix ends
            // in a dot.
            return dots;
        }
        // A suffix of two or more characters (and not dots) starts with an apostrophe
        // (`'s`) or follows a digit (units, currencies); one character that is not list
        // punctuation or a quote is a suffix only as a `.` or after a digit.
        let digit_before = |i: usize| i > 0 && b[i - 1].is_ascii_digit();
        let first = n.saturating_sub(6);
        for (i, &c) in b.iter().enumerate().skip(first) {
            if (c == b'\'' || digit_before(i) || (i == n - 1 && last == b'.')) && suffix_at(s, i) {
                return n - i;
            }
        }
        return 0;
    }
    find_suffix_general(s)
}

/// [`find_suffix`] for any tail: each of the last six characters, and the start of a
/// trailing run of dots, tried from the left.
fn find_suffix_general(s: &str) -> usize {
    if s.is_empty() {
        return 0;
    }
    // Candidates: the last 6 characters, and the start of a trailing run of dots.
    let mut starts = [0usize; 7];
    let mut n = 0;
    for (i, _) in s.char_indices().rev().take(6) {
        starts[n] = i;
        n += 1;
    }
    starts[..n].reverse();
    let dots = s.bytes().rev().take_while(|&b| b == b'.').count();
    if dots >= 2 && s.len() - dots < starts[0] {
        starts.copy_within(0..n, 1);
        starts[0] = s.len() - dots;
        n += 1;
    }
    let b = s.as_bytes();
    for (k, &i) in starts[..n].iter().enumerate() {
        // A suffix of two or more characters starts with a dot, `…` or an apostrophe, or
        // follows a digit (a unit or a currency): skip the others without matching.
        if k + 1 < n
            && !matches!(b[i], b'.' | b'\'' | 0xE2)
            && !(i > 0 && b[i - 1].is_ascii_digit())
        {
            continue;
        }
        if suffix_at(s, i) {
            return s.len() - i;
        }
    }
    0
}

/// spaCy's infixes in `s`: (start, end) byte ranges, as `finditer` finds them.
fn find_infixes(s: &str, out: &mut Vec<(usize, usize)>) {
    thread_local! {
        /// Each thread's character buffer, reused from chunk to chunk.
        static CHARS: std::cell::RefCell<Vec<(usize, char)>> = std::cell::RefCell::default();
    }
    if s.is_ascii() {
        find_infixes_ascii(s.as_bytes(), out);
        return;
    }
    CHARS.with_borrow_mut(|chars| {
        chars.clear();
        chars.extend(s.char_indices());
        find_infixes_in(s, chars, out);
    });
}

/// Whether an ASCII byte can be where an infix rule matches.
static INFIX_AT: [bool; 128] = {
    let mut t = [false; 128];
    let at = b".+-*^,~:<>=/";
    let mut k = 0;
    while k < at.len() {
        t[at[k] as usize] = true;
        k += 1;
    }
    t
};

/// [`find_infixes_in`] for an ASCII chunk: the same rules on bytes (`…`, icons, `–` and
/// `—` are not ASCII), tried only where [`INFIX_AT`] allows.
fn find_infixes_ascii(b: &[u8], out: &mut Vec<(usize, usize)>) {
    out.clear();
    let n = b.len();
    let alpha = |k: usize| b.get(k).is_some_and(u8::is_ascii_alphabetic);
    let quote = |x: u8| is_quote(x as char);
    let mut k = 0;
    while k < n {
        let c = b[k];
        if !INFIX_AT[c as usize] {
            k += 1;
            continue;
        }
        let next = b.get(k + 1).copied();
        // 1. \.\.+
        if c == b'.' && next == Some(b'.') {
            let mut j = k;
            while j < n && b[j] == b'.' {
                j += 1;
            }
            out.push((k, j));
            k = j;
            continue;
        }
        if k > 0 {
            let p = b[k - 1];
            // 4. (?<=[0-9])[+\-\*^](?=[0-9-])
            if p.is_ascii_digit()
                && matches!(c, b'+' | b'-' | b'*' | b'^')
                && next.is_some_and(|x| x.is_ascii_digit() || x == b'-')
            {
                out.push((k, k + 1));
                k += 1;
                continue;
            }
            // 5. (?<=[{al}{q}])\.(?=[{au}{q}])
            if c == b'.'
                && (p.is_ascii_lowercase() || quote(p))
                && next.is_some_and(|x| x.is_ascii_uppercase() || quote(x))
            {
                out.push((k, k + 1));
                k += 1;
                continue;
            }
            // 6. (?<=[{a}]),(?=[{a}])
            if c == b',' && p.is_ascii_alphabetic() && alpha(k + 1) {
                out.push((k, k + 1));
                k += 1;
                continue;
            }
            let p_alnum = p.is_ascii_alphanumeric();
            // 7. (?<=[{a}0-9])(?:-|--|---|~)(?=[{a}]), in the general rule's order.
            if p_alnum && matches!(c, b'-' | b'~') {
                let run = |ch: u8, len: usize| (0..len).all(|d| b.get(k + d) == Some(&ch));
                let matched = [(b'-', 1), (b'-', 2), (b'-', 3), (b'~', 1)]
                    .into_iter()
                    .find(|&(ch, len)| run(ch, len) && alpha(k + len));
                if let Some((_, len)) = matched {
                    out.push((k, k + len));
                    k += len;
                    continue;
                }
            }
            // 8. (?<=[{a}0-9])[:<>=/](?=[{a}])
            if p_alnum && matches!(c, b':' | b'<' | b'>' | b'=' | b'/') && alpha(k + 1) {
                out.push((k, k + 1));
                k += 1;
                continue;
            }
        }
        k += 1;
    }
}

fn find_infixes_in(s: &str, chars: &[(usize, char)], out: &mut Vec<(usize, usize)>) {
    out.clear();
    let n = chars.len();
    let end_of = |k: usize| if k < n { chars[k].0 } else { s.len() };
    let mut k = 0;
    while k < n {
        let (pos, c) = chars[k];
        let prev = if k > 0 { Some(chars[k - 1].1) } else { None };
        let next = chars.get(k + 1).map(|x| x.1);
        // 1. \.\.+
        if c == '.' && next == Some('.') {
            let mut j = k;
            while j < n && chars[j].1 == '.' {
                j += 1;
            }
            out.push((pos, end_of(j)));
            k = j;
            continue;
        }
        // 2. … and 3. icons
        if c == '…' || is_icon(c) {
            out.push((pos, end_of(k + 1)));
            k += 1;
            continue;
        }
        if let Some(p) = prev {
            // 4. (?<=[0-9])[+\-\*^](?=[0-9-])
            if p.is_ascii_digit()
                && matches!(c, '+' | '-' | '*' | '^')
                && next.is_some_and(|x| x.is_ascii_digit() || x == '-')
            {
                out.push((pos, end_of(k + 1)));
                k += 1;
                continue;
            }
            // 5. (?<=[{al}{q}])\.(?=[{au}{q}])
            if c == '.'
                && (is_lower(p) || is_quote(p))
                && next.is_some_and(|x| is_upper(x) || is_quote(x))
            {
                out.push((pos, end_of(k + 1)));
                k += 1;
                continue;
            }
            // 6. (?<=[{a}]),(?=[{a}])
            if c == ',' && is_alpha(p) && next.is_some_and(is_alpha) {
                out.push((pos, end_of(k + 1)));
                k += 1;
                continue;
            }
            let p_alnum = is_alpha(p) || p.is_ascii_digit();
            // 7. (?<=[{a}0-9])(?:-|–|—|--|---|——|~)(?=[{a}])
            if p_alnum && matches!(c, '-' | '–' | '—' | '~') {
                let after = |len: usize| chars.get(k + len).is_some_and(|x| is_alpha(x.1));
                let run = |ch: char, len: usize| {
                    (0..len).all(|d| chars.get(k + d).is_some_and(|x| x.1 == ch))
                };
                let mut matched = None;
                for (ch, len) in [
                    ('-', 1),
                    ('–', 1),
                    ('—', 1),
                    ('-', 2),
                    ('-', 3),
                    ('—', 2),
                    ('~', 1),
                ] {
                    if run(ch, len) && after(len) {
                        matched = Some(len);
                        break;
                    }
                }
                if let Some(len) = matched {
                    out.push((pos, end_of(k + len)));
                    k += len;
                    continue;
                }
            }
            // 8. (?<=[{a}0-9])[:<>=/](?=[{a}])
            if p_alnum && matches!(c, ':' | '<' | '>' | '=' | '/') && next.is_some_and(is_alpha) {
                out.push((pos, end_of(k + 1)));
                k += 1;
                continue;
            }
        }
        k += 1;
    }
}

static URL: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::RegexBuilder::new(concat!(
        r"^(?:(?:[\w\+\-\.]{2,})://)?",
        r"(?:\S+(?::\S*)?@)?",
        r"(?:",
        r"(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])",
        r"(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}",
        r"(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))",
        r"|",
        r"(?:(?:[A-Za-z0-9\x{a1}-\x{ffff}][A-Za-z0-9\x{a1}-\x{ffff}_-]{0,62})?[A-Za-z0-9\x{a1}-\x{ffff}]\.)+",
        r"(?:[\p{Ll}\p{Lo}]{2,63})",
        r")",
        r"(?::\d{2,5})?",
        r"(?:[/?#]\S*)?$",
    ))
    // Room for the lazy DFA, which the default limits leave out for this pattern's
    // Unicode classes (the bounded backtracker it falls back to is several times slower).
    .dfa_size_limit(32 << 20)
    .size_limit(32 << 20)
    .build()
    .expect("valid URL pattern")
});

fn url_match(s: &str) -> bool {
    s.contains('.') && may_be_url(s) && URL.is_match(s)
}

/// False for ASCII text the URL pattern cannot match: its host is an IPv4 address (a
/// digit, a dot and a digit) or ends in a label, a dot and a top-level domain of letters
/// (`[\p{Ll}\p{Lo}]{2,63}`: `a-z` in ASCII).
fn may_be_url(s: &str) -> bool {
    !s.is_ascii()
        || s.as_bytes().windows(3).any(|w| {
            w[1] == b'.'
                && ((w[0].is_ascii_digit() && w[2].is_ascii_digit())
                    || (w[0] != b'.' && w[2].is_ascii_lowercase()))
        })
}

/// Emit an exception's pieces as slices of `s` (the exception's text).
fn emit_special<'a>(s: &'a str, pieces: &[&str], emit: &mut impl FnMut(&'a str)) {
    let mut at = 0;
    for p in pieces {
        let end = (at + p.len()).min(s.len());
        if s.is_char_boundary(end) && end > at {
            emit(&s[at..end]);
        }
        at = end;
    }
    if at < s.len() {
        emit(&s[at..]);
    }
}

/// Chunks at most this long have their slow-path tokens cached.
const CACHED_CHUNK: usize = 64;

/// The tokens of recently seen chunks that needed the affix loop, per thread: such chunks
/// (`word,"`, `(see`, `os.path.join()`, …) repeat through a corpus, and their tokens depend
/// only on their bytes.
///
/// A hit reads one slot and one entry, which holds the chunk's bytes and its tokens side
/// by side (a general hash map with separate arenas read four places in memory). It is
/// emptied when it holds [`ChunkCache::MAX_ENTRIES`] chunks: about 1 MB on documentation
/// pages, 3.4 MB at most. A larger cache leaves the processor's L2 cache, and its hits cost
/// more than the affix loops it saves: at 32,768 chunks, the word split of 400 docs pages
/// was 3% slower, and at 8,192 it was as fast but 3% slower on all 5,689.
#[derive(Default)]
struct ChunkCache {
    /// Open addressing over the chunks' hashes: 0 for an empty slot, else the hash's high
    /// 32 bits and, in the low 32, one more than the entry's offset in `entries`.
    slots: Vec<u64>,
    /// Per chunk: its length, its number of tokens, its bytes, then each token's start and
    /// end in it (a byte each: a cached chunk has at most [`CACHED_CHUNK`] bytes).
    entries: Vec<u8>,
    len: usize,
}

impl ChunkCache {
    const MAX_ENTRIES: usize = 1 << 14;
    const SLOTS: usize = 2 * Self::MAX_ENTRIES;

    fn tokenize<'a>(
        &mut self,
        chunk: &'a str,
        emit: &mut impl FnMut(&'a str),
        infix_buf: &mut Vec<(usize, usize)>,
    ) {
        debug_assert!(chunk.len() <= CACHED_CHUNK);
        let h = xxh3_64(chunk.as_bytes());
        let mask = Self::SLOTS - 1;
        let mut i = h as usize & mask;
        if !self.slots.is_empty() {
            loop {
                let slot = self.slots[i];
                if slot == 0 {
                    break;
                }
                if slot >> 32 == h >> 32 {
                    let at = (slot as u32 - 1) as usize;
                    let n = self.entries[at] as usize;
                    let k = self.entries[at + 1] as usize;
                    let entry = &self.entries[at + 2..at + 2 + n + 2 * k];
                    if &entry[..n] == chunk.as_bytes() {
                        for t in entry[n..].chunks_exact(2) {
                            emit(&chunk[t[0] as usize..t[1] as usize]);
                        }
                        return;
                    }
                }
                i = (i + 1) & mask;
            }
        }
        if self.len >= Self::MAX_ENTRIES || self.slots.is_empty() {
            self.slots.clear();
            self.slots.resize(Self::SLOTS, 0);
            self.entries.clear();
            self.len = 0;
            i = h as usize & mask;
        }
        let at = self.entries.len();
        self.entries.extend_from_slice(&[chunk.len() as u8, 0]);
        self.entries.extend_from_slice(chunk.as_bytes());
        let base = chunk.as_ptr() as usize;
        let entries = &mut self.entries;
        tokenize_chunk_slow(
            chunk,
            &mut |t: &'a str| {
                let a = t.as_ptr() as usize - base;
                entries.extend_from_slice(&[a as u8, (a + t.len()) as u8]);
                emit(t);
            },
            infix_buf,
            true,
        );
        self.entries[at + 1] = ((self.entries.len() - at - 2 - chunk.len()) / 2) as u8;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = (h >> 32) << 32 | (at as u64 + 1);
        self.len += 1;
    }
}

thread_local! {
    static CHUNKS: std::cell::RefCell<ChunkCache> = std::cell::RefCell::default();
}

/// Empties this thread's cache of chunk tokens (for benchmarks that time a cold start: the
/// tokens do not depend on it).
pub fn clear_cache() {
    CHUNKS.with_borrow_mut(|c| *c = ChunkCache::default());
}
/// Emit the tokens of one whitespace-free chunk, whose first `letters` bytes are ASCII
/// letters (and the next one is not).
fn tokenize_chunk<'a>(
    chunk: &'a str,
    letters: usize,
    emit: &mut impl FnMut(&'a str),
    infix_buf: &mut Vec<(usize, usize)>,
    with_specials: bool,
    cache: Option<&mut ChunkCache>,
) {
    let special = |s: &str| if with_specials { special(s) } else { None };
    if let Some(p) = special(chunk) {
        emit_special(chunk, p, emit);
        return;
    }
    // Fast path: one character is one token (no rule splits it further), and so are plain
    // words (only letters, or only digits).
    let n = chunk.len();
    if chunk.chars().nth(1).is_none()
        || letters == n
        || (letters == 0 && chunk.bytes().all(|b| b.is_ascii_digit()))
        || (!chunk.is_ascii() && chunk.chars().all(|c| c.is_alphabetic()))
    {
        emit(chunk);
        return;
    }
    // Fast path: ASCII letters and one trailing suffix character that always splits off
    // (list punctuation or a quote; `.` after a lowercase letter). No prefix, suffix or
    // infix rule matches inside plain letters, so the tokens are the letters (or their
    // exception) and that character.
    if let Some((&last, body)) = chunk.as_bytes().split_last()
        && !body.is_empty()
        && letters == n - 1
        && ((last.is_ascii_punctuation()
            && (is_list_punct(last as char) || is_quote(last as char)))
            || (last == b'.' && body[body.len() - 1].is_ascii_lowercase()))
    {
        let (word, suffix) = chunk.split_at(body.len());
        match special(word) {
            Some(p) => emit_special(word, p, emit),
            None => emit(word),
        }
        emit(suffix);
        return;
    }
    // Fast path: a one-byte prefix (`(`, `[`, …) and ASCII letters: the prefix, then the
    // letters (or their exception), as above.
    if n >= 2
        && letters == 0
        && find_prefix(chunk) == 1
        && chunk.as_bytes()[1..].iter().all(u8::is_ascii_alphabetic)
    {
        let (prefix, word) = chunk.split_at(1);
        emit(prefix);
        match special(word) {
            Some(p) => emit_special(word, p, emit),
            None => emit(word),
        }
        return;
    }
    if with_specials
        && chunk.len() <= CACHED_CHUNK
        && let Some(c) = cache
    {
        c.tokenize(chunk, emit, infix_buf);
    } else {
        tokenize_chunk_slow(chunk, emit, infix_buf, with_specials);
    }
}

/// spaCy's affix loop on one chunk: prefixes and suffixes peeled off until an exception or
/// nothing is left, then infixes (unless the rest is a URL).
fn tokenize_chunk_slow<'a>(
    chunk: &'a str,
    emit: &mut impl FnMut(&'a str),
    infix_buf: &mut Vec<(usize, usize)>,
    with_specials: bool,
) {
    let special = |s: &str| if with_specials { special(s) } else { None };
    let mut s = chunk;
    let mut prefixes: SmallVec<[&'a str; 4]> = SmallVec::new();
    let mut suffixes: SmallVec<[&'a str; 4]> = SmallVec::new();
    let mut last_size = usize::MAX;
    while !s.is_empty() && s.len() != last_size {
        if special(s).is_some() {
            break;
        }
        last_size = s.len();
        let pre_len = find_prefix(s);
        if pre_len != 0 {
            let minus_pre = &s[pre_len..];
            if !minus_pre.is_empty() && special(minus_pre).is_some() {
                prefixes.push(&s[..pre_len]);
                s = minus_pre;
                break;
            }
        }
        let suf_len = find_suffix(&s[pre_len..]);
        if suf_len != 0 {
            let minus_suf = &s[..s.len() - suf_len];
            if !minus_suf.is_empty() && special(minus_suf).is_some() {
                suffixes.push(&s[s.len() - suf_len..]);
                s = minus_suf;
                break;
            }
        }
        if pre_len != 0 && suf_len != 0 && pre_len + suf_len <= s.len() {
            prefixes.push(&s[..pre_len]);
            suffixes.push(&s[s.len() - suf_len..]);
            s = &s[pre_len..s.len() - suf_len];
        } else if pre_len != 0 {
            prefixes.push(&s[..pre_len]);
            s = &s[pre_len..];
        } else if suf_len != 0 {
            suffixes.push(&s[s.len() - suf_len..]);
            s = &s[..s.len() - suf_len];
        }
        if !s.is_empty() && special(s).is_some() {
            break;
        }
    }
    for p in prefixes {
        emit(p);
    }
    if !s.is_empty() {
        if let Some(p) = special(s) {
            emit_special(s, p, emit);
        } else if url_match(s) {
            emit(s);
        } else {
            find_infixes(s, infix_buf);
            if infix_buf.is_empty() {
                emit(s);
            } else {
                let mut start = 0;
                for &(a, b) in infix_buf.iter() {
                    if a == 0 {
                        continue;
                    }
                    if a != start {
                        emit(&s[start..a]);
                    }
                    if a != b {
                        emit(&s[a..b]);
                    }
                    start = b;
                }
                if start < s.len() {
                    emit(&s[start..]);
                }
            }
        }
    }
    for sfx in suffixes.into_iter().rev() {
        emit(sfx);
    }
}

/// One token: its byte range in the text and whether it is a whitespace token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tok {
    pub start: usize,
    pub end: usize,
    pub space: bool,
}

/// [`ASCII_KIND`] of ASCII whitespace (Python's `isspace`).
const SPACE: u8 = 1;
/// [`ASCII_KIND`] of the other ASCII bytes.
const WORD: u8 = 2;
/// `SPACE` or `WORD` for each ASCII byte, 0 for the bytes of non-ASCII characters.
static ASCII_KIND: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = if matches!(b, 0x09..=0x0d | 0x1c..=0x1f | 0x20) {
            SPACE
        } else {
            WORD
        };
        b += 1;
    }
    t
};

/// The high bit of each byte of `x` that is ASCII whitespace ([`SPACE`]: `\t \n \v \f \r`,
/// the separators `\x1c`–`\x1f` and the space).
#[inline(always)]
fn ascii_space(x: u64) -> u64 {
    let y = x & !swar::HIGH;
    (swar::in_range(y, 0x09, 0x0D) | swar::in_range(y, 0x1C, b' ')) & !x
}

/// The index of the first byte at or after `i` that is not [`WORD`] (ASCII whitespace or
/// not ASCII), or the length; eight bytes at a time, so that most chunks' ends are found
/// without a loop over bytes, whose exit the processor mispredicts once per chunk.
#[inline(always)]
fn next_not_word(bytes: &[u8], mut i: usize) -> usize {
    while let Some(x) = swar::load(bytes, i) {
        let m = x & swar::HIGH | ascii_space(x);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && ASCII_KIND[bytes[i] as usize] == WORD {
        i += 1;
    }
    i
}

/// The index of the first byte of `text[start..end]` that is not an ASCII letter, or `end`;
/// eight bytes at a time (reading up to seven bytes past `end` when the text has them).
#[inline(always)]
fn ascii_letters_end(text: &[u8], start: usize, end: usize) -> usize {
    let mut i = start;
    while i < end {
        let x = swar::load(text, i).unwrap_or_else(|| {
            let mut buf = [0u8; 8];
            buf[..text.len() - i].copy_from_slice(&text[i..]);
            u64::from_le_bytes(buf)
        });
        // ASCII letters are the bytes below 0x80 that fall in `a..=z` once bit 5 is set.
        let lower = (x | swar::splat(0x20)) & !swar::HIGH;
        let letters = swar::in_range(lower, b'a', b'z') & !x;
        let others = !letters & swar::first_bytes(end - i);
        if others != 0 {
            return i + (others.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    end
}

/// spaCy's `_tokenize_affixes`: whitespace split, then affixes, specials (when asked) and
/// infixes per chunk.
fn tokenize_affixes(
    text: &str,
    matcher: Option<&Matcher>,
    out: &mut Vec<Tok>,
    firsts: &mut Vec<(u32, u32)>,
) {
    if matcher.is_some() {
        // This thread's chunk cache, borrowed once for the text rather than per chunk.
        CHUNKS.with_borrow_mut(|cache| {
            tokenize_affixes_with(text, matcher, out, firsts, Some(cache))
        });
    } else {
        tokenize_affixes_with(text, matcher, out, firsts, None);
    }
}

/// [`tokenize_affixes`] with the chunk cache, if any.
fn tokenize_affixes_with(
    text: &str,
    matcher: Option<&Matcher>,
    out: &mut Vec<Tok>,
    firsts: &mut Vec<(u32, u32)>,
    mut cache: Option<&mut ChunkCache>,
) {
    out.clear();
    firsts.clear();
    let with_specials = matcher.is_some();
    let base = text.as_ptr() as usize;
    let mut infix_buf = Vec::new();
    let exceptions = &*EXCEPTIONS;
    let mut push_chunk = |span: &str, out: &mut Vec<Tok>, infix_buf: &mut Vec<(usize, usize)>| {
        let start = span.as_ptr() as usize - base;
        // Most chunks are plain words: ASCII letters that are neither an exception nor
        // the first token of a special case. They are one token, found here from one bit
        // of each kind (the same bit: both maps use `maybe_bit`).
        let letters = ascii_letters_end(text.as_bytes(), start, start + span.len()) - start;
        if let Some(m) = matcher
            && letters == span.len()
        {
            let w = span.as_bytes();
            let bit = maybe_bit(w);
            let first = if w.len() == 1 {
                m.by_byte[w[0] as usize] != 0
            } else {
                has_bit(&m.maybe, bit)
            };
            if !has_bit(&exceptions.maybe, bit) && !first {
                out.push(Tok {
                    start,
                    end: start + span.len(),
                    space: false,
                });
                return;
            }
        }
        tokenize_chunk(
            span,
            letters,
            &mut |t: &str| {
                let start = t.as_ptr() as usize - base;
                // Tokens that may start a special case, for `apply_special_cases`.
                if let Some(list) = matcher.and_then(|m| m.list_of(t)) {
                    firsts.push((out.len() as u32, list as u32));
                }
                out.push(Tok {
                    start,
                    end: start + t.len(),
                    space: false,
                });
            },
            infix_buf,
            with_specials,
            cache.as_deref_mut(),
        );
    };
    let mut start = 0;
    let mut in_ws: Option<bool> = None;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Runs of ASCII bytes of the current kind change nothing: skip them in a tight loop.
        match in_ws {
            Some(false) => i = next_not_word(bytes, i),
            Some(true) => {
                while i < bytes.len() && ASCII_KIND[bytes[i] as usize] == SPACE {
                    i += 1;
                }
            }
            None => {}
        }
        let Some(&b) = bytes.get(i) else {
            break;
        };
        let (c, ws) = if b < 0x80 {
            (b as char, ASCII_KIND[b as usize] == SPACE)
        } else {
            let c = text[i..].chars().next().expect("a character starts here");
            (c, py_isspace(c))
        };
        match in_ws {
            None => in_ws = Some(ws),
            Some(prev) if prev != ws => {
                if start < i {
                    if prev {
                        out.push(Tok {
                            start,
                            end: i,
                            space: true,
                        });
                    } else {
                        push_chunk(&text[start..i], out, &mut infix_buf);
                    }
                }
                start = if c == ' ' { i + 1 } else { i };
                in_ws = Some(ws);
            }
            _ => {}
        }
        i += c.len_utf8();
    }
    if start < text.len() {
        if in_ws == Some(true) {
            out.push(Tok {
                start,
                end: text.len(),
                space: true,
            });
        } else {
            push_chunk(&text[start..], out, &mut infix_buf);
        }
    }
}

/// The special cases spaCy re-applies after tokenizing (those containing affixes), as
/// their affix-only tokens, grouped by the first token.
struct Matcher {
    /// Candidate lists of first tokens longer than one byte.
    by_first: HashMap<&'static str, usize, Fast>,
    /// Candidate list + 1 of each one-byte first token (`(`, `:`, `'`, …: common tokens,
    /// found without hashing), 0 for none.
    by_byte: [usize; 256],
    lists: Vec<Candidates>,
    /// [`maybe_bit`]s of the longer first tokens, to skip most lookups.
    maybe: Vec<u64>,
}

impl Matcher {
    /// The candidate list of patterns that start with token `t`, if any.
    #[inline]
    fn list_of(&self, t: &str) -> Option<usize> {
        let b = t.as_bytes();
        if b.len() == 1 {
            return self.by_byte[b[0] as usize].checked_sub(1);
        }
        if !has_bit(&self.maybe, maybe_bit(b)) {
            return None;
        }
        self.by_first.get(t).copied()
    }
}

/// The patterns that start with one token.
#[derive(Default)]
struct Candidates {
    /// Bit `b` set when some pattern's second token starts with byte `b`: most tokens
    /// after a first token (`(` then `self`) rule every pattern out at once.
    second: [u64; 4],
    /// Each pattern's tokens after the first.
    rest: Vec<Vec<&'static str>>,
}

static MATCHER: LazyLock<Matcher> = LazyLock::new(|| {
    let mut by_first: HashMap<&'static str, usize, Fast> = HashMap::with_hasher(Fast::new());
    let mut by_byte = [0usize; 256];
    let mut lists: Vec<Candidates> = Vec::new();
    let mut buf = Vec::new();
    let mut ib = Vec::new();
    for &(key, _) in tables::SPACY_EXCEPTIONS {
        find_infixes(key, &mut ib);
        let affixed =
            find_prefix(key) != 0 || find_suffix(key) != 0 || !ib.is_empty() || key.contains(' ');
        if !affixed {
            continue;
        }
        tokenize_affixes(key, None, &mut buf, &mut Vec::new());
        let toks: Vec<&'static str> = buf.iter().map(|t| &key[t.start..t.end]).collect();
        // A one-token pattern replaces a token by itself (the special case is that token):
        // nothing to do.
        if toks.len() < 2 || toks.concat() != key {
            continue;
        }
        let next = lists.len();
        let list = if toks[0].len() == 1 {
            let slot = &mut by_byte[toks[0].as_bytes()[0] as usize];
            if *slot == 0 {
                *slot = next + 1;
            }
            *slot - 1
        } else {
            *by_first.entry(toks[0]).or_insert(next)
        };
        if list == next {
            lists.push(Candidates::default());
        }
        let b = toks[1].as_bytes()[0];
        set_bit(&mut lists[list].second, b as usize);
        lists[list].rest.push(toks[1..].to_vec());
    }
    let mut maybe = vec![0u64; 1 << (MAYBE_BITS - 6)];
    for k in by_first.keys() {
        set_bit(&mut maybe, maybe_bit(k.as_bytes()));
    }
    Matcher {
        by_first,
        by_byte,
        lists,
        maybe,
    }
});

/// spaCy's `_apply_special_cases`: find token runs that spell a special case (without
/// whitespace between them) and replace them by the special case's tokens.
fn apply_special_cases(text: &str, toks: &mut Vec<Tok>, firsts: &[(u32, u32)]) {
    let m = &*MATCHER;
    // (start token, length)
    let mut matches: Vec<(usize, usize)> = Vec::new();
    // Patterns have two or more tokens and no whitespace tokens; `firsts` holds the
    // non-space tokens that start one. (A pattern may match across a single space: such a
    // match changes nothing, but it covers its tokens against other matches, as in spaCy.)
    for &(i, list) in firsts {
        let (i, list) = (i as usize, list as usize);
        if i + 1 >= toks.len() {
            continue;
        }
        let c = &m.lists[list];
        let second = text.as_bytes()[toks[i + 1].start];
        if !has_bit(&c.second, second as usize) {
            continue;
        }
        for rest in &c.rest {
            if i + 1 + rest.len() <= toks.len()
                && rest
                    .iter()
                    .enumerate()
                    .all(|(k, p)| &text[toks[i + 1 + k].start..toks[i + 1 + k].end] == *p)
            {
                matches.push((i, 1 + rest.len()));
            }
        }
    }
    if matches.is_empty() {
        return;
    }
    // Longest first, then leftmost; a span is kept when its first and last tokens are
    // not yet covered.
    matches.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    matches.dedup();
    let mut seen = vec![false; toks.len()];
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for (s, l) in matches {
        if !seen[s] && !seen[s + l - 1] {
            kept.push((s, l));
        }
        for x in &mut seen[s..s + l] {
            *x = true;
        }
    }
    kept.sort_unstable();
    // The spans whose special case changes their tokens (many spell the same tokens, or
    // are no special case once the text between their tokens is included), with the new
    // tokens in `pieces`.
    let mut pieces: Vec<Tok> = Vec::new();
    let mut edits: Vec<(usize, usize, std::ops::Range<usize>)> = Vec::new();
    for &(s, l) in &kept {
        let a = toks[s].start;
        let b = toks[s + l - 1].end;
        let Some(special) = special(&text[a..b]) else {
            continue;
        };
        let first = pieces.len();
        let mut at = a;
        for p in special {
            let end = (at + p.len()).min(b);
            if end > at && text.is_char_boundary(end) {
                pieces.push(Tok {
                    start: at,
                    end,
                    space: text[at..end].chars().all(py_isspace),
                });
            }
            at = end;
        }
        if pieces[first..] == toks[s..s + l] {
            pieces.truncate(first);
        } else {
            edits.push((s, l, first..pieces.len()));
        }
    }
    if edits.is_empty() {
        return;
    }
    if edits.iter().all(|(_, l, p)| p.len() <= *l) {
        // No span grows: the tokens move left, in place.
        let (mut write, mut read) = (0, 0);
        for (s, l, p) in edits {
            toks.copy_within(read..s, write);
            write += s - read;
            toks[write..write + p.len()].copy_from_slice(&pieces[p.clone()]);
            write += p.len();
            read = s + l;
        }
        let n = toks.len();
        toks.copy_within(read..n, write);
        toks.truncate(write + n - read);
        return;
    }
    let mut out = Vec::with_capacity(toks.len() + pieces.len());
    let mut read = 0;
    for (s, l, p) in edits {
        out.extend_from_slice(&toks[read..s]);
        out.extend_from_slice(&pieces[p]);
        read = s + l;
    }
    out.extend_from_slice(&toks[read..]);
    *toks = out;
}

/// Every token spaCy's blank English pipeline makes of `text`, whitespace tokens included.
pub fn tokenize(text: &str, out: &mut Vec<Tok>) {
    let mut firsts = Vec::new();
    tokenize_affixes(text, Some(&MATCHER), out, &mut firsts);
    apply_special_cases(text, out, &firsts);
}

/// datatrove's `split_into_words(text, "en")`: spaCy's tokens, stripped, empty ones removed.
pub fn split_words<'a>(text: &'a str, out: &mut Vec<&'a str>) {
    let toks = tokens_of(text);
    // Non-space tokens hold no whitespace: strip() is the identity on them. Each token is
    // written and the space tokens overwritten by the next (no branch on the kind, whose
    // pattern follows the text's newlines and double spaces).
    out.clear();
    out.resize(toks.len(), "");
    let mut n = 0;
    for t in &toks {
        out[n] = &text[t.start..t.end];
        n += usize::from(!t.space);
    }
    out.truncate(n);
    keep_buffer(toks);
}

/// A lower bound of `split_words(text).len()`, without splitting: the runs of bytes between
/// ASCII whitespace. Each whitespace-free chunk the splitter sees is one or more words (its
/// affixes and exceptions split it, and special cases only merge tokens within a chunk: no
/// exception but single whitespace characters holds whitespace), and each run holds one
/// or more chunks (the splitter also splits on non-ASCII whitespace).
pub fn min_word_count(text: &str) -> usize {
    let b = text.as_bytes();
    let mut count = 0;
    // Whether the byte before the current one is whitespace (the text's start counts as such).
    let mut prev_space = true;
    let mut i = 0;
    while let Some(x) = swar::load(b, i) {
        let space = ascii_space(x);
        let before = space << 8 | u64::from(prev_space) << 7;
        count += (!space & swar::HIGH & before).count_ones() as usize;
        prev_space = space >> 63 != 0;
        i += 8;
    }
    for &c in &b[i..] {
        let space = ASCII_KIND[c as usize] == SPACE;
        count += usize::from(prev_space && !space);
        prev_space = space;
    }
    count
}

thread_local! {
    /// Each thread's token buffer for [`split_words`] and [`count_sentences`], reused from
    /// text to text.
    static TOKS: std::cell::RefCell<Vec<Tok>> = std::cell::RefCell::default();
}

/// The tokens of `text`, in this thread's buffer (give it back with [`keep_buffer`]).
fn tokens_of(text: &str) -> Vec<Tok> {
    let mut toks = TOKS.take();
    tokenize(text, &mut toks);
    toks
}

/// Keeps `toks` as this thread's buffer, unless a huge text made it large.
fn keep_buffer(toks: Vec<Tok>) {
    if toks.capacity() <= 1 << 16 {
        TOKS.set(toks);
    }
}

/// Whether `s` is one of the sentencizer's punctuation characters (all are one character).
fn is_sentence_end(s: &str) -> bool {
    static ENDS: LazyLock<Vec<char>> = LazyLock::new(|| {
        let mut v: Vec<char> = tables::SENT_PUNCT
            .iter()
            .filter_map(|p| p.chars().next())
            .collect();
        v.sort_unstable();
        v
    });
    let mut cs = s.chars();
    match (cs.next(), cs.next()) {
        (Some(c), None) => ENDS.binary_search(&c).is_ok(),
        _ => false,
    }
}

/// The number of sentences datatrove's `split_into_sentences` returns for `text`: spaCy's
/// sentencizer splits after sentence-ending punctuation, and datatrove then drops the
/// sentences that are only whitespace (`strip_strings`).
pub fn count_sentences(text: &str) -> usize {
    let toks = tokens_of(text);
    let n = count_sentences_in(text, &toks);
    keep_buffer(toks);
    n
}

fn count_sentences_in(text: &str, toks: &[Tok]) -> usize {
    let mut count = 0usize;
    // Whether the current sentence has a token other than whitespace.
    let mut has_text = false;
    let mut seen_period = false;
    for t in toks {
        let s = &text[t.start..t.end];
        let in_punct = !t.space && is_sentence_end(s);
        let is_punct = !t.space && s.chars().all(is_unicode_punct);
        if seen_period && !is_punct && !in_punct {
            // `t` starts a new sentence.
            count += usize::from(has_text);
            has_text = false;
            seen_period = false;
        } else if in_punct {
            seen_period = true;
        }
        has_text |= !t.space;
    }
    count + usize::from(has_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<&str> {
        let mut v = Vec::new();
        split_words(s, &mut v);
        v
    }

    #[test]
    fn splits_like_spacy() {
        // Expected outputs are spaCy 3.8's (spacy.blank("en")).
        assert_eq!(words("Hello, world!"), ["Hello", ",", "world", "!"]);
        assert_eq!(words("I don't know."), ["I", "do", "n't", "know", "."]);
        assert_eq!(words("(e.g. this)"), ["(", "e.g.", "this", ")"]);
        assert_eq!(
            words("see os.path.join()"),
            ["see", "os.path.join", "(", ")"]
        );
        assert_eq!(
            words("well-known 10km $5"),
            ["well", "-", "known", "10", "km", "$", "5"]
        );
        assert_eq!(words("wait... what"), ["wait", "...", "what"]);
        assert_eq!(words("a/b x:y"), ["a", "/", "b", "x", ":", "y"]);
        assert_eq!(
            words("https://docs.python.org/3/ ok"),
            ["https://docs.python.org/3/", "ok"]
        );
        assert_eq!(words("John's end.Next"), ["John", "'s", "end", ".", "Next"]);
        assert_eq!(words("  \n a  b"), ["a", "b"]);
    }

    #[test]
    fn special_cases_across_affix_tokens() {
        // spaCy 3.8's output. `):` joins two affix tokens (the tokens move left in place);
        // `°C.` splits two into three (the copying path); both in one text.
        assert_eq!(words("f(): x"), ["f", "(", "):", "x"]);
        assert_eq!(
            words("It was 20°C. Then"),
            ["It", "was", "20", "°", "C", ".", "Then"]
        );
        assert_eq!(
            words("It was 20°C. f(): at 5°F."),
            [
                "It", "was", "20", "°", "C", ".", "f", "(", "):", "at", "5", "°", "F", "."
            ]
        );
    }

    #[test]
    fn min_word_count_is_a_lower_bound() {
        let mut texts: Vec<String> = [
            "",
            " ",
            "a",
            "Hello, world!",
            "  \n a  b\t\tc\x1c d\x0be ",
            "see os.path.join() and (e.g. this):) ok",
            "caf\u{e9}\u{3000}na\u{ef}ve\u{a0}x \u{2028} y",
            "def f():\n    return x[0] + y  # done",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every prefix of a longer text (runs across the eight-byte blocks).
        let long = "It's 10km... well-known:) \u{201c}quoted\u{201d}\n\n\t- item one\r\n";
        texts.extend(long.char_indices().map(|(i, _)| long[..i].to_string()));
        for text in &texts {
            let mut v = Vec::new();
            split_words(text, &mut v);
            let runs = text
                .split(|c: char| c.is_ascii() && ASCII_KIND[c as usize] == SPACE)
                .filter(|r| !r.is_empty())
                .count();
            assert_eq!(min_word_count(text), runs, "{text:?}");
            assert!(runs <= v.len(), "{text:?}: {runs} runs, {} words", v.len());
        }
    }

    #[test]
    fn ascii_letters_end_at_the_first_other_byte() {
        let text: Vec<u8> = (0..=255u8)
            .chain(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    .iter()
                    .copied(),
            )
            .collect();
        for start in 0..text.len() {
            for end in start..(start + 20).min(text.len()) {
                let want = (start..end)
                    .find(|&i| !text[i].is_ascii_alphabetic())
                    .unwrap_or(end);
                assert_eq!(ascii_letters_end(&text, start, end), want, "{start}..{end}");
            }
        }
    }

    /// Calls `f` with `count` pseudo-random chunks of 1 to 16 bytes of `alphabet` (the same
    /// ones on every run).
    fn random_chunks(alphabet: &[u8], count: usize, mut f: impl FnMut(&str)) {
        let mut seed = 7u64;
        let mut word = String::new();
        for _ in 0..count {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut r = seed;
            word.clear();
            for _ in 0..1 + (seed >> 60) as usize {
                r = r.wrapping_mul(6364136223846793005).wrapping_add(1);
                word.push(alphabet[(r >> 33) as usize % alphabet.len()] as char);
            }
            f(&word);
        }
    }

    #[test]
    fn units_start_where_may_start_unit_allows() {
        for u in tables::UNITS {
            assert!(may_start_unit(u.chars().next().expect("a unit")), "{u}");
        }
    }

    #[test]
    fn cached_chunks_split_as_uncached() {
        // Three times more distinct chunks than the cache holds, each twice: hits, misses
        // and emptying the cache all give the tokens of the affix loop.
        let mut text = String::new();
        random_chunks(b"aZ5.,-'\"()$%:!?x", 3 * ChunkCache::MAX_ENTRIES, |w| {
            text.push_str(w);
            text.push(' ');
        });
        let text = text.repeat(2);
        let (mut cached, mut uncached) = (Vec::new(), Vec::new());
        let (mut cached_firsts, mut uncached_firsts) = (Vec::new(), Vec::new());
        clear_cache();
        tokenize_affixes(&text, Some(&MATCHER), &mut cached, &mut cached_firsts);
        tokenize_affixes_with(
            &text,
            Some(&MATCHER),
            &mut uncached,
            &mut uncached_firsts,
            None,
        );
        assert_eq!(cached, uncached);
        assert_eq!(cached_firsts, uncached_firsts);
        assert!(cached.len() > 4 * ChunkCache::MAX_ENTRIES);
    }

    #[test]
    fn ascii_affixes_are_the_general_ones() {
        // Every ASCII character at each end, and random chunks of the characters the
        // rules look at.
        for c in 0..128u8 {
            for w in [
                format!("{}ab", c as char),
                format!("ab{}", c as char),
                format!("{}", c as char),
                format!("5{}", c as char),
                format!("{}{}", c as char, c as char),
            ] {
                assert_eq!(find_prefix(&w), find_prefix_general(&w), "{w:?}");
                assert_eq!(find_suffix(&w), find_suffix_general(&w), "{w:?}");
            }
        }
        random_chunks(b"aZsS5.'$+%-(),:m\"_KxUCA=!", 200_000, |word| {
            assert_eq!(find_prefix(word), find_prefix_general(word), "{word:?}");
            assert_eq!(find_suffix(word), find_suffix_general(word), "{word:?}");
        });
        for w in [
            "...", "a..", "5km", "10MB", "x's", "It's", "U.S.", "5$", "3+", "A.", "AB.", "US$5",
            "C$", "+5", "+a", "..a", ".a", "5US$", "a…", "a’s",
        ] {
            assert_eq!(find_prefix(w), find_prefix_general(w), "{w:?}");
            assert_eq!(find_suffix(w), find_suffix_general(w), "{w:?}");
        }
    }

    #[test]
    fn next_may_end_line_stops_where_the_table_does() {
        // Every byte value at every offset of a 16-byte window.
        for v in 0..=255u8 {
            for at in 0..16 {
                let mut b = [b'a'; 16];
                b[at] = v;
                let want = (0..16).find(|&k| MAY_END_LINE[b[k] as usize]).unwrap_or(16);
                assert_eq!(next_may_end_line(&b, 0), want, "{v:#x} at {at}");
            }
        }
        // A borrow from a lead byte must not hide an earlier one.
        let b = [0xC3, 0xE2, 0xC2, b'a', b'a', b'a', b'a', b'a', b'a'];
        assert_eq!(next_may_end_line(&b, 0), 1);
    }

    #[test]
    fn ascii_infixes_and_url_check_agree_with_the_general_rules() {
        let (mut general, mut ascii) = (Vec::new(), Vec::new());
        random_chunks(b"aZ5.,-~+*^:<>=/'\"_x(", 300_000, |word| {
            let chars: Vec<(usize, char)> = word.char_indices().collect();
            find_infixes_in(word, &chars, &mut general);
            find_infixes_ascii(word.as_bytes(), &mut ascii);
            assert_eq!(ascii, general, "{word:?}");
            if URL.is_match(word) {
                assert!(may_be_url(word), "{word:?}");
            }
        });
        for url in [
            "example.com",
            "http://a.io/x",
            "1.2.3.4",
            "u@x.org:80/p",
            "os.path",
        ] {
            assert!(URL.is_match(url) && may_be_url(url), "{url}");
        }
    }

    #[test]
    fn next_not_word_stops_where_the_table_does() {
        for b in 0..=255u8 {
            for at in 0..20 {
                for len in at + 1..=20 {
                    let mut t = vec![b'a'; len];
                    t[at] = b;
                    let want = if ASCII_KIND[b as usize] == WORD {
                        len
                    } else {
                        at
                    };
                    for from in 0..=at {
                        assert_eq!(next_not_word(&t, from), want, "{b:#x} at {at} of {len}");
                    }
                }
            }
        }
    }

    #[test]
    fn ascii_kinds_are_python_isspace() {
        for b in 0u8..128 {
            assert_eq!(
                ASCII_KIND[b as usize] == SPACE,
                py_isspace(b as char),
                "{b:#x}"
            );
            assert_ne!(ASCII_KIND[b as usize], 0);
        }
    }

    #[test]
    fn python_lines() {
        assert_eq!(
            py_splitlines("a\nb\r\nc\rd\u{2028}e\n"),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(py_splitlines(""), Vec::<&str>::new());
        assert_eq!(py_splitlines("\n\n"), ["", ""]);
    }

    #[test]
    fn sentences() {
        assert_eq!(count_sentences("One. Two! Three?"), 3);
        assert_eq!(count_sentences("No end here"), 1);
        assert_eq!(count_sentences("Ends with dots... next"), 1);
        assert_eq!(count_sentences("A. B"), 1);
        assert_eq!(count_sentences("One. Two"), 2);
        // datatrove drops whitespace-only sentences (checked with datatrove 0.10.1).
        assert_eq!(count_sentences(""), 0);
        assert_eq!(count_sentences(" "), 0);
        assert_eq!(count_sentences("One. Two.\n\n"), 2);
        assert_eq!(count_sentences("Hello.\n\nWorld.  \n"), 2);
        assert_eq!(count_sentences("a. b. \n"), 1);
    }
}
