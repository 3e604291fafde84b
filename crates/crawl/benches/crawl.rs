//! The crawler's own speed, politeness off, against a generated site on loopback whose
//! frontier grows 50-fold per level: pages/s, and peak memory with a frontier of about
//! a million waiting URLs (they live in the store, not in memory).
//!
//!   cargo bench -p primer-crawl --bench crawl -- [PAGES]      (default 20000)

use std::time::{Duration, Instant};

use primer_core::BuildContext;
use primer_core::testing::run_stage;

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let pages: u64 = args.get(1).map_or(20_000, |p| p.parse().expect("PAGES"));
    let site = primer_test_site::Site::start(primer_test_site::Config {
        root: std::env::temp_dir(),
        robots: String::new(),
        stall: Duration::from_secs(1),
        big_bytes: 0,
        gen_fanout: 50,
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg: primer_crawl::CrawlConfig = toml::from_str(&format!(
        "seeds = [\"{}/gen/0.html\"]\nrobots = false\ndelay_ms = 0\nconcurrency = 32\n\
         per_host_concurrency = 32\nmax_pages = {pages}\nmax_depth = 100\n",
        site.base()
    ))
    .unwrap();
    let stage = cfg
        .build(&BuildContext {
            stage_id: "crawl",
            base_dir: dir.path(),
        })
        .unwrap();
    let rss_before = primer_testdata::peak_rss_mb();
    let t = Instant::now();
    let ds = run_stage(&stage, &[], &dir.path().join("crawl"), 1024).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let c = &ds.manifest().counters;
    println!(
        "crawl, politeness off, loopback: {} pages in {secs:.1} s = {:.0} pages/s; {} URLs queued, \
         {} left in the frontier; peak RSS {:.0} MB (server and client in one process; {:.0} MB before)",
        ds.rows(),
        ds.rows() as f64 / secs,
        c.get("links_queued"),
        c.get("frontier_left"),
        primer_testdata::peak_rss_mb(),
        rss_before
    );
}
