//! The `crawl` stage: a polite, resumable web crawler that writes a responses dataset.
//!
//! One task runs the whole crawl on a tokio runtime. The frontier (URLs waiting), the
//! seen set and every stored response live in a redb database in the stage's scratch
//! directory, committed in small groups: a killed crawl reopens it, writes out what it
//! had stored and goes on with what was waiting, fetching no stored page again. Memory
//! holds a window of at most [`WINDOW`] waiting URLs and one state per host; the
//! frontier itself can hold millions.
//!
//! Politeness: at most `concurrency` requests at once and `per_host_concurrency` per
//! host, `delay_ms` between the starts of two requests to a host (longer if robots.txt
//! asks with `Crawl-delay`), robots.txt fetched first from every host and obeyed for
//! the configured agent (RFC 9309: a 4xx robots.txt allows all, a 5xx or an unreachable
//! one disallows all), and a user agent naming the crawler and a contact URL.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arrow::datatypes::SchemaRef;
use primer_core::{
    BuildContext, Dataset, Error, InputSchema, Result, Stage, TaskContext, TaskOutput, hash_hex,
};
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::html::{ExtractOptions, extract};
use crate::http::{header, headers_text, media_type};
use crate::urls::{Scope, host_key, normalize};
use crate::{Response, ResponseRows};

/// Settings of the `crawl` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrawlConfig {
    /// Start URLs.
    #[serde(default)]
    pub seeds: Vec<String>,
    /// A file of start URLs, one per line (`#` starts a comment), relative to the
    /// pipeline file.
    #[serde(default)]
    pub seeds_file: Option<String>,
    /// An environment variable holding start URLs, separated by whitespace: a site given
    /// when the pipeline runs (`SITE=https://… primer run crawl.toml`). It must be set.
    #[serde(default)]
    pub seeds_env: Option<String>,
    /// Hosts the crawl may visit (`host` or `host:port`). Default: the seeds' hosts.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// When given, a URL must start with one of these. Default: no such rule.
    #[serde(default)]
    pub url_prefixes: Vec<String>,
    /// Regular expressions; when given, a URL must match one.
    #[serde(default)]
    pub include: Vec<String>,
    /// Regular expressions; a URL matching one is not visited.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Links followed from a seed at most (a seed is depth 0). Default 20.
    #[serde(default = "default_max_depth")]
    pub max_depth: u32,
    /// Responses stored at most; the crawl stops there. Default 10000.
    #[serde(default = "default_max_pages")]
    pub max_pages: u64,
    /// Payload bytes stored at most; the crawl stops there. Default 10 GiB.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Seconds the crawl runs at most (then it finishes what is in flight and stops).
    /// Default none.
    #[serde(default)]
    pub max_seconds: Option<f64>,
    /// The `User-Agent` header: the crawler's name and a contact URL.
    /// Default `primer-crawler/0.1 (+https://example.invalid/primer)`.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// The name robots.txt rules are matched against. Default: the user agent's first
    /// word before `/`.
    #[serde(default)]
    pub robots_agent: Option<String>,
    /// Obey robots.txt. Default true.
    #[serde(default = "default_true")]
    pub robots: bool,
    /// Add the sitemaps robots.txt names as seeds (their `<loc>` URLs). Default false.
    #[serde(default)]
    pub sitemaps: bool,
    /// Requests in flight at most. Default 16.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Requests in flight to one host at most. Default 2.
    #[serde(default = "default_per_host")]
    pub per_host_concurrency: usize,
    /// Milliseconds between the starts of two requests to one host (robots.txt's
    /// `Crawl-delay` wins when longer). Default 1000.
    #[serde(default = "default_delay_ms")]
    pub delay_ms: u64,
    /// Seconds a request may take, body included. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// Larger bodies are not stored (the page is counted as `too_large`). Default 10 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// Media types stored; others are counted and dropped before their body is read.
    /// Default `text/html`, `application/xhtml+xml`, `text/plain`.
    #[serde(default = "default_content_types")]
    pub content_types: Vec<String>,
    /// Redirect hops followed from one URL at most (within scope). Default 5.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// Retries of a request that times out, fails to connect or gets 429 or 5xx.
    /// Default 3.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First retry's wait in milliseconds, doubled each time, unless the server says
    /// `Retry-After`. Default 1000.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    /// A `Retry-After` longer than this many seconds is not waited for (the response is
    /// kept as it is). Default 120.
    #[serde(default = "default_max_retry_after")]
    pub max_retry_after_secs: u64,
    /// Sort query parameters when normalising URLs (`?b=1&a=2` = `?a=2&b=1`). Default false.
    #[serde(default)]
    pub sort_query: bool,
    /// The value of the `source` column. Default: the stage id.
    #[serde(default)]
    pub source: Option<String>,
    /// Also write the crawl as WARC/1.1 files (a request and a response record per page,
    /// one gzip member per record) into `warc/` in the stage's dataset directory, when
    /// the crawl completes. Default false.
    #[serde(default)]
    pub warc: bool,
}

