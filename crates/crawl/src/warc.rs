//! Reading WARC files (ISO 28500, WARC/1.0 and 1.1), plain or gzip, record by record.
//!
//! A `.warc.gz` is normally one gzip member per record, so a reader can seek to any
//! record; some tools write the whole file as one member. Both are read. Every record
//! carries the byte offset where it starts in the file as stored (the gzip member's
//! offset for compressed files, the offset CDX indexes use), so an error names the place.
//!
//! Damage does not end the file: a record whose header cannot be parsed, whose block is
//! shorter than its `Content-Length`, or whose gzip member does not inflate is reported
//! with its offset and skipped, and reading resumes at the next record (the next line
//! starting `WARC/` in the stream, or the next gzip member).

use std::io::{BufRead, Read};

/// How many stray bytes after a block are taken for a slightly short `Content-Length`
/// (the record is kept) rather than damage (the record is skipped).
const SHORT_SLACK: usize = 256;

/// Records larger than this are skipped (and reported): a bound on memory per task.
pub const MAX_RECORD_BYTES: u64 = 256 << 20;

/// One WARC record: its named fields and its block, and where it starts in the file.
#[derive(Debug, Clone)]
pub struct WarcRecord {
    /// Byte offset of the record in the file (of its gzip member when compressed).
    pub offset: u64,
    /// The version line, `WARC/1.0` or `WARC/1.1`.
    pub version: String,
    /// Named fields in file order.
    pub fields: Vec<(String, String)>,
    pub block: Vec<u8>,
    /// Something not quite right that did not stop the record being read (a
    /// `Content-Length` a few bytes short), for the caller to report.
    pub note: Option<String>,
}

impl WarcRecord {
    /// The value of a named field (case-insensitive, as the standard says).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `WARC-Type`, lower-cased by the caller if needed.
    pub fn record_type(&self) -> &str {
        self.field("WARC-Type").unwrap_or("")
    }

    /// `WARC-Target-URI` without the angle brackets some writers put around it.
    pub fn target_uri(&self) -> Option<&str> {
        self.field("WARC-Target-URI")
            .map(|u| u.trim().trim_start_matches('<').trim_end_matches('>'))
    }
}

/// A damaged stretch of a WARC file: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarcError {
    pub offset: u64,
    pub message: String,
}

impl std::fmt::Display for WarcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "byte offset {}: {}", self.offset, self.message)
    }
}

/// A `BufRead` that counts the bytes consumed from it and can take bytes back.
struct Source<R> {
    /// Bytes given back with [`Source::unread`], read before `inner`.
    front: Vec<u8>,
    at: usize,
    inner: R,
    /// Bytes consumed so far (less those given back).
    pos: u64,
}

impl<R: BufRead> Source<R> {
    fn new(inner: R) -> Self {
        Source {
            front: Vec::new(),
            at: 0,
            inner,
            pos: 0,
        }
    }

    /// Put `bytes` back: they were the last bytes consumed and will be read again.
    fn unread(&mut self, bytes: &[u8]) {
        let mut v = bytes.to_vec();
        v.extend_from_slice(&self.front[self.at..]);
        self.front = v;
        self.at = 0;
        self.pos -= bytes.len() as u64;
    }

    /// Whether the next bytes are `prefix` (consumes nothing).
    fn peek_is(&mut self, prefix: &[u8]) -> std::io::Result<bool> {
        let mut got = vec![0u8; prefix.len()];
        let mut n = 0;
        while n < got.len() {
            let k = self.read(&mut got[n..])?;
            if k == 0 {
                break;
            }
            n += k;
        }
        self.unread(&got[..n]);
        Ok(&got[..n] == prefix)
    }

    fn into_inner(self) -> (R, Vec<u8>) {
        (self.inner, self.front[self.at..].to_vec())
    }
}

impl<R: BufRead> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Source<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.at < self.front.len() {
            Ok(&self.front[self.at..])
        } else {
            self.inner.fill_buf()
        }
    }
    fn consume(&mut self, amt: usize) {
        self.pos += amt as u64;
        if self.at < self.front.len() {
            self.at += amt;
            if self.at >= self.front.len() {
                self.front.clear();
                self.at = 0;
            }
        } else {
            self.inner.consume(amt)
        }
    }
}

