//! Decoding an HTML page's bytes to text: the charset from a byte-order mark, the HTTP
//! `Content-Type`, a `<meta>` in the first 1024 bytes, or detection — the WHATWG order.

use std::borrow::Cow;
use std::sync::LazyLock;

use encoding_rs::{Encoding, UTF_8};

/// `charset=…` in a `<meta charset>` or `<meta http-equiv=Content-Type content=…>`.
static META_CHARSET: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    regex::bytes::Regex::new(r#"(?i)<meta\s[^>]*?charset\s*=\s*["']?\s*([a-z0-9_:.+-]+)"#)
        .expect("a valid regex")
});

/// How the charset of a page was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharsetSource {
    Bom,
    Header,
    Meta,
    /// Valid UTF-8, nothing declared.
    Utf8,
    Detected,
}

/// `bytes` as text, and the encoding used and how it was chosen. Malformed sequences
/// become U+FFFD, as browsers show them.
pub fn decode_html<'a>(
    bytes: &'a [u8],
    header_charset: Option<&str>,
) -> (Cow<'a, str>, &'static Encoding, CharsetSource) {
    let (encoding, source) = choose(bytes, header_charset);
    let (text, _, _) = encoding.decode(bytes);
    (text, encoding, source)
}

fn choose(bytes: &[u8], header_charset: Option<&str>) -> (&'static Encoding, CharsetSource) {
    if let Some((enc, _)) = Encoding::for_bom(bytes) {
        return (enc, CharsetSource::Bom);
    }
    if let Some(enc) = header_charset.and_then(|l| Encoding::for_label(l.as_bytes())) {
        return (html_encoding(enc), CharsetSource::Header);
    }
    let head = &bytes[..bytes.len().min(1024)];
    if let Some(enc) = META_CHARSET
        .captures(head)
        .and_then(|c| c.get(1))
        .and_then(|label| Encoding::for_label(label.as_bytes()))
    {
        return (html_encoding(enc), CharsetSource::Meta);
    }
    if std::str::from_utf8(bytes).is_ok() {
        return (UTF_8, CharsetSource::Utf8);
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(&bytes[..bytes.len().min(64 << 10)], bytes.len() <= 64 << 10);
    (detector.guess(None, true), CharsetSource::Detected)
}

/// A declared UTF-16 in a page that got this far (no BOM) is UTF-8, as in browsers.
fn html_encoding(enc: &'static Encoding) -> &'static Encoding {
    if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
        UTF_8
    } else {
        enc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_then_meta_then_detection() {
        let latin1 = b"<html><head><meta charset=\"iso-8859-1\"></head><p>caf\xe9</p>";
        let (t, enc, src) = decode_html(latin1, None);
        assert_eq!(src, CharsetSource::Meta);
        assert_eq!(enc.name(), "windows-1252");
        assert!(t.contains("café"));
        let (t, _, src) = decode_html("<p>café</p>".as_bytes(), None);
        assert_eq!((t.as_ref(), src), ("<p>café</p>", CharsetSource::Utf8));
        let (_, enc, src) = decode_html(b"<p>x</p>", Some("shift_jis"));
        assert_eq!((enc.name(), src), ("Shift_JIS", CharsetSource::Header));
        let http_equiv =
            b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=koi8-r\"><p>\xf0\xd2\xc9\xd7\xc5\xd4</p>";
        let (t, _, src) = decode_html(http_equiv, None);
        assert_eq!(src, CharsetSource::Meta);
        assert!(t.contains("Привет"), "{t}");
        let cp1251 = "Съешь же ещё этих мягких французских булок, да выпей чаю. ".repeat(4);
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&cp1251);
        let (t, enc, src) = decode_html(&bytes, None);
        assert_eq!((enc.name(), src), ("windows-1251", CharsetSource::Detected));
        assert_eq!(t, cp1251);
    }
}