fn default_true() -> bool {
    true
}
fn default_max_depth() -> u32 {
    20
}
fn default_max_pages() -> u64 {
    10_000
}
fn default_max_bytes() -> u64 {
    10 << 30
}
fn default_user_agent() -> String {
    "primer-crawler/0.1 (+https://example.invalid/primer)".into()
}
fn default_concurrency() -> usize {
    16
}
fn default_per_host() -> usize {
    2
}
fn default_delay_ms() -> u64 {
    1000
}
fn default_timeout() -> f64 {
    30.0
}
fn default_max_body() -> u64 {
    10 << 20
}
fn default_content_types() -> Vec<String> {
    vec![
        "text/html".into(),
        "application/xhtml+xml".into(),
        "text/plain".into(),
    ]
}
fn default_max_redirects() -> u32 {
    5
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> u64 {
    1000
}
fn default_max_retry_after() -> u64 {
    120
}

/// The store's page cache.
const STORE_CACHE_BYTES: usize = 64 << 20;
/// Waiting URLs held in memory at most; the rest wait in the store.
pub const WINDOW: usize = 4096;
/// Results gathered before a commit, at most, and for at most this long.
const COMMIT_RESULTS: usize = 64;
const COMMIT_EVERY: Duration = Duration::from_millis(200);

/// `url` → state (`QUEUED`, `DONE`).
const URLS: TableDefinition<&str, u8> = TableDefinition::new("urls");
/// Waiting URLs by sequence number: `depth`, `hops`, URL.
const QUEUE: TableDefinition<u64, (u32, u32, &str)> = TableDefinition::new("queue");
/// Stored responses by sequence number (see [`StoredPage`]).
const PAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("pages");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const QUEUED: u8 = 0;
const DONE: u8 = 1;

/// The `crawl` stage, built.
pub struct Crawl {
    config: CrawlConfig,
    seeds: Vec<String>,
    scope: Scope,
    source: String,
    robots_agent: String,
}

impl CrawlConfig {
    pub fn build(&self, ctx: &BuildContext) -> Result<Crawl> {
        let mut seeds: Vec<String> = self.seeds.clone();
        if let Some(f) = &self.seeds_file {
            let path = ctx.resolve(f);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            seeds.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim())
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        if let Some(var) = &self.seeds_env {
            match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => {
                    seeds.extend(v.split_whitespace().map(str::to_string))
                }
                _ => {
                    return Err(Error::input(format!(
                        "seeds_env: the environment variable `{var}` is not set: set it to the \
                         site to crawl (`{var}=https://… primer run …`)"
                    )));
                }
            }
        }
        if seeds.is_empty() {
            return Err(Error::input(
                "no seeds: give `seeds`, `seeds_file` or `seeds_env`",
            ));
        }
        let mut normalized = Vec::new();
        let mut hosts = Vec::new();
        for s in &seeds {
            let u = Url::parse(s)
                .map_err(|e| Error::input(format!("seeds: `{s}` is not a URL: {e}")))?;
            let n = normalize(&u, self.sort_query)
                .ok_or_else(|| Error::input(format!("seeds: `{s}` is not an http(s) URL")))?;
            let host = u.host_str().unwrap_or("").to_ascii_lowercase();
            let h = match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            };
            if !hosts.contains(&h) {
                hosts.push(h);
            }
            normalized.push(n);
        }
        let regexes = |name: &str, list: &[String]| -> Result<Vec<regex::Regex>> {
            list.iter()
                .map(|r| {
                    regex::Regex::new(r)
                        .map_err(|e| Error::input(format!("{name}: `{r}` is not a regex: {e}")))
                })
                .collect()
        };
        for (name, v) in [
            ("concurrency", self.concurrency),
            ("per_host_concurrency", self.per_host_concurrency),
        ] {
            if v == 0 {
                return Err(Error::input(format!("`{name}` must be at least 1")));
            }
        }
        if self.timeout_secs.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(Error::input("`timeout_secs` must be positive"));
        }
        let scope = Scope {
            hosts: if self.allowed_hosts.is_empty() {
                hosts
            } else {
                self.allowed_hosts
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect()
            },
            prefixes: self.url_prefixes.clone(),
            include: regexes("include", &self.include)?,
            exclude: regexes("exclude", &self.exclude)?,
        };
        let robots_agent = self.robots_agent.clone().unwrap_or_else(|| {
            self.user_agent
                .split(['/', ' '])
                .next()
                .unwrap_or("primer-crawler")
                .to_string()
        });
        Ok(Crawl {
            config: self.clone(),
            seeds: normalized,
            scope,
            source: self
                .source
                .clone()
                .unwrap_or_else(|| ctx.stage_id.to_string()),
            robots_agent,
        })
    }
}

impl Stage for Crawl {
    fn kind(&self) -> &'static str {
        "crawl"
    }

    fn output_schema(&self, inputs: &[InputSchema]) -> Result<SchemaRef> {
        if !inputs.is_empty() {
            return Err(Error::input(
                "a `crawl` stage takes no inputs; it reads the web",
            ));
        }
        Ok(crate::responses_schema())
    }

    fn external_fingerprint(&self) -> Result<String> {
        // The seeds as resolved (a seed file's or variable's contents count).
        Ok(self.seeds.join("\n"))
    }

    fn num_tasks(&self, _inputs: &[Dataset]) -> Result<usize> {
        Ok(1)
    }

    fn run_task(&self, _task: usize, ctx: &TaskContext, out: &mut TaskOutput) -> Result<()> {
        std::fs::create_dir_all(ctx.scratch_dir).map_err(|e| Error::io(ctx.scratch_dir, e))?;
        let store = Store::open(&ctx.scratch_dir.join("frontier.redb"))?;
        // What an earlier, killed run stored is written out first and not fetched again.
        let stored = store.replay(&self.source, out)?;
        if stored > 0 {
            out.count("pages_resumed", stored);
        }
        store.add_seeds(&self.seeds)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("tokio: {e}")))?;
        rt.block_on(Crawler::new(self, store, stored, ctx)?.run(out))?;
        if self.config.warc {
            let store = Store::open(&ctx.scratch_dir.join("frontier.redb"))?;
            let files = store.write_warcs(
                &ctx.dir.join("warc"),
                &self.source,
                &self.config.user_agent,
                out,
            )?;
            out.note("warc_files", files.into());
        }
        Ok(())
    }
}

/// A response as stored: metadata as JSON, then the body.
#[derive(Debug, Serialize, Deserialize)]
struct StoredPage {
    url: String,
    final_url: String,
    status: u16,
    headers: String,
    content_type: Option<String>,
    fetch_time: String,
}

