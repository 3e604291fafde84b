//! datatrove 0.10.1's `simplify_text` (`datatrove/utils/text.py`), then spaCy's blank
//! English word tokenizer on the simplified text, then word n-grams: what datatrove's
//! MinHash deduplication hashes.

use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

use crate::tables::{ICON_RANGES, PUNCTUATION_NON_ASCII, UNITS};

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
    if !simplify_by_char(text, norm_numbers, out) {
        simplify_whole(text, norm_numbers, out);
    }
}

/// [`simplify_text_with`] one character at a time, with no copy of the text: the same
/// result as [`simplify_whole`] whenever that can be told character by character, which
/// is unless the text holds a `Σ` (lowercased by context: final sigma) or a character
/// whose decomposition leaves a mark that is not dropped but takes part in canonical
/// reordering (a combining class other than 0 outside category Mn). Returns false, with
/// `out` unspecified, in those cases.
fn simplify_by_char(text: &str, norm_numbers: bool, out: &mut String) -> bool {
    use unicode_normalization::char::{canonical_combining_class, decompose_canonical};
    out.clear();
    // What `simplify_whole` calls `spaced` has had a character pushed (spaces are only
    // written between characters), and a space is pending.
    let mut spaced_any = false;
    let mut pending = false;
    let mut ok = true;
    let mut push = |c: char, out: &mut String, ok: &mut bool| {
        if c == ' ' {
            pending = true;
            return;
        }
        if pending && spaced_any {
            out.push(' ');
        }
        pending = false;
        spaced_any = true;
        if c.is_ascii() {
            out.push(c);
            return;
        }
        decompose_canonical(c, |d| {
            if get_general_category(d) != GeneralCategory::NonspacingMark {
                if canonical_combining_class(d) != 0 {
                    *ok = false;
                }
                out.push(d);
            }
        });
    };
    let mut it = text.char_indices().peekable();
    while let Some((_, c)) = it.next() {
        if c == 'Σ' {
            return false;
        }
        if norm_numbers && is_digit(c) {
            while it.next_if(|&(_, d)| is_digit(d)).is_some() {}
            // One decimal part: a separator followed by a digit.
            if let Some(&(i, sep)) = it.peek()
                && DECIMAL_SEPARATORS.contains(&sep)
                && text[i + sep.len_utf8()..]
                    .chars()
                    .next()
                    .is_some_and(is_digit)
            {
                it.next();
                while it.next_if(|&(_, d)| is_digit(d)).is_some() {}
            }
            push('0', out, &mut ok);
            continue;
        }
        if c.is_ascii() {
            let b = c as u8;
            let m = if is_ascii_punct(b) || b.is_ascii_whitespace() {
                ' '
            } else {
                b.to_ascii_lowercase() as char
            };
            push(m, out, &mut ok);
            continue;
        }
        for l in c.to_lowercase() {
            push(
                if is_punct(l) || l.is_whitespace() {
                    ' '
                } else {
                    l
                },
                out,
                &mut ok,
            );
        }
    }
    if !ok {
        return false;
    }
    let trimmed = out.trim();
    if trimmed.len() != out.len() {
        *out = trimmed.to_string();
    }
    true
}

/// [`simplify_text_with`] as datatrove writes it: lowercase the whole text, map numbers,
/// punctuation and whitespace, then NFD the whole result and drop the marks.
fn simplify_whole(text: &str, norm_numbers: bool, out: &mut String) {
    out.clear();
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

/// spaCy's exception for `s`, among those whose text can survive normalisation (lowercase
/// ASCII letters and digits): the full splitter's table, with the other keys ruled out.
fn special(s: &str) -> Option<&'static [&'static str]> {
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return None;
    }
    crate::words::special(s)
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

    /// Both ways of simplifying non-ASCII text agree (or the fast one declines).
    fn same_both_ways(t: &str) -> bool {
        let mut a = String::new();
        let mut b = String::new();
        simplify_whole(t, true, &mut b);
        if simplify_by_char(t, true, &mut a) {
            assert_eq!(a, b, "{t:?}");
        }
        simplify_whole(t, false, &mut b);
        let fast = simplify_by_char(t, false, &mut a);
        if fast {
            assert_eq!(a, b, "{t:?} (numbers kept)");
        }
        fast
    }

    #[test]
    fn by_char_equals_whole_text() {
        for t in [
            "Café «naïve» — ÉTÉ ١٢٣ Σοφός",
            "ΣΟΦΟΣ σοφός",
            "İstanbul KELVIN \u{212a} x\u{2000}y",
            "a \u{301} b \u{301}c\u{301}",
            "\u{301} lead and trail \u{301}",
            "1.5, ٣٫١٤ and 2،3 and 7⎖8 x",
            "ǅungla ﬁnance ẞ Straße",
            "e\u{1d165}\u{1d166} music",
            "tab\tnbsp\u{a0}ideo\u{3000}end  ",
            "“quoted” ‘single’ … ellipsis",
            "한국어 日本語 עברית العربية हिन्दी",
        ] {
            same_both_ways(t);
        }
        assert!(
            !same_both_ways("ΣΟΦΟΣ"),
            "final sigma takes the whole-text way"
        );
        assert!(same_both_ways("Café 3.5"));
    }

    /// On the non-ASCII documents of the shared corpora (docs pages, kernel docs, CPython),
    /// when the shared data is here.
    #[test]
    fn by_char_equals_whole_text_on_real_documents() {
        use std::io::BufRead;
        let Some(dir) = primer_testdata::shared_file_or_skip("corpora") else {
            return;
        };
        let entries = std::fs::read_dir(&dir).unwrap();
        let (mut docs, mut fast) = (0, 0);
        for e in entries {
            let f = std::fs::File::open(e.unwrap().path()).unwrap();
            // The first 2,000 documents of each: enough, and quick in a debug build.
            let lines = std::io::BufReader::new(zstd::Decoder::new(f).unwrap()).lines();
            for line in lines.take(2000) {
                let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
                let t = v["text"].as_str().unwrap_or_default();
                if !t.is_ascii() {
                    docs += 1;
                    fast += usize::from(same_both_ways(t));
                }
            }
        }
        eprintln!("{docs} non-ASCII documents, {fast} simplified character by character");
        assert!(
            fast * 10 >= docs * 9,
            "the fast way should serve most documents"
        );
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
