use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::util::*;
use primer_test_site::{Config, Site};

/// Kill -9 in the middle of a crawl, run again: it finishes, and no page the first run
/// had stored is fetched again.
#[test]
fn a_killed_crawl_resumes_without_fetching_a_stored_page_again() {
    let Some(site_dir) = primer_testdata::shared_file_or_skip("sites/python-3.11-docs") else {
        return;
    };
    let site = Site::start(Config {
        root: site_dir,
        robots: "User-agent: *\nDisallow: /library/\nDisallow: /c-api/\nDisallow: /_sources/\n\
                 Crawl-delay: 0.03\n"
            .into(),
        stall: Duration::from_secs(1),
        big_bytes: 0,
        gen_fanout: 0,
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("crawl.toml"),
        format!(
            "[pipeline]\nname = \"crawl-test\"\n\n[stages.web.crawl]\nseeds = [\"{}/index.html\"]\n\
             delay_ms = 0\nper_host_concurrency = 1\nmax_pages = 150\n",
            site.base()
        ),
    )
    .unwrap();
    // First run: killed once 40 pages were served.
    let mut child = primer()
        .args(["run", "crawl.toml"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while site.log().len() < 40 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = site.log().len();
    let store = dir.join("work/crawl-test/web/_scratch/frontier.redb");
    let (stored, waiting) = primer_crawl::crawl_state(&store).unwrap();
    assert!(
        stored.len() >= 20,
        "only {} pages stored by the kill",
        stored.len()
    );
    assert!(waiting > 0);
    // `status` tells a run in progress.
    let status = run_ok(&["status", "crawl.toml"], dir);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("web (crawl)") && l.contains("in progress: no task done yet")),
        "{status}"
    );

    // Second run: to the end.
    let out = run_ok(&["run", "crawl.toml"], dir);
    assert!(out.contains("web (crawl): done"), "{out}");
    let log = site.log();
    assert!(log.len() > before);
    let mut per_path: BTreeMap<String, usize> = BTreeMap::new();
    for e in &log {
        *per_path.entry(e.path.clone()).or_default() += 1;
    }
    for url in &stored {
        let path = url.trim_start_matches(&site.base());
        assert_eq!(per_path[path], 1, "{path} was stored, then fetched again");
    }
    // Only what was in flight at the kill may have been fetched twice.
    let twice = per_path
        .iter()
        .filter(|(p, n)| **n > 1 && *p != "/robots.txt")
        .count();
    assert!(twice <= 2, "{per_path:?}");
    let m = manifest(&dir.join("work/crawl-test/web"));
    assert_eq!(m["counters"]["pages_resumed"], stored.len() as u64);
    // One row per page, none twice.
    let rows = m["rows"].as_u64().unwrap();
    assert!((100..=150).contains(&rows), "{m}");
    let fetched_pages = per_path.keys().filter(|p| *p != "/robots.txt").count() as u64;
    assert!(rows <= fetched_pages, "{m}");
    assert!(
        !store.exists(),
        "the store goes with the scratch space once the crawl is done"
    );
}

/// `pipelines/crawl-docs.toml` against a documentation site on loopback: crawl, extract,
/// language, filters and dedupe, with the site given in the environment.
#[test]
fn the_crawl_docs_pipeline_runs_against_a_local_site() {
    let Some(site_dir) = primer_testdata::shared_file_or_skip("sites/python-3.11-docs") else {
        return;
    };
    let site = Site::start(Config {
        root: site_dir,
        robots: "User-agent: *\nAllow: /tutorial/\nDisallow: /\n".into(),
        stall: Duration::from_secs(1),
        big_bytes: 0,
        gen_fanout: 0,
    });
    let tmp = demo_copy();
    let dir = tmp.path();
    std::fs::copy(
        repo().join("pipelines/crawl-docs.toml"),
        dir.join("pipelines/crawl-docs.toml"),
    )
    .unwrap();
    // Without the site the pipeline says what to set.
    let (code, _, err) = run(&["run", "pipelines/crawl-docs.toml"], dir);
    assert_ne!(code, 0);
    assert!(err.contains("PRIMER_CRAWL_SITE"), "{err}");
    let out = primer()
        .args(["run", "pipelines/crawl-docs.toml"])
        .current_dir(dir)
        .env(
            "PRIMER_CRAWL_SITE",
            format!("{}/tutorial/index.html", site.base()),
        )
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let work = dir.join("work/crawl-docs");
    let rows = |s: &str| manifest(&work.join(s))["rows"].as_u64().unwrap();
    assert_eq!(rows("site"), 17, "{text}");
    assert_eq!(rows("pages"), 17);
    assert!(rows("near") >= 10, "{text}");
    // Polite: robots.txt first, then at least 250 ms between requests.
    let log = site.log();
    assert_eq!(log[0].path, "/robots.txt");
    assert!(
        log.windows(2)
            .all(|w| w[1].at - w[0].at >= Duration::from_millis(245))
    );
    assert!(
        log.iter()
            .all(|e| e.path == "/robots.txt" || e.path.starts_with("/tutorial/"))
    );
    assert!(work.join("site/warc/site-00000.warc.gz").exists());
}