fn encode_page(meta: &StoredPage, body: &[u8]) -> Vec<u8> {
    let m = serde_json::to_vec(meta).expect("serializable");
    let mut v = Vec::with_capacity(4 + m.len() + body.len());
    v.extend_from_slice(&(m.len() as u32).to_le_bytes());
    v.extend_from_slice(&m);
    v.extend_from_slice(body);
    v
}

fn decode_page(v: &[u8]) -> Option<(StoredPage, &[u8])> {
    let n = u32::from_le_bytes(v.get(..4)?.try_into().ok()?) as usize;
    let meta = serde_json::from_slice(v.get(4..4 + n)?).ok()?;
    Some((meta, &v[4 + n..]))
}

/// The crawl's persistent state.
struct Store {
    db: redb::Database,
    path: PathBuf,
}

fn store_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("{}: {e}", path.display()))
}

impl Store {
    fn open(path: &Path) -> Result<Store> {
        // redb caches up to 1 GiB by default; the frontier is read in order, so a small
        // cache does: memory stays flat however large the frontier grows.
        let db = redb::Database::builder()
            .set_cache_size(STORE_CACHE_BYTES)
            .create(path)
            .map_err(|e| store_err(path, e))?;
        let s = Store {
            db,
            path: path.to_path_buf(),
        };
        let w = s.write()?;
        {
            w.open_table(URLS).map_err(|e| s.err(e))?;
            w.open_table(QUEUE).map_err(|e| s.err(e))?;
            w.open_table(PAGES).map_err(|e| s.err(e))?;
            w.open_table(META).map_err(|e| s.err(e))?;
        }
        w.commit().map_err(|e| s.err(e))?;
        Ok(s)
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        store_err(&self.path, e)
    }

    fn write(&self) -> Result<redb::WriteTransaction> {
        self.db.begin_write().map_err(|e| self.err(e))
    }

    fn meta(&self, key: &str) -> Result<u64> {
        use redb::ReadableDatabase;
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(META).map_err(|e| self.err(e))?;
        Ok(t.get(key)
            .map_err(|e| self.err(e))?
            .map_or(0, |v| v.value()))
    }

    /// Write every stored page to `out`; how many.
    fn replay(&self, source: &str, out: &mut TaskOutput) -> Result<u64> {
        use redb::ReadableDatabase;
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(PAGES).map_err(|e| self.err(e))?;
        let mut rows = ResponseRows::default();
        let mut n = 0;
        for item in t.iter().map_err(|e| self.err(e))? {
            let (_, v) = item.map_err(|e| self.err(e))?;
            let Some((meta, body)) = decode_page(v.value()) else {
                return Err(self.err("a stored page does not decode"));
            };
            push_page(&mut rows, source, &meta, body);
            n += 1;
            if rows.rows >= 256 {
                rows.flush(out)?;
            }
        }
        rows.flush(out)?;
        Ok(n)
    }