/// What reading one record from a stream of records gave.
enum Next {
    Record(WarcRecord),
    /// A damaged record, at this position in the stream: reported, and the stream moved
    /// on to the next `WARC/` line.
    Damaged(u64, String),
    End,
}

/// Reads records one after another from uncompressed bytes.
struct RecordStream<R> {
    src: Source<R>,
    /// A `WARC/` line already read while looking for the next record: its position.
    pending_version: Option<(u64, String)>,
    line: Vec<u8>,
}

impl<R: BufRead> RecordStream<R> {
    fn new(inner: R) -> Self {
        RecordStream {
            src: Source::new(inner),
            pending_version: None,
            line: Vec::with_capacity(256),
        }
    }

    /// Read one line (with its terminator) into `self.line`; `Ok(false)` at the end.
    fn read_line(&mut self) -> std::io::Result<bool> {
        self.line.clear();
        // Header lines are short; a "line" of a megabyte is damage, not a header.
        let n = (&mut self.src)
            .take(1 << 20)
            .read_until(b'\n', &mut self.line)?;
        Ok(n > 0)
    }

    /// The next record, or the damage met looking for it.
    fn next(&mut self) -> std::io::Result<Next> {
        // Find the version line, skipping blank lines between records.
        let (start, version) = match self.pending_version.take() {
            Some(v) => v,
            None => loop {
                let start = self.src.pos;
                if !self.read_line()? {
                    return Ok(Next::End);
                }
                let l = trim_eol(&self.line);
                if l.is_empty() {
                    continue;
                }
                if l.starts_with(b"WARC/") {
                    break (start, String::from_utf8_lossy(l).into_owned());
                }
                let message = format!("expected a `WARC/` version line, found {:?}", preview(l));
                return self.damaged(start, message);
            },
        };
        let mut fields: Vec<(String, String)> = Vec::new();
        loop {
            if !self.read_line()? {
                let message = "the file ends inside the record's header".into();
                return Ok(Next::Damaged(start, message));
            }
            let l = trim_eol(&self.line);
            if l.is_empty() {
                break;
            }
            if (l[0] == b' ' || l[0] == b'\t') && !fields.is_empty() {
                // A continuation line (a folded field value).
                let v = String::from_utf8_lossy(l.trim_ascii()).into_owned();
                let last = fields.last_mut().expect("non-empty");
                last.1.push(' ');
                last.1.push_str(&v);
                continue;
            }
            if l.starts_with(b"WARC/") {
                // A record that ends before its blank line: the header was cut short.
                let v = String::from_utf8_lossy(l).into_owned();
                self.pending_version = Some((self.src.pos - self.line.len() as u64, v));
                let message = "the record's header is cut short by another record".into();
                return Ok(Next::Damaged(start, message));
            }
            let Some(colon) = l.iter().position(|&b| b == b':') else {
                let message = format!("header line without `:`: {:?}", preview(l));
                return self.damaged(start, message);
            };
            let name = String::from_utf8_lossy(l[..colon].trim_ascii()).into_owned();
            let value = String::from_utf8_lossy(l[colon + 1..].trim_ascii()).into_owned();
            fields.push((name, value));
        }
        let length = fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
            .map(|(_, v)| v.clone());
        let length: u64 = match length.as_deref().map(str::parse) {
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                let message = format!("bad Content-Length {:?}", length.unwrap_or_default());
                return self.damaged(start, message);
            }
            None => return self.damaged(start, "no Content-Length".into()),
        };
        if length > MAX_RECORD_BYTES {
            // Skip the block without holding it.
            let skipped = std::io::copy(&mut (&mut self.src).take(length), &mut std::io::sink())?;
            self.skip_record_end()?;
            let message = format!(
                "a record of {length} bytes is over the {MAX_RECORD_BYTES}-byte limit{}",
                if skipped < length {
                    " (and truncated)"
                } else {
                    ""
                }
            );
            return Ok(Next::Damaged(start, message));
        }
        let block_start = self.src.pos;
        let mut block = Vec::with_capacity(length as usize);
        (&mut self.src).take(length).read_to_end(&mut block)?;
        if (block.len() as u64) < length {
            let message = format!(
                "the block has {} bytes, not its Content-Length {length}: the data is cut short",
                block.len()
            );
            // Records may follow inside what was taken for the block.
            if let Some(i) = find_version_line(&block) {
                self.src.unread(&block[i..]);
            }
            return Ok(Next::Damaged(start, message));
        }
        if !self.skip_record_end()? {
            // The block is not followed by the blank lines that end a record: the
            // Content-Length is wrong. The record is left out; reading resumes at the
            // next `WARC/` line, which may lie inside what was taken for the block.
            let message = format!(
                "the {length}-byte block is not followed by a blank line: its Content-Length is wrong"
            );
            if let Some(i) = find_version_line(&block) {
                debug_assert_eq!(self.src.pos, block_start + length);
                self.src.unread(&block[i..]);
                return Ok(Next::Damaged(start, message));
            }
            // A length a few bytes short (seen in real archives): the record is kept as
            // its length says, and the bytes before the next record are reported.
            let extra = self.skip_to_version(SHORT_SLACK)?;
            if let Some(extra) = extra {
                return Ok(Next::Record(WarcRecord {
                    offset: start,
                    version,
                    fields,
                    block,
                    note: Some(format!(
                        "{extra} bytes follow the {length}-byte block before the next record: \
                         its Content-Length is short; they were left out"
                    )),
                }));
            }
            return self.damaged(start, message);
        }
        Ok(Next::Record(WarcRecord {
            offset: start,
            version,
            fields,
            block,
            note: None,
        }))
    }

    /// Report damage at `start` after moving on to the next `WARC/` line.
    fn damaged(&mut self, start: u64, message: String) -> std::io::Result<Next> {
        loop {
            let at = self.src.pos;
            if !self.read_line()? {
                break;
            }
            if self.line.starts_with(b"WARC/") {
                let v = String::from_utf8_lossy(trim_eol(&self.line)).into_owned();
                self.pending_version = Some((at, v));
                break;
            }
        }
        Ok(Next::Damaged(start, message))
    }

    /// Consume up to `limit` bytes to the next `WARC/` line (or the end), leaving that
    /// line pending; how many bytes other than line ends were passed over. `None`, with
    /// the bytes given back, when there are more than `limit`.
    fn skip_to_version(&mut self, limit: usize) -> std::io::Result<Option<usize>> {
        let mut taken: Vec<u8> = Vec::new();
        loop {
            let at = self.src.pos;
            self.line.clear();
            let n = (&mut self.src)
                .take((limit + 1 - taken.len().min(limit)) as u64)
                .read_until(b'\n', &mut self.line)?;
            if n == 0 {
                break;
            }
            if self.line.starts_with(b"WARC/") && self.line.ends_with(b"\n") {
                let v = String::from_utf8_lossy(trim_eol(&self.line)).into_owned();
                self.pending_version = Some((at, v));
                break;
            }
            taken.extend_from_slice(&self.line);
            if taken.len() > limit {
                self.src.unread(&taken);
                return Ok(None);
            }
        }
        Ok(Some(
            taken.iter().filter(|&&b| b != b'\r' && b != b'\n').count(),
        ))
    }

    /// After a block: consume the CRLF CRLF that ends a record. Lenient about LF-only
    /// endings and about the end of the stream; `false` (consuming nothing) when other
    /// bytes follow.
    fn skip_record_end(&mut self) -> std::io::Result<bool> {
        let mut got = Vec::with_capacity(4);
        loop {
            let buf = self.src.fill_buf()?;
            let Some(&b) = buf.first() else {
                return Ok(true);
            };
            if b == b'\r' || b == b'\n' {
                got.push(b);
                self.src.consume(1);
                if got.ends_with(b"\n\n") || got.ends_with(b"\n\r\n") {
                    return Ok(true);
                }
                continue;
            }
            if got.contains(&b'\n') && self.src.peek_is(b"WARC/")? {
                return Ok(true);
            }
            self.src.unread(&got);
            return Ok(false);
        }
    }
}

