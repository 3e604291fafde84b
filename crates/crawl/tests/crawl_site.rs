//! The crawler against a real documentation site served on 127.0.0.1 with scripted
//! faults (crates/test-site); the server's log is the evidence.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use primer_core::BuildContext;
use primer_core::testing::{read_all, run_stage};
use primer_crawl::CrawlConfig;
use primer_test_site::{Config, Site};

const ROBOTS: &str = "User-agent: *\nDisallow: /library/\nDisallow: /c-api/\nDisallow: /whatsnew/\n\
                      Disallow: /distutils/\nDisallow: /_sources/\nCrawl-delay: 0.05\n\
                      Sitemap: {base}/sitemap.xml\n";

#[test]
fn a_polite_crawl_of_a_docs_site_fetches_each_page_once_and_survives_its_faults() {
    let Some(site_dir) = primer_testdata::shared_file_or_skip("sites/python-3.11-docs") else {
        return;
    };
    let site = Site::start(Config {
        root: site_dir,
        robots: ROBOTS.into(),
        stall: Duration::from_secs(5),
        big_bytes: 4 << 20,
        gen_fanout: 0,
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg: CrawlConfig = toml::from_str(&format!(
        r#"
        seeds = ["{}/start.html"]
        delay_ms = 0
        per_host_concurrency = 2
        timeout_secs = 1.0
        retries = 2
        backoff_ms = 100
        max_body_bytes = 3145728
        max_pages = 1000
        sitemaps = true
        "#,
        site.base()
    ))
    .unwrap();
    let stage = cfg
        .build(&BuildContext {
            stage_id: "crawl",
            base_dir: dir.path(),
        })
        .unwrap();
    let started = Instant::now();
    let ds = run_stage(&stage, &[], &dir.path().join("crawl"), 64).unwrap();
    let took = started.elapsed();
    let log = site.log();
    let c = &ds.manifest().counters;

    // Bounded: in requests and in time.
    assert!(log.len() < 200, "{} requests", log.len());
    assert!(took < Duration::from_secs(60), "{took:?}");
    // Only this host, as itself, with the crawler's user agent.
    let host = site.base().trim_start_matches("http://").to_string();
    for e in &log {
        assert_eq!(e.host, host, "{e:?}");
        assert!(e.user_agent.starts_with("primer-crawler/"), "{e:?}");
    }
    // Nothing disallowed was asked for; robots.txt once, first.
    assert_eq!(log[0].path, "/robots.txt");
    for e in &log {
        for p in [
            "/library/",
            "/c-api/",
            "/whatsnew/",
            "/distutils/",
            "/_sources/",
        ] {
            assert!(!e.path.starts_with(p), "{e:?}");
        }
    }
    assert!(c.get("skipped.robots") > 0, "{c:?}");
    // Every path once, except the faults that earn retries.
    let mut per_path: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &log {
        *per_path.entry(e.path.as_str()).or_default() += 1;
    }
    for (p, n) in &per_path {
        let want = match *p {
            "/faults/busy.html" | "/faults/flaky.html" => 2,
            "/faults/stall.html" => 3,
            _ => 1,
        };
        assert_eq!(*n, want, "{p} requested {n} times");
    }
    // The tutorial, reached through the index, is all there.
    let tutorial = per_path
        .keys()
        .filter(|p| p.starts_with("/tutorial/"))
        .count();
    assert_eq!(tutorial, 17, "{per_path:?}");
    // Redirect chain followed to its end, the loop broken, each hop once.
    for p in [
        "/faults/redirect-1",
        "/faults/redirect-2",
        "/faults/landing.html",
        "/faults/loop-a",
        "/faults/loop-b",
    ] {
        assert_eq!(per_path.get(p), Some(&1), "{p}");
    }
    // 429 waited for its Retry-After.
    let busy: Vec<Duration> = log
        .iter()
        .filter(|e| e.path == "/faults/busy.html")
        .map(|e| e.at)
        .collect();
    assert!(busy[1] - busy[0] >= Duration::from_millis(990), "{busy:?}");
    // The delay between requests to the host: Crawl-delay's 50 ms.
    let mut starts: Vec<(Duration, &str)> = log.iter().map(|e| (e.at, e.path.as_str())).collect();
    starts.sort();
    let closest = starts.windows(2).min_by_key(|w| w[1].0 - w[0].0).unwrap();
    assert!(
        closest[1].0 - closest[0].0 >= Duration::from_millis(45),
        "two requests {:?} apart: {closest:?}",
        closest[1].0 - closest[0].0
    );
    // Counted: the stall failed, the big page and the binary file were not stored.
    assert_eq!(c.get("failed"), 1, "{c:?}");
    assert_eq!(c.get("skipped.too_large"), 1, "{c:?}");
    assert_eq!(c.get("skipped.content_type"), 1, "{c:?}");
    assert!(c.get("links_out_of_scope") >= 2, "{c:?}");
    // The page only the sitemap (named in robots.txt) lists was found.
    assert_eq!(per_path.get("/sitemap.xml"), Some(&1));
    assert_eq!(per_path.get("/faults/orphan.html"), Some(&1));
    assert_eq!(c.get("sitemap_urls"), 1, "{c:?}");

    // The dataset: one row per stored response, with its final URL and status.
    let all = read_all(&ds).unwrap();
    let urls = all.column_by_name("url").unwrap().as_string::<i32>();
    let finals = all.column_by_name("final_url").unwrap().as_string::<i32>();
    let status = all
        .column_by_name("status")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int32Type>();
    let mut rows: BTreeMap<String, (String, i32)> = BTreeMap::new();
    for i in 0..all.num_rows() {
        let u = urls.value(i).trim_start_matches(&site.base()).to_string();
        assert!(
            rows.insert(u, (finals.value(i).to_string(), status.value(i)))
                .is_none(),
            "a URL twice"
        );
    }
    assert_eq!(
        rows["/faults/redirect-1"],
        (format!("{}/faults/redirect-2", site.base()), 301)
    );
    assert_eq!(rows["/faults/landing.html"].1, 200);
    assert_eq!(rows["/faults/busy.html"].1, 200);
    assert_eq!(rows["/faults/flaky.html"].1, 200);
    assert!(!rows.contains_key("/faults/stall.html"));
    assert_eq!(all.column_by_name("body").unwrap().null_count(), 0);
    assert_eq!(ds.rows() as u64, c.get("rows_out"));
}

/// The crawl's WARC files: read back by primer's reader and by warcio (digests checked),
/// one response and one request record per stored page.
#[test]
fn the_crawls_warc_files_are_read_by_warcio_with_their_digests() {
    let (Some(site_dir), Some(python)) = (
        primer_testdata::shared_file_or_skip("sites/python-3.11-docs"),
        primer_testdata::ref_python_or_skip("warcio reads the crawl's WARC files"),
    ) else {
        return;
    };
    let site = Site::start(Config {
        root: site_dir,
        robots: String::new(),
        stall: Duration::from_secs(1),
        big_bytes: 0,
        gen_fanout: 0,
    });
    let dir = tempfile::tempdir().unwrap();
    let base = site.base();
    let cfg: CrawlConfig = toml::from_str(&format!(
        "seeds = [\"{base}/tutorial/index.html\"]\nurl_prefixes = [\"{base}/tutorial/\"]\n\
         delay_ms = 0\nwarc = true\n"
    ))
    .unwrap();
    let stage = cfg
        .build(&BuildContext {
            stage_id: "crawl",
            base_dir: dir.path(),
        })
        .unwrap();
    let ds = run_stage(&stage, &[], &dir.path().join("crawl"), 64).unwrap();
    assert_eq!(ds.rows(), 17, "the tutorial's pages");
    let warc = dir.path().join("crawl/warc/crawl-00000.warc.gz");
    assert!(warc.exists());
    // primer's reader: every record, each its own gzip member.
    let records: Vec<_> = primer_crawl::warc::WarcReader::new(std::io::BufReader::new(
        std::fs::File::open(&warc).unwrap(),
    ))
    .unwrap()
    .map(|r| r.unwrap())
    .collect();
    assert_eq!(records.len(), 1 + 2 * 17);
    let offsets: std::collections::BTreeSet<u64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets.len(), records.len());
    // warcio, checking block and payload digests.
    let script = r#"
import json, sys
from warcio.archiveiterator import ArchiveIterator
out = []
with open(sys.argv[1], "rb") as f:
    it = ArchiveIterator(f, check_digests="raise")
    for r in it:
        body = r.content_stream().read()
        status = r.http_headers.get_statuscode() if r.http_headers else None
        out.append([r.rec_type, r.rec_headers.get_header("WARC-Target-URI"), status, len(body)])
print(json.dumps(out))
"#;
    let o = std::process::Command::new(python)
        .args(["-c", script, warc.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "warcio: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let seen: Vec<(String, Option<String>, Option<String>, usize)> =
        serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(seen.len(), 35);
    assert_eq!(seen[0].0, "warcinfo");
    let all = read_all(&ds).unwrap();
    let urls = all.column_by_name("url").unwrap().as_string::<i32>();
    let bodies = all.column_by_name("body").unwrap().as_binary::<i64>();
    let responses: BTreeMap<&str, usize> = seen
        .iter()
        .filter(|r| r.0 == "response")
        .map(|r| (r.1.as_deref().unwrap(), r.3))
        .collect();
    assert_eq!(responses.len(), 17);
    for i in 0..all.num_rows() {
        assert_eq!(
            responses[urls.value(i)],
            bodies.value(i).len(),
            "{}",
            urls.value(i)
        );
    }
    assert!(
        seen.iter()
            .filter(|r| r.0 == "response")
            .all(|r| r.2.as_deref() == Some("200"))
    );
    assert_eq!(seen.iter().filter(|r| r.0 == "request").count(), 17);
}