    /// Every stored page as a request and a response record, in WARC files of about
    /// 1 GiB under `dir`, each written under a temporary name and renamed when whole.
    fn write_warcs(
        &self,
        dir: &Path,
        source: &str,
        user_agent: &str,
        out: &mut TaskOutput,
    ) -> Result<Vec<String>> {
        use crate::warc_out::{WarcWriter, record_id, sha1_digest};
        use redb::ReadableDatabase;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(PAGES).map_err(|e| self.err(e))?;
        let mut files: Vec<String> = Vec::new();
        let mut writer: Option<(PathBuf, WarcWriter<std::io::BufWriter<std::fs::File>>)> = None;
        let finish =
            |(path, w): (PathBuf, WarcWriter<std::io::BufWriter<std::fs::File>>)| -> Result<()> {
                let f = w
                    .into_inner()
                    .into_inner()
                    .map_err(|e| Error::io(&path, e.into_error()))?;
                f.sync_all().map_err(|e| Error::io(&path, e))?;
                std::fs::rename(primer_core::tmp_path(&path), &path)
                    .map_err(|e| Error::io(&path, e))
            };
        let now = rfc3339(SystemTime::now());
        for item in t.iter().map_err(|e| self.err(e))? {
            let (_, v) = item.map_err(|e| self.err(e))?;
            let Some((p, body)) = decode_page(v.value()) else {
                return Err(self.err("a stored page does not decode"));
            };
            if writer.as_ref().is_some_and(|(_, w)| w.bytes >= 1 << 30) {
                finish(writer.take().expect("open"))?;
            }
            let (path, w) = match &mut writer {
                Some(x) => x,
                None => {
                    let name = format!("{source}-{:05}.warc.gz", files.len());
                    let path = dir.join(&name);
                    let tmp = primer_core::tmp_path(&path);
                    let f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
                    let mut w = WarcWriter::new(std::io::BufWriter::new(f));
                    let info = format!(
                        "software: primer {}\r\nformat: WARC File Format 1.1\r\nhttp-header-user-agent: {user_agent}\r\n",
                        primer_core::PROGRAM_VERSION
                    );
                    w.record(
                        "warcinfo",
                        &record_id(&format!("{name}\0info")),
                        &now,
                        "application/warc-fields",
                        &[("WARC-Filename", &name)],
                        info.as_bytes(),
                    )
                    .map_err(|e| Error::io(&tmp, e))?;
                    files.push(name);
                    writer.insert((path, w))
                }
            };
            let url = Url::parse(&p.url).map_err(|e| self.err(format!("{}: {e}", p.url)))?;
            let mut target = url.path().to_string();
            if let Some(q) = url.query() {
                target.push('?');
                target.push_str(q);
            }
            let host = match url.port() {
                Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
                None => url.host_str().unwrap_or("").to_string(),
            };
            let request = format!(
                "GET {target} HTTP/1.1\r\nuser-agent: {user_agent}\r\naccept: */*\r\nhost: {host}\r\n\r\n"
            );
            let reason = reqwest::StatusCode::from_u16(p.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            let mut response = format!("HTTP/1.1 {} {reason}\r\n", p.status).into_bytes();
            for line in p.headers.lines() {
                // The body is stored de-chunked: say so the way Common Crawl does.
                let line = match line.split_once(':') {
                    Some((k, v)) if k.eq_ignore_ascii_case("transfer-encoding") => {
                        format!("X-Crawler-Transfer-Encoding:{v}")
                    }
                    _ => line.to_string(),
                };
                response.extend_from_slice(line.as_bytes());
                response.extend_from_slice(b"\r\n");
            }
            response.extend_from_slice(b"\r\n");
            response.extend_from_slice(body);
            let response_id = record_id(&format!("{source}\0{}\0response", p.url));
            let request_id = record_id(&format!("{source}\0{}\0request", p.url));
            let payload = sha1_digest(body);
            w.record(
                "response",
                &response_id,
                &p.fetch_time,
                "application/http; msgtype=response",
                &[
                    ("WARC-Target-URI", &p.url),
                    ("WARC-Payload-Digest", &payload),
                ],
                &response,
            )
            .map_err(|e| Error::io(&*path, e))?;
            w.record(
                "request",
                &request_id,
                &p.fetch_time,
                "application/http; msgtype=request",
                &[
                    ("WARC-Target-URI", &p.url),
                    ("WARC-Concurrent-To", &response_id),
                ],
                request.as_bytes(),
            )
            .map_err(|e| Error::io(&*path, e))?;
            out.count("warc_records", 2);
        }
        if let Some(x) = writer.take() {
            finish(x)?;
        }
        Ok(files)
    }

    fn add_seeds(&self, seeds: &[String]) -> Result<()> {
        let w = self.write()?;
        {
            let mut urls = w.open_table(URLS).map_err(|e| self.err(e))?;
            let mut queue = w.open_table(QUEUE).map_err(|e| self.err(e))?;
            let mut meta = w.open_table(META).map_err(|e| self.err(e))?;
            let mut tail = meta
                .get("tail")
                .map_err(|e| self.err(e))?
                .map_or(0, |v| v.value());
            for s in seeds {
                if urls.get(s.as_str()).map_err(|e| self.err(e))?.is_none() {
                    urls.insert(s.as_str(), QUEUED).map_err(|e| self.err(e))?;
                    queue
                        .insert(tail, (0, 0, s.as_str()))
                        .map_err(|e| self.err(e))?;
                    tail += 1;
                }
            }
            meta.insert("tail", tail).map_err(|e| self.err(e))?;
        }
        w.commit().map_err(|e| self.err(e))
    }

    /// How many URLs wait.
    fn waiting(&self) -> Result<u64> {
        use redb::{ReadableDatabase, ReadableTableMetadata};
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(QUEUE).map_err(|e| self.err(e))?;
        t.len().map_err(|e| self.err(e))
    }

    /// Waiting URLs with sequence number at least `from`, at most `n`.
    fn load(&self, from: u64, n: usize) -> Result<Vec<Item>> {
        use redb::ReadableDatabase;
        let r = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = r.open_table(QUEUE).map_err(|e| self.err(e))?;
        let mut v = Vec::new();
        for item in t.range(from..).map_err(|e| self.err(e))?.take(n) {
            let (k, val) = item.map_err(|e| self.err(e))?;
            let (depth, hops, url) = val.value();
            v.push(Item {
                seq: k.value(),
                url: url.to_string(),
                depth,
                hops,
                attempts: 0,
                not_before: None,
            });
        }
        Ok(v)
    }
}

/// A URL waiting to be fetched.
#[derive(Debug, Clone)]
struct Item {
    seq: u64,
    url: String,
    depth: u32,
    hops: u32,
    /// Requests made for it so far in this run.
    attempts: u32,
    /// Not to be retried before this.
    not_before: Option<Instant>,
}

/// What fetching one URL gave.
enum Outcome {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Not stored, for a reason counted under `skipped.<reason>`.
    Skipped(&'static str, String),
    /// Every attempt failed.
    Failed(String),
    /// Worth another attempt after a wait (a timeout, a refused connection, 429, 5xx).
    Retry(Duration, String),
}

struct Fetched {
    item: Item,
    host: String,
    outcome: Outcome,
    fetch_time: String,
}

enum Rules {
    All,
    Nothing,
    Robot(Box<texting_robots::Robot>),
}

impl Rules {
    fn allowed(&self, url: &str) -> bool {
        match self {
            Rules::All => true,
            Rules::Nothing => false,
            Rules::Robot(r) => r.allowed(url),
        }
    }
}

/// The time of a host's last request start, shared by its requests: each waits until
/// the host's delay has passed since the last one began, so requests are spaced when
/// they are sent, not only when they are scheduled.
type Gate = Arc<tokio::sync::Mutex<Option<Instant>>>;

async fn pass_gate(gate: &Gate, delay: Duration) {
    let mut last = gate.lock().await;
    if let Some(t) = *last {
        tokio::time::sleep_until((t + delay).into()).await;
    }
    *last = Some(Instant::now());
}

struct Host {
    gate: Gate,
    in_flight: usize,
    /// When the last request to the host started.
    last_start: Option<Instant>,
    delay: Duration,
    robots: Option<Rules>,
    robots_asked: bool,
}

impl Host {
    fn ready_at(&self) -> Option<Instant> {
        self.last_start.map(|t| t + self.delay)
    }
}

enum Event {
    Page(Box<Fetched>),
    Robots {
        host: String,
        rules: Rules,
        delay: Option<f32>,
        sitemaps: Vec<String>,
        note: Option<String>,
    },
    /// URLs listed by a sitemap, or why it could not be read.
    Sitemap(Vec<String>, Option<String>),
}

enum Act {
    Wait,
    Robots,
    Fetch,
    Disallowed,
}

struct Crawler<'a> {
    stage: &'a Crawl,
    cfg: &'a CrawlConfig,
    ctx: &'a TaskContext<'a>,
    store: Store,
    client: reqwest::Client,
    hosts: HashMap<String, Host>,
    window: VecDeque<Item>,
    next_load: u64,
    stored_pages: u64,
    stored_bytes: u64,
    started: Instant,
}

impl<'a> Crawler<'a> {
    fn new(stage: &'a Crawl, store: Store, stored: u64, ctx: &'a TaskContext<'a>) -> Result<Self> {
        // The TLS provider, as the LLM client installs it (ring: no cmake to build).
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cfg = &stage.config;
        let client = reqwest::Client::builder()
            .user_agent(&cfg.user_agent)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs_f64(cfg.timeout_secs))
            .connect_timeout(Duration::from_secs_f64(cfg.timeout_secs.min(10.0)))
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
        let stored_bytes = store.meta("bytes")?;
        Ok(Crawler {
            stage,
            cfg,
            ctx,
            store,
            client,
            hosts: HashMap::new(),
            window: VecDeque::new(),
            next_load: 0,
            stored_pages: stored,
            stored_bytes,
            started: Instant::now(),
        })
    }