/// The offset of the first line starting `WARC/` in `block` after its first byte.
fn find_version_line(block: &[u8]) -> Option<usize> {
    memchr::memmem::find(block, b"\nWARC/").map(|i| i + 1)
}

fn trim_eol(l: &[u8]) -> &[u8] {
    let mut l = l;
    while let [rest @ .., b'\n' | b'\r'] = l {
        l = rest;
    }
    l
}

fn preview(l: &[u8]) -> String {
    let s = String::from_utf8_lossy(&l[..l.len().min(60)]).into_owned();
    if l.len() > 60 { format!("{s}…") } else { s }
}

type Member<R> = RecordStream<std::io::BufReader<flate2::bufread::GzDecoder<Source<R>>>>;

enum State<R: BufRead> {
    Plain(RecordStream<R>),
    /// Between gzip members.
    GzBetween(Source<R>),
    /// Inside the gzip member that starts at this file offset.
    GzMember(u64, Box<Member<R>>),
    Done,
}

/// Reads every record of a WARC file, plain or gzip (one member per record or one for
/// the whole file), reporting damaged stretches and reading on after them.
pub struct WarcReader<R: BufRead> {
    state: State<R>,
    /// While skipping damage in a gzip file: the offset already reported, so candidate
    /// members that fail to inflate while looking for the next good one are not each
    /// reported again.
    resyncing: Option<u64>,
}

