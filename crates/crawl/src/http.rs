//! HTTP responses as archives hold them: the status line and headers, then the payload,
//! which may still be chunked or compressed as it was sent.

use std::io::Read;

/// Payloads larger than this after decompression are refused (a bound on memory, and
/// on decompression bombs).
pub const MAX_PAYLOAD_BYTES: u64 = 64 << 20;

/// An HTTP response, parsed, with its payload decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The headers as `Name: value` lines, as stored in the `headers` column.
    pub fn headers_text(&self) -> String {
        headers_text(&self.headers)
    }
}

/// The first header of that name (case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Headers as `Name: value` lines.
pub fn headers_text(headers: &[(String, String)]) -> String {
    let mut s = String::new();
    for (k, v) in headers {
        s.push_str(k);
        s.push_str(": ");
        s.push_str(v);
        s.push('\n');
    }
    s
}

/// Parse an HTTP/1.x response (status line, headers, payload) as a WARC `response`
/// record's block holds it, undoing chunked transfer coding and gzip, deflate or zstd
/// content coding. The `Content-Length` header is not trusted: the payload is the rest of
/// the block. Errors say what was wrong.
pub fn parse_response(block: &[u8]) -> Result<HttpResponse, String> {
    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut response = httparse::Response::new(&mut headers);
    let mut config = httparse::ParserConfig::default();
    config
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_responses(true);
    let head_len = match config.parse_response(&mut response, block) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            // A head without the blank line that ends it: all head, no payload.
            return Err("the HTTP head does not end (no blank line)".into());
        }
        Err(e) => return Err(format!("bad HTTP head: {e}")),
    };
    let status = response.code.unwrap_or(0);
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|h| !h.name.is_empty())
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let mut body = block[head_len..].to_vec();
    if header(&headers, "Transfer-Encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        body = dechunk(&body)?;
    }
    if let Some(coding) = header(&headers, "Content-Encoding") {
        body = decode_content(coding, body)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Undo chunked transfer coding. A body that is not validly chunked (archives often hold
/// the payload de-chunked while keeping the header) is returned as it is.
fn dechunk(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    loop {
        let (start, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(x)) => x,
            // Not chunked after all, or cut short: keep what there is.
            _ if out.is_empty() => return Ok(body.to_vec()),
            _ => return Ok(out),
        };
        if size == 0 {
            return Ok(out);
        }
        let size = usize::try_from(size).map_err(|_| "a chunk size too large".to_string())?;
        let data = &rest[start..];
        if data.len() < size {
            out.extend_from_slice(data);
            return Ok(out);
        }
        out.extend_from_slice(&data[..size]);
        rest = &data[size..];
        rest = rest.strip_prefix(b"\r\n").unwrap_or(rest);
    }
}

/// Undo a content coding. `identity` and unknown-but-harmless values pass through.
pub fn decode_content(coding: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
    let coding = coding.trim().to_ascii_lowercase();
    let mut out = Vec::new();
    let result = match coding.as_str() {
        "" | "identity" | "none" => return Ok(body),
        "gzip" | "x-gzip" => {
            if !body.starts_with(&[0x1f, 0x8b]) {
                // Stored already decoded, with the header kept.
                return Ok(body);
            }
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(MAX_PAYLOAD_BYTES + 1)
                .read_to_end(&mut out)
        }
        "deflate" => {
            // Servers send zlib-wrapped or raw deflate under this name.
            let zlib = flate2::read::ZlibDecoder::new(&body[..])
                .take(MAX_PAYLOAD_BYTES + 1)
                .read_to_end(&mut out);
            if zlib.is_err() {
                out.clear();
                flate2::read::DeflateDecoder::new(&body[..])
                    .take(MAX_PAYLOAD_BYTES + 1)
                    .read_to_end(&mut out)
            } else {
                zlib
            }
        }
        "zstd" => zstd::stream::read::Decoder::new(&body[..])
            .and_then(|d| d.take(MAX_PAYLOAD_BYTES + 1).read_to_end(&mut out)),
        other => return Err(format!("unsupported Content-Encoding `{other}`")),
    };
    match result {
        Ok(_) if out.len() as u64 > MAX_PAYLOAD_BYTES => Err(format!(
            "the payload inflates past {MAX_PAYLOAD_BYTES} bytes"
        )),
        Ok(_) => Ok(out),
        Err(e) => Err(format!("the {coding} payload does not decode: {e}")),
    }
}

/// The media type of a `Content-Type` value, lower-cased, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The `charset` parameter of a `Content-Type` value.
pub fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(['"', '\'']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response_and_undoes_chunking_and_gzip() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, b"<p>hello</p>").unwrap();
        let gz = gz.finish().unwrap();
        let mut block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=\"utf-8\"\r\n\
            Transfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
            .to_vec();
        let (a, b) = gz.split_at(5);
        for part in [a, b] {
            block.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            block.extend_from_slice(part);
            block.extend_from_slice(b"\r\n");
        }
        block.extend_from_slice(b"0\r\n\r\n");
        let r = parse_response(&block).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"<p>hello</p>");
        assert_eq!(
            charset_param(r.header("content-type").unwrap()),
            Some("utf-8")
        );
        assert_eq!(media_type(r.header("content-type").unwrap()), "text/html");
    }

    #[test]
    fn a_missing_status_text_and_a_wrong_content_length_are_accepted() {
        let block = b"HTTP/1.0 302 \r\nLocation: http://x/\r\nContent-Length: 99\r\n\r\nabc";
        let r = parse_response(block).unwrap();
        assert_eq!(r.status, 302);
        assert_eq!(r.body, b"abc");
        assert!(parse_response(b"garbage").is_err());
    }
}