    fn limits_reached(&self, in_flight: usize) -> bool {
        self.stored_pages + in_flight as u64 >= self.cfg.max_pages
            || self.stored_bytes >= self.cfg.max_bytes
            || self
                .cfg
                .max_seconds
                .is_some_and(|s| self.started.elapsed().as_secs_f64() >= s)
    }

    async fn run(mut self, out: &mut TaskOutput) -> Result<()> {
        let mut tasks: tokio::task::JoinSet<Event> = tokio::task::JoinSet::new();
        let mut results: Vec<Event> = Vec::new();
        let mut last_commit = Instant::now();
        let mut stopped = false;
        loop {
            self.ctx.check_cancelled()?;
            if self.window.len() < WINDOW / 2 {
                let more = self
                    .store
                    .load(self.next_load, WINDOW - self.window.len())?;
                if let Some(last) = more.last() {
                    self.next_load = last.seq + 1;
                }
                self.window.extend(more);
            }
            if !stopped && self.limits_reached(0) {
                stopped = true;
                out.count("stopped_at_limit", 1);
            }
            let wake = if stopped {
                None
            } else {
                self.dispatch(&mut tasks, results.len(), out)
            };
            if tasks.is_empty() && results.is_empty() && (self.window.is_empty() || stopped) {
                break;
            }
            // Wait for a result, a host to be free, or the next commit.
            let commit_at = last_commit + COMMIT_EVERY;
            let mut until = wake.unwrap_or(Instant::now() + Duration::from_secs(1));
            if !results.is_empty() {
                until = until.min(commit_at);
            }
            if tasks.is_empty() {
                tokio::time::sleep_until(until.into()).await;
            } else {
                tokio::select! {
                    r = tasks.join_next() => {
                        if let Some(r) = r {
                            let ev = r.map_err(|e| Error::Internal(format!("crawl task: {e}")))?;
                            if let Some(ev) = self.on_event(ev, &mut tasks, out) {
                                results.push(ev);
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(until.into()) => {}
                }
            }
            if !results.is_empty()
                && (results.len() >= COMMIT_RESULTS
                    || last_commit.elapsed() >= COMMIT_EVERY
                    || tasks.is_empty())
            {
                self.commit(std::mem::take(&mut results), out)?;
                last_commit = Instant::now();
            }
        }
        if !results.is_empty() {
            self.commit(results, out)?;
        }
        out.count("frontier_left", self.store.waiting()?);
        Ok(())
    }

    /// Act on a finished task at once (a host's slot and robots rules); what must be
    /// stored is returned for the next commit.
    fn on_event(
        &mut self,
        ev: Event,
        tasks: &mut tokio::task::JoinSet<Event>,
        out: &mut TaskOutput,
    ) -> Option<Event> {
        match ev {
            Event::Robots {
                host,
                rules,
                delay,
                sitemaps,
                note,
            } => {
                if let Some(n) = note {
                    out.warn(n);
                }
                if let Some(h) = self.hosts.get_mut(&host) {
                    h.in_flight -= 1;
                    if let Some(d) = delay {
                        let d = Duration::from_secs_f32(d.clamp(0.0, 3600.0));
                        if d > h.delay {
                            h.delay = d;
                            out.count("hosts_with_crawl_delay", 1);
                        }
                    }
                    h.robots = Some(rules);
                }
                if self.cfg.sitemaps
                    && let Some(h) = self.hosts.get(&host)
                {
                    // Sitemaps wait their turn at the host like pages.
                    for url in sitemaps {
                        out.count("sitemaps", 1);
                        tasks.spawn(fetch_sitemap(
                            self.client.clone(),
                            (h.gate.clone(), h.delay),
                            url,
                        ));
                    }
                }
                None
            }
            Event::Page(f) => {
                if let Some(h) = self.hosts.get_mut(&f.host) {
                    h.in_flight -= 1;
                }
                out.count("requests", 1);
                if let Outcome::Retry(wait, why) = &f.outcome {
                    // Back in line: the retry waits for its host like any request.
                    out.count("retries", 1);
                    let mut item = f.item;
                    item.not_before = Some(Instant::now() + *wait);
                    if item.attempts == 1 {
                        out.warn(format!("{}: {why}; retrying", item.url));
                    }
                    self.window.push_front(item);
                    return None;
                }
                Some(Event::Page(f))
            }
            ev @ Event::Sitemap(..) => Some(ev),
        }
    }

    /// Start what may start now; the earliest time a waiting host frees up.
    fn dispatch(
        &mut self,
        tasks: &mut tokio::task::JoinSet<Event>,
        uncommitted: usize,
        out: &mut TaskOutput,
    ) -> Option<Instant> {
        let now = Instant::now();
        let mut wake: Option<Instant> = None;
        let settings = Arc::new(self.fetch_settings());
        let default_delay = Duration::from_millis(self.cfg.delay_ms);
        let mut i = 0;
        while i < self.window.len()
            && tasks.len() < self.cfg.concurrency
            && !self.limits_reached(tasks.len() + uncommitted)
        {
            let Ok(url) = Url::parse(&self.window[i].url) else {
                let it = self.window.remove(i).expect("in range");
                self.mark_done_without_page(it.seq, &it.url);
                continue;
            };
            if let Some(t) = self.window[i].not_before.filter(|t| *t > now) {
                wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
                i += 1;
                continue;
            }
            let key = host_key(&url);
            let robots_on = self.cfg.robots;
            let host = self.hosts.entry(key.clone()).or_insert_with(|| Host {
                gate: Gate::default(),
                in_flight: 0,
                last_start: None,
                delay: default_delay,
                robots: (!robots_on).then_some(Rules::All),
                robots_asked: false,
            });
            let ready = host.ready_at().is_none_or(|t| t <= now);
            let act = if host.robots.is_none() {
                if !host.robots_asked && host.in_flight == 0 && ready {
                    host.robots_asked = true;
                    Act::Robots
                } else {
                    Act::Wait
                }
            } else if host.in_flight >= self.cfg.per_host_concurrency || !ready {
                Act::Wait
            } else if !host
                .robots
                .as_ref()
                .is_some_and(|r| r.allowed(&self.window[i].url))
            {
                Act::Disallowed
            } else {
                Act::Fetch
            };
            let (gate, delay) = (host.gate.clone(), host.delay);
            if matches!(act, Act::Robots | Act::Fetch) {
                host.in_flight += 1;
                host.last_start = Some(now);
            } else if let (Act::Wait, Some(t)) = (&act, host.ready_at())
                && t > now
            {
                wake = Some(wake.map_or(t, |w: Instant| w.min(t)));
            }
            match act {
                Act::Wait => i += 1,
                Act::Robots => {
                    tasks.spawn(fetch_robots(
                        self.client.clone(),
                        (gate, delay),
                        url,
                        key,
                        self.stage.robots_agent.clone(),
                        self.cfg.retries,
                        Duration::from_millis(self.cfg.backoff_ms),
                    ));
                    i += 1;
                }
                Act::Disallowed => {
                    let it = self.window.remove(i).expect("in range");
                    out.count("skipped.robots", 1);
                    self.mark_done_without_page(it.seq, &it.url);
                }
                Act::Fetch => {
                    let mut it = self.window.remove(i).expect("in range");
                    it.attempts += 1;
                    tasks.spawn(fetch_page(
                        self.client.clone(),
                        (gate, delay),
                        it,
                        key,
                        settings.clone(),
                    ));
                }
            }
        }
        wake
    }

    fn fetch_settings(&self) -> FetchSettings {
        FetchSettings {
            retries: self.cfg.retries,
            backoff: Duration::from_millis(self.cfg.backoff_ms),
            max_retry_after: Duration::from_secs(self.cfg.max_retry_after_secs),
            max_body: self.cfg.max_body_bytes,
            content_types: self
                .cfg
                .content_types
                .iter()
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Mark a URL done without a page (robots disallow it, or it does not parse).
    fn mark_done_without_page(&mut self, seq: u64, url: &str) {
        if let Ok(w) = self.store.write() {
            if let (Ok(mut q), Ok(mut u)) = (w.open_table(QUEUE), w.open_table(URLS)) {
                let _ = q.remove(seq);
                let _ = u.insert(url, DONE);
            }
            let _ = w.commit();
        }
    }

    /// Store a group of results in one transaction, queue their links, write their rows.
    fn commit(&mut self, events: Vec<Event>, out: &mut TaskOutput) -> Result<()> {
        let w = self.store.write()?;
        let mut rows = ResponseRows::default();
        {
            let err = |e: redb::Error| self.store.err(e);
            let mut t = Tables {
                urls: w.open_table(URLS).map_err(|e| err(e.into()))?,
                queue: w.open_table(QUEUE).map_err(|e| err(e.into()))?,
                tail: 0,
            };
            let mut pages = w.open_table(PAGES).map_err(|e| err(e.into()))?;
            let mut meta = w.open_table(META).map_err(|e| err(e.into()))?;
            t.tail = meta
                .get("tail")
                .map_err(|e| err(e.into()))?
                .map_or(0, |v| v.value());
            let mut page_seq = meta
                .get("pages")
                .map_err(|e| err(e.into()))?
                .map_or(0, |v| v.value());
            for ev in events {
                match ev {
                    Event::Robots { .. } => {}
                    Event::Sitemap(urls, note) => {
                        if let Some(n) = note {
                            out.warn(n);
                        }
                        for u in urls {
                            if let Some(n) = self.in_scope(&u, None)
                                && t.enqueue(&n, 0, 0).map_err(err)?
                            {
                                out.count("sitemap_urls", 1);
                            }
                        }
                    }
                    Event::Page(f) => {
                        let f = *f;
                        t.queue.remove(f.item.seq).map_err(|e| err(e.into()))?;
                        t.urls
                            .insert(f.item.url.as_str(), DONE)
                            .map_err(|e| err(e.into()))?;
                        let (status, headers, body) = match f.outcome {
                            Outcome::Skipped(reason, msg) => {
                                out.count(&format!("skipped.{reason}"), 1);
                                out.warn(format!("{}: {msg}", f.item.url));
                                continue;
                            }
                            Outcome::Failed(msg) | Outcome::Retry(_, msg) => {
                                out.count("failed", 1);
                                out.warn(format!("{}: {msg}", f.item.url));
                                continue;
                            }
                            Outcome::Response {
                                status,
                                headers,
                                body,
                            } => (status, headers, body),
                        };
                        let content_type = header(&headers, "Content-Type").map(str::to_string);
                        let mut final_url = f.item.url.clone();
                        if (300..400).contains(&status) {
                            out.count("redirects", 1);
                            let target = header(&headers, "Location")
                                .and_then(|l| self.in_scope(l, Some(&f.item.url)));
                            match target {
                                Some(target) => {
                                    final_url = target.clone();
                                    if f.item.hops >= self.cfg.max_redirects {
                                        out.count("skipped.redirect_limit", 1);
                                    } else if !t
                                        .enqueue(&target, f.item.depth, f.item.hops + 1)
                                        .map_err(err)?
                                    {
                                        out.count("redirects_to_seen", 1);
                                    }
                                }
                                None => out.count("redirects_out_of_scope", 1),
                            }
                        } else if (200..300).contains(&status)
                            && f.item.depth < self.cfg.max_depth
                            && content_type
                                .as_deref()
                                .map(media_type)
                                .is_some_and(|m| m == "text/html" || m == "application/xhtml+xml")
                        {
                            self.queue_links(&f.item, &body, &mut t, out).map_err(err)?;
                        }
                        let stored = StoredPage {
                            url: f.item.url.clone(),
                            final_url,
                            status,
                            headers: headers_text(&headers),
                            content_type,
                            fetch_time: f.fetch_time,
                        };
                        pages
                            .insert(page_seq, encode_page(&stored, &body).as_slice())
                            .map_err(|e| err(e.into()))?;
                        page_seq += 1;
                        self.stored_pages += 1;
                        self.stored_bytes += body.len() as u64;
                        out.count(&format!("status.{status}"), 1);
                        push_page(&mut rows, &self.stage.source, &stored, &body);
                    }
                }
            }
            meta.insert("tail", t.tail).map_err(|e| err(e.into()))?;
            meta.insert("pages", page_seq).map_err(|e| err(e.into()))?;
            meta.insert("bytes", self.stored_bytes)
                .map_err(|e| err(e.into()))?;
        }
        w.commit().map_err(|e| self.store.err(e))?;
        rows.flush(out)
    }

    /// Queue the in-scope links of an HTML page.
    fn queue_links(
        &self,
        item: &Item,
        body: &[u8],
        t: &mut Tables,
        out: &mut TaskOutput,
    ) -> std::result::Result<(), redb::Error> {
        let html = String::from_utf8_lossy(body);
        let e = extract(
            &html,
            &ExtractOptions {
                tables: false,
                links: true,
            },
        );
        let Ok(page) = Url::parse(&item.url) else {
            return Ok(());
        };
        let base = e
            .base
            .as_deref()
            .and_then(|b| page.join(b).ok())
            .unwrap_or(page);
        for link in &e.links {
            let Ok(abs) = base.join(link) else {
                continue;
            };
            match self.in_scope(abs.as_str(), None) {
                Some(n) => {
                    if t.enqueue(&n, item.depth + 1, 0)? {
                        out.count("links_queued", 1);
                    }
                }
                None => out.count("links_out_of_scope", 1),
            }
        }
        Ok(())
    }

    /// The normalised URL if `url` (resolved against `base`) is in scope.
    fn in_scope(&self, url: &str, base: Option<&str>) -> Option<String> {
        let u = match base {
            Some(b) => Url::parse(b).ok()?.join(url).ok()?,
            None => Url::parse(url).ok()?,
        };
        // Normalising keeps the host and port the `url` crate parsed.
        let n = normalize(&u, self.cfg.sort_query)?;
        self.stage.scope.allows(&u, &n).then_some(n)
    }
}

/// The seen set and the queue inside one write transaction.
struct Tables<'t> {
    urls: redb::Table<'t, &'static str, u8>,
    queue: redb::Table<'t, u64, (u32, u32, &'static str)>,
    tail: u64,
}

impl Tables<'_> {
    /// Queue `url` unless it was seen; whether it was new.
    fn enqueue(
        &mut self,
        url: &str,
        depth: u32,
        hops: u32,
    ) -> std::result::Result<bool, redb::Error> {
        if self.urls.get(url)?.is_some() {
            return Ok(false);
        }
        self.urls.insert(url, QUEUED)?;
        self.queue.insert(self.tail, (depth, hops, url))?;
        self.tail += 1;
        Ok(true)
    }
}

/// The `<loc>` URLs of a sitemap (or sitemap index: its sitemaps are not followed).
async fn fetch_sitemap(
    client: reqwest::Client,
    (gate, delay): (Gate, Duration),
    url: String,
) -> Event {
    pass_gate(&gate, delay).await;
    let body = match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => r.bytes().await.ok(),
        _ => None,
    };
    let Some(body) = body else {
        return Event::Sitemap(
            vec![],
            Some(format!("{url}: the sitemap could not be fetched")),
        );
    };
    let text = String::from_utf8_lossy(&body);
    let locs = text
        .split("<loc>")
        .skip(1)
        .filter_map(|s| s.split("</loc>").next())
        .map(|s| s.trim().replace("&amp;", "&"))
        .collect();
    Event::Sitemap(locs, None)
}

/// What a page fetch needs to know.
struct FetchSettings {
    retries: u32,
    backoff: Duration,
    max_retry_after: Duration,
    max_body: u64,
    content_types: Vec<String>,
}

/// How long to wait before retrying: `Retry-After` (seconds or an HTTP date) when the
/// server says, else the doubling backoff.
fn retry_wait(headers: &reqwest::header::HeaderMap, backoff: Duration) -> Duration {
    if let Some(v) = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
    {
        if let Ok(s) = v.trim().parse::<u64>() {
            return Duration::from_secs(s);
        }
        if let Ok(t) = httpdate::parse_http_date(v.trim()) {
            return t.duration_since(SystemTime::now()).unwrap_or_default();
        }
    }
    backoff
}

/// One attempt at a page. Timeouts, connection errors, 429 and 5xx ask for a retry
/// (after `Retry-After` or the doubling backoff) while attempts remain.
async fn fetch_page(
    client: reqwest::Client,
    (gate, delay): (Gate, Duration),
    item: Item,
    host: String,
    s: Arc<FetchSettings>,
) -> Event {
    pass_gate(&gate, delay).await;
    let fetch_time = rfc3339(SystemTime::now());
    let retry_left = item.attempts <= s.retries;
    let backoff = s.backoff * 2u32.saturating_pow(item.attempts.saturating_sub(1));
    let outcome = match client.get(&item.url).send().await {
        Err(e) if retry_left => Outcome::Retry(backoff, error_chain(&e)),
        Err(e) => Outcome::Failed(format!("{} ({} attempts)", error_chain(&e), item.attempts)),
        Ok(resp) => {
            let status = resp.status().as_u16();
            let wait = retry_wait(resp.headers(), backoff);
            if (status == 429 || status >= 500) && retry_left && wait <= s.max_retry_after {
                Outcome::Retry(wait, format!("status {status}"))
            } else {
                response(resp, &s, retry_left, backoff, item.attempts).await
            }
        }
    };
    Event::Page(Box::new(Fetched {
        item,
        host,
        outcome,
        fetch_time,
    }))
}

async fn response(
    resp: reqwest::Response,
    s: &FetchSettings,
    retry_left: bool,
    backoff: Duration,
    attempts: u32,
) -> Outcome {
    let status = resp.status().as_u16();
    let headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if (200..300).contains(&status) {
        let media = header(&headers, "content-type")
            .map(media_type)
            .unwrap_or_default();
        if !s.content_types.contains(&media) {
            return Outcome::Skipped(
                "content_type",
                format!("content type `{media}` is not in content_types"),
            );
        }
        if let Some(n) = resp.content_length().filter(|n| *n > s.max_body) {
            return Outcome::Skipped(
                "too_large",
                format!("{n} bytes (Content-Length) is over max_body_bytes"),
            );
        }
    }
    match read_body(resp, s.max_body).await {
        Ok(Some(body)) => Outcome::Response {
            status,
            headers,
            body,
        },
        Ok(None) => Outcome::Skipped(
            "too_large",
            format!("the body is over max_body_bytes ({})", s.max_body),
        ),
        Err(e) if retry_left => {
            Outcome::Retry(backoff, format!("reading the body: {}", error_chain(&e)))
        }
        Err(e) => Outcome::Failed(format!(
            "reading the body: {} ({attempts} attempts)",
            error_chain(&e)
        )),
    }
}

/// The body, or `None` past `max` bytes (reading stops there).
async fn read_body(mut resp: reqwest::Response, max: u64) -> reqwest::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() as u64 + chunk.len() as u64 > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

async fn fetch_robots(
    client: reqwest::Client,
    (gate, delay): (Gate, Duration),
    url: Url,
    host: String,
    agent: String,
    retries: u32,
    backoff: Duration,
) -> Event {
    let mut robots_url = url.clone();
    robots_url.set_path("/robots.txt");
    robots_url.set_query(None);
    robots_url.set_fragment(None);
    let mut attempt = 0;
    let (rules, crawl_delay, sitemaps, note) = loop {
        pass_gate(&gate, delay).await;
        match client.get(robots_url.as_str()).send().await {
            Ok(resp) if resp.status().is_success() => {
                let body = resp.bytes().await.unwrap_or_default();
                match texting_robots::Robot::new(&agent, &body) {
                    Ok(r) => {
                        let delay = r.delay;
                        let sitemaps = r.sitemaps.clone();
                        break (Rules::Robot(Box::new(r)), delay, sitemaps, None);
                    }
                    Err(e) => {
                        break (
                            Rules::All,
                            None,
                            vec![],
                            Some(format!(
                                "{robots_url}: unparseable ({e}); everything allowed"
                            )),
                        );
                    }
                }
            }
            Ok(resp) if resp.status().is_client_error() => break (Rules::All, None, vec![], None),
            other => {
                if attempt < retries {
                    tokio::time::sleep(backoff * 2u32.saturating_pow(attempt)).await;
                    attempt += 1;
                    continue;
                }
                let why = match other {
                    Ok(r) => format!("status {}", r.status().as_u16()),
                    Err(e) => error_chain(&e),
                };
                break (
                    Rules::Nothing,
                    None,
                    vec![],
                    Some(format!(
                        "{robots_url}: {why}; nothing on the host is fetched (RFC 9309)"
                    )),
                );
            }
        }
    };
    Event::Robots {
        host,
        rules,
        delay: crawl_delay,
        sitemaps,
        note,
    }
}

/// A stored page as a row of the responses schema.
fn push_page(rows: &mut ResponseRows, source: &str, p: &StoredPage, body: &[u8]) {
    rows.push(Response {
        id: hash_hex(format!("{source}\0{}", p.url).as_bytes()),
        url: Some(&p.url),
        final_url: Some(&p.final_url),
        source,
        fetch_time: Some(&p.fetch_time),
        status: Some(p.status as i32),
        content_type: p.content_type.as_deref(),
        headers: Some(&p.headers),
        body,
        record_type: "response",
    });
}

/// RFC 3339 UTC, to the second.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What the store of a crawl (`frontier.redb` in the stage's `_scratch/` while it is
/// unfinished) holds: the URLs of the responses it stored, in order, and how many URLs
/// wait. Opening it needs the crawl stopped.
pub fn crawl_state(path: &Path) -> Result<(Vec<String>, usize)> {
    let store = Store::open(path)?;
    use redb::ReadableDatabase;
    let r = store.db.begin_read().map_err(|e| store.err(e))?;
    let t = r.open_table(PAGES).map_err(|e| store.err(e))?;
    let mut urls = Vec::new();
    for item in t.iter().map_err(|e| store.err(e))? {
        let (_, v) = item.map_err(|e| store.err(e))?;
        if let Some((meta, _)) = decode_page(v.value()) {
            urls.push(meta.url);
        }
    }
    let waiting = store.waiting()? as usize;
    Ok((urls, waiting))
}
