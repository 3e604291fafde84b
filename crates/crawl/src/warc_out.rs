//! Writing WARC/1.1 files: one gzip member per record (so any record can be read on its
//! own from its offset), request and response records with SHA-1 block and payload
//! digests, a warcinfo record first — what archive tools (warcio, pywb, wget) read.

use std::io::Write;

use sha1::{Digest, Sha1};

/// `sha1:` and the base32 SHA-1 of `bytes`, as WARC digests are written.
pub fn sha1_digest(bytes: &[u8]) -> String {
    format!(
        "sha1:{}",
        data_encoding::BASE32.encode(&Sha1::digest(bytes))
    )
}

/// A `<urn:uuid:…>` record id derived from `seed` (unique per record, stable per input).
pub fn record_id(seed: &str) -> String {
    let h = xxhash_rust::xxh3::xxh3_128(seed.as_bytes()).to_be_bytes();
    let mut b = h;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4 layout
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let x = |r: std::ops::Range<usize>| b[r].iter().map(|v| format!("{v:02x}")).collect::<String>();
    format!(
        "<urn:uuid:{}-{}-{}-{}-{}>",
        x(0..4),
        x(4..6),
        x(6..8),
        x(8..10),
        x(10..16)
    )
}

/// Writes records, each its own gzip member.
pub struct WarcWriter<W: Write> {
    out: W,
    /// Bytes written so far (compressed).
    pub bytes: u64,
}

impl<W: Write> WarcWriter<W> {
    pub fn new(out: W) -> Self {
        WarcWriter { out, bytes: 0 }
    }

    /// One record: `WARC-Type` `kind`, the given named fields (after the record id and
    /// date), `Content-Type`, a block digest, and `block`. Returns its record id.
    pub fn record(
        &mut self,
        kind: &str,
        id: &str,
        date: &str,
        content_type: &str,
        fields: &[(&str, &str)],
        block: &[u8],
    ) -> std::io::Result<()> {
        let mut head = format!(
            "WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Record-ID: {id}\r\nWARC-Date: {date}\r\n"
        );
        for (k, v) in fields {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nWARC-Block-Digest: {}\r\nContent-Length: {}\r\n\r\n",
            sha1_digest(block),
            block.len()
        ));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(head.as_bytes())?;
        gz.write_all(block)?;
        gz.write_all(b"\r\n\r\n")?;
        let member = gz.finish()?;
        self.out.write_all(&member)?;
        self.bytes += member.len() as u64;
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_one_member_each_with_their_digests() {
        let mut w = WarcWriter::new(Vec::new());
        w.record(
            "warcinfo",
            &record_id("a"),
            "2026-01-02T03:04:05Z",
            "application/warc-fields",
            &[],
            b"software: primer\r\n",
        )
        .unwrap();
        w.record(
            "response",
            &record_id("b"),
            "2026-01-02T03:04:05Z",
            "application/http; msgtype=response",
            &[("WARC-Target-URI", "http://x/")],
            b"HTTP/1.1 200 OK\r\n\r\nhi",
        )
        .unwrap();
        let bytes = w.into_inner();
        let records: Vec<_> = crate::warc::WarcReader::new(&bytes[..])
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].target_uri(), Some("http://x/"));
        assert_eq!(
            records[1].field("WARC-Block-Digest").unwrap(),
            sha1_digest(b"HTTP/1.1 200 OK\r\n\r\nhi")
        );
        assert!(records[1].offset > 0, "each record is its own member");
        assert_eq!(sha1_digest(b""), "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ");
        assert_ne!(record_id("a"), record_id("b"));
        assert_eq!(record_id("a").len(), "<urn:uuid:>".len() + 36);
    }
}