impl<R: BufRead> WarcReader<R> {
    /// A reader over `inner`; gzip is recognised by its magic bytes.
    pub fn new(mut inner: R) -> std::io::Result<Self> {
        let gzip = inner.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let state = if gzip {
            State::GzBetween(Source::new(inner))
        } else {
            State::Plain(RecordStream::new(inner))
        };
        Ok(WarcReader {
            state,
            resyncing: None,
        })
    }

    /// The next record or damaged stretch; `None` at the end of the file. An `Err` of
    /// reading the underlying file (not damage in it) ends the iteration after it.
    pub fn next_record(&mut self) -> Option<Result<WarcRecord, WarcError>> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return None,
                State::Plain(mut s) => {
                    let r = s.next();
                    self.state = State::Plain(s);
                    match r {
                        Ok(Next::Record(r)) => return Some(Ok(r)),
                        Ok(Next::Damaged(at, message)) => {
                            return Some(Err(WarcError {
                                offset: at,
                                message,
                            }));
                        }
                        Ok(Next::End) => {
                            self.state = State::Done;
                            return None;
                        }
                        Err(e) => {
                            self.state = State::Done;
                            return Some(Err(WarcError {
                                offset: 0,
                                message: format!("read error: {e}"),
                            }));
                        }
                    }
                }
                State::GzBetween(mut raw) => {
                    let at = raw.pos;
                    let starts = match raw.fill_buf() {
                        Ok([]) => {
                            self.state = State::Done;
                            return None;
                        }
                        Ok(buf) => {
                            buf.starts_with(&[0x1f])
                                && raw.peek_is(&[0x1f, 0x8b, 8]).unwrap_or(false)
                        }
                        Err(e) => {
                            return Some(Err(WarcError {
                                offset: at,
                                message: format!("read error: {e}"),
                            }));
                        }
                    };
                    if !starts {
                        // Bytes that are no gzip member: skip to the next member.
                        let report = self.resyncing.is_none();
                        self.resyncing.get_or_insert(at);
                        let skipped = skip_to_gzip_magic(&mut raw);
                        self.state = State::GzBetween(raw);
                        if report {
                            return Some(Err(WarcError {
                                offset: at,
                                message: format!(
                                    "{} bytes that are not a gzip member; skipped",
                                    skipped.unwrap_or(0)
                                ),
                            }));
                        }
                        continue;
                    }
                    let decoder = flate2::bufread::GzDecoder::new(raw);
                    let stream =
                        RecordStream::new(std::io::BufReader::with_capacity(1 << 16, decoder));
                    self.state = State::GzMember(at, Box::new(stream));
                }
                State::GzMember(at, mut s) => {
                    let r = s.next();
                    match r {
                        Ok(Next::Record(mut r)) => {
                            self.resyncing = None;
                            r.offset = at;
                            self.state = State::GzMember(at, s);
                            return Some(Ok(r));
                        }
                        Ok(Next::Damaged(inner, message)) => {
                            self.state = State::GzMember(at, s);
                            let message = if inner > 0 {
                                format!("{message} (at byte {inner} of the member, uncompressed)")
                            } else {
                                message
                            };
                            return Some(Err(WarcError {
                                offset: at,
                                message,
                            }));
                        }
                        Ok(Next::End) => {
                            self.state = State::GzBetween(member_raw(*s));
                        }
                        Err(e) => {
                            // The member does not inflate: skip to the next member.
                            let mut raw = member_raw(*s);
                            if raw.pos == at {
                                raw.consume(1);
                            }
                            let _skipped = skip_to_gzip_magic(&mut raw).ok();
                            self.state = State::GzBetween(raw);
                            if self.resyncing.is_none() {
                                self.resyncing = Some(at);
                                return Some(Err(WarcError {
                                    offset: at,
                                    message: format!(
                                        "a gzip member that does not inflate ({e}); skipped to the next member"
                                    ),
                                }));
                            }
                        }
                    }
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for WarcReader<R> {
    type Item = Result<WarcRecord, WarcError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

/// The raw file source under a member's decoder, with any bytes the member's stream had
/// taken back (none at a member's end).
fn member_raw<R: BufRead>(s: Member<R>) -> Source<R> {
    let (reader, _) = s.src.into_inner();
    reader.into_inner().into_inner()
}

/// Consume bytes up to the next `1f 8b 08` (a gzip member's start); how many were skipped.
fn skip_to_gzip_magic<R: BufRead>(raw: &mut Source<R>) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buf = raw.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        match memchr::memchr(0x1f, buf) {
            Some(i) => {
                raw.consume(i);
                skipped += i as u64;
                if raw.peek_is(&[0x1f, 0x8b, 8])? {
                    return Ok(skipped);
                }
                raw.consume(1);
                skipped += 1;
            }
            None => {
                let n = buf.len();
                raw.consume(n);
                skipped += n as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &str, uri: &str, block: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Target-URI: {uri}\r\n\
             WARC-Date: 2024-01-02T03:04:05Z\r\nContent-Length: {}\r\n\r\n",
            block.len()
        )
        .into_bytes();
        r.extend_from_slice(block);
        r.extend_from_slice(b"\r\n\r\n");
        r
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, bytes).unwrap();
        e.finish().unwrap()
    }

    fn records() -> Vec<Vec<u8>> {
        (0..5)
            .map(|i| {
                record(
                    "response",
                    &format!("http://h/{i}"),
                    format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>page {i}</p>")
                        .as_bytes(),
                )
            })
            .collect()
    }

    /// (uri of each record read, errors as (offset, message)).
    fn read(bytes: &[u8]) -> (Vec<String>, Vec<(u64, String)>) {
        let mut uris = Vec::new();
        let mut errors = Vec::new();
        for r in WarcReader::new(bytes).unwrap() {
            match r {
                Ok(r) => uris.push(r.target_uri().unwrap().to_string()),
                Err(e) => errors.push((e.offset, e.message)),
            }
        }
        (uris, errors)
    }

    fn all_uris() -> Vec<String> {
        (0..5).map(|i| format!("http://h/{i}")).collect()
    }

    #[test]
    fn plain_gzip_per_record_and_gzip_whole_file_read_alike() {
        let recs = records();
        let plain: Vec<u8> = recs.concat();
        let per_record: Vec<u8> = recs.iter().flat_map(|r| gzip(r)).collect();
        let whole = gzip(&plain);
        for bytes in [&plain, &per_record, &whole] {
            assert_eq!(read(bytes), (all_uris(), vec![]));
        }
        // Offsets are where each record (or its gzip member) starts.
        let offsets: Vec<u64> = WarcReader::new(&per_record[..])
            .unwrap()
            .map(|r| r.unwrap().offset)
            .collect();
        let mut want = vec![0u64];
        for r in &recs[..4] {
            want.push(want.last().unwrap() + gzip(r).len() as u64);
        }
        assert_eq!(offsets, want);
        let r = WarcReader::new(&plain[..])
            .unwrap()
            .nth(1)
            .unwrap()
            .unwrap();
        assert_eq!(r.offset, recs[0].len() as u64);
        assert_eq!(r.field("warc-type"), Some("response"));
        assert!(r.block.ends_with(b"<p>page 1</p>"));
    }

    #[test]
    fn a_gzip_member_that_does_not_inflate_is_skipped_and_reported() {
        let members: Vec<Vec<u8>> = records().iter().map(|r| gzip(r)).collect();
        let mut bytes = Vec::new();
        let mut bad_at = 0;
        for (i, mut m) in members.into_iter().enumerate() {
            if i == 2 {
                bad_at = bytes.len() as u64;
                let mid = m.len() / 2;
                for b in &mut m[12..mid] {
                    *b ^= 0x5a;
                }
            }
            bytes.extend_from_slice(&m);
        }
        let (uris, errors) = read(&bytes);
        let mut want = all_uris();
        want.remove(2);
        assert_eq!(uris, want);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, bad_at);
        assert!(errors[0].1.contains("does not inflate"), "{errors:?}");
    }

