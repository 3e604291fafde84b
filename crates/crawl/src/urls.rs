//! URL normalisation and the crawl's scope.

use url::Url;

/// `url` made canonical so one page has one spelling: http(s) only, no fragment, no
/// default port (the `url` crate drops it), host lower-cased, percent-escapes of
/// unreserved characters decoded and the others upper-cased, an empty path as `/`, and
/// with `sort_query` the query's `&`-separated pairs sorted. `None` for other schemes.
pub fn normalize(url: &Url, sort_query: bool) -> Option<String> {
    if url.scheme() != "http" && url.scheme() != "https" {
        return None;
    }
    url.host_str()?;
    let mut u = url.clone();
    u.set_fragment(None);
    let path = normalize_escapes(u.path());
    u.set_path(if path.is_empty() { "/" } else { &path });
    if let Some(q) = u.query() {
        let mut q = normalize_escapes(q);
        if sort_query {
            let mut pairs: Vec<&str> = q.split('&').filter(|p| !p.is_empty()).collect();
            pairs.sort_unstable();
            q = pairs.join("&");
        }
        u.set_query(if q.is_empty() { None } else { Some(&q) });
    }
    Some(u.into())
}

/// Decode `%XX` of unreserved characters (RFC 3986: letters, digits, `-._~`) and
/// upper-case the hex digits of the rest.
fn normalize_escapes(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && s.is_char_boundary(i + 3) {
            let hex = &s[i + 1..i + 3];
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
                    out.push(v as char);
                } else {
                    out.push('%');
                    out.push_str(&hex.to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
        }
        let c = s[i..].chars().next().expect("a char boundary");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Where the crawl may go.
#[derive(Debug, Clone)]
pub struct Scope {
    /// `host` or `host:port`, lower-case.
    pub hosts: Vec<String>,
    pub prefixes: Vec<String>,
    pub include: Vec<regex::Regex>,
    pub exclude: Vec<regex::Regex>,
}

impl Scope {
    /// Whether the normalised `url` is in scope.
    pub fn allows(&self, url: &Url, normalized: &str) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let with_port = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        if !self.hosts.iter().any(|h| *h == host || *h == with_port) {
            return false;
        }
        if !self.prefixes.is_empty() && !self.prefixes.iter().any(|p| normalized.starts_with(p)) {
            return false;
        }
        if !self.include.is_empty() && !self.include.iter().any(|r| r.is_match(normalized)) {
            return false;
        }
        !self.exclude.iter().any(|r| r.is_match(normalized))
    }
}

/// The host of a URL as a politeness key: `host:port`.
pub fn host_key(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("").to_ascii_lowercase(),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str, sort: bool) -> String {
        normalize(&Url::parse(s).unwrap(), sort).unwrap()
    }

    #[test]
    fn one_page_one_spelling() {
        assert_eq!(
            n("HTTP://Example.ORG:80/a/%7euser/%2f?b=2&a=1#frag", false),
            "http://example.org/a/~user/%2F?b=2&a=1"
        );
        assert_eq!(n("https://example.org:443", false), "https://example.org/");
        assert_eq!(
            n("http://example.org/p?b=2&a=1&", true),
            "http://example.org/p?a=1&b=2"
        );
        assert_eq!(
            n("http://example.org/a/../b/./c", false),
            "http://example.org/b/c"
        );
        assert!(normalize(&Url::parse("mailto:a@b.org").unwrap(), false).is_none());
        assert_eq!(n("http://example.org/%", false), "http://example.org/%");
    }

    #[test]
    fn scope_checks_host_port_prefix_and_patterns() {
        let s = Scope {
            hosts: vec!["127.0.0.1:8080".into(), "docs.example.org".into()],
            prefixes: vec![],
            include: vec![],
            exclude: vec![regex::Regex::new(r"\.pdf$").unwrap()],
        };
        let ok = |u: &str| s.allows(&Url::parse(u).unwrap(), u);
        assert!(ok("http://127.0.0.1:8080/x"));
        assert!(!ok("http://127.0.0.1:9090/x"));
        assert!(!ok("http://localhost:8080/x"));
        assert!(ok("https://docs.example.org/a"));
        assert!(!ok("https://docs.example.org/a.pdf"));
    }
}