    #[test]
    fn wrong_lengths_bad_headers_and_truncation_lose_only_their_record() {
        let recs = records();
        let at = |i: usize| recs[..i].iter().map(Vec::len).sum::<usize>() as u64;
        // Content-Length too long: the record swallows the next one's start, which is
        // found again inside it.
        let mut long = recs.clone();
        long[1] = String::from_utf8(long[1].clone())
            .unwrap()
            .replacen("Content-Length: 57", "Content-Length: 90", 1)
            .into_bytes();
        assert_ne!(long[1], recs[1], "the length to change is 57");
        let (uris, errors) = read(&long.concat());
        assert_eq!(
            uris,
            ["http://h/0", "http://h/2", "http://h/3", "http://h/4"]
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, at(1));
        assert!(
            errors[0].1.contains("Content-Length is wrong"),
            "{errors:?}"
        );
        // Too short, and a header line without a colon.
        let mut bad = recs.clone();
        bad[1] = String::from_utf8(bad[1].clone())
            .unwrap()
            .replacen("Content-Length: 57", "Content-Length: 20", 1)
            .into_bytes();
        bad[3] = String::from_utf8(bad[3].clone())
            .unwrap()
            .replacen("WARC-Type: response", "WARC-Type response", 1)
            .into_bytes();
        let (uris, errors) = read(&bad.concat());
        assert_eq!(
            uris,
            ["http://h/0", "http://h/1", "http://h/2", "http://h/4"]
        );
        assert_eq!(
            errors.iter().map(|e| e.0).collect::<Vec<_>>(),
            [at(3)],
            "{errors:?}"
        );
        // The short record is kept as its length says, with a note of what was left.
        let short = WarcReader::new(&bad.concat()[..])
            .unwrap()
            .nth(1)
            .unwrap()
            .unwrap();
        assert_eq!(short.block.len(), 20);
        let note = short.note.unwrap();
        assert!(
            note.starts_with("33 bytes follow the 20-byte block"),
            "{note}"
        );
        // Cut off in the middle of the last record.
        let all = recs.concat();
        let (uris, errors) = read(&all[..all.len() - 30]);
        assert_eq!(uris, all_uris()[..4]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, at(4));
        // Garbage before the first record, and an empty file.
        let mut junk = b"not a warc\r\n".to_vec();
        junk.extend_from_slice(&all);
        let (uris, errors) = read(&junk);
        assert_eq!((uris, errors.len()), (all_uris(), 1));
        assert_eq!(read(b""), (vec![], vec![]));
    }
}
