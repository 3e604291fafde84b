//! read_warc and extract on real archives and a real documentation site (the shared data;
//! skipped without it).

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use primer_core::testing::{read_all, run_stage};
use primer_core::{BuildContext, Dataset};
use primer_crawl::warc::WarcReader;
use primer_crawl::{ExtractConfig, ReadWarcConfig};

fn read_records(path: &Path) -> (BTreeMap<String, usize>, Vec<String>) {
    let f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut types = BTreeMap::new();
    let mut errors = Vec::new();
    for r in WarcReader::new(f).unwrap() {
        match r {
            Ok(r) => *types.entry(r.record_type().to_string()).or_default() += 1,
            Err(e) => errors.push(e.to_string()),
        }
    }
    (types, errors)
}

#[test]
fn every_shared_warc_file_reads_without_damage() {
    let Some(dir) = primer_testdata::shared_file_or_skip("warc") else {
        return;
    };
    let (types, errors) = read_records(&dir.join("pydocs311.warc.gz"));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(types["response"], 555);
    assert_eq!(types["request"], 555);
    let mut files: Vec<_> = std::fs::read_dir(dir.join("pywb-samples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.contains(".warc")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 12, "{files:?}");
    for f in &files {
        let (types, errors) = read_records(f);
        if f.ends_with("example.warc") {
            // Its request record's Content-Length is one byte short: kept, with a note.
            assert_eq!(types.values().sum::<usize>(), 6, "{types:?}");
        }
        assert!(errors.is_empty(), "{}: {errors:?}", f.display());
        assert!(!types.is_empty(), "{}", f.display());
    }
    // The "bad" sample is the whole file in one gzip member: every record is there.
    let (types, _) = read_records(&dir.join("pywb-samples/example-bad.warc.gz.bad"));
    assert_eq!(types.values().sum::<usize>(), 6, "{types:?}");
}

#[test]
fn a_damaged_archive_loses_only_the_damaged_record() {
    let Some(warc) = primer_testdata::shared_file_or_skip("warc/pydocs311.warc.gz") else {
        return;
    };
    let mut bytes = std::fs::read(&warc).unwrap();
    // Damage the deflate data of the 301st gzip member.
    let starts: Vec<usize> = memchr_starts(&bytes);
    let (a, b) = (starts[300], starts[301]);
    for x in &mut bytes[a + 20..(a + b) / 2] {
        *x = !*x;
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("damaged.warc.gz");
    std::fs::write(&bad, &bytes).unwrap();
    let (types, errors) = read_records(&bad);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("byte offset {a}:")),
        "{errors:?}"
    );
    assert_eq!(types.values().sum::<usize>(), 1114 - 1);

    // Through the stage, the warning names the file and the offset.
    let cfg: ReadWarcConfig =
        toml::from_str(&format!("paths = [{:?}]", bad.display().to_string())).unwrap();
    let stage = cfg
        .build(&BuildContext {
            stage_id: "warc",
            base_dir: dir.path(),
        })
        .unwrap();
    let ds = run_stage(&stage, &[], &dir.path().join("out"), 64).unwrap();
    let m = ds.manifest();
    let text = serde_json::to_string(m).unwrap();
    assert!(text.contains("damaged.warc.gz: byte offset"), "{text}");
    assert_eq!(m.counters.get("records_damaged"), 1);
}

/// Offsets of gzip members: where a member that inflates whole starts.
fn memchr_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    let mut at = 0;
    while at < bytes.len() {
        let mut d = flate2::bufread::GzDecoder::new(&bytes[at..]);
        std::io::copy(&mut d, &mut std::io::sink()).unwrap();
        let rest = d.into_inner().len();
        at = bytes.len() - rest;
        if at < bytes.len() {
            starts.push(at);
        }
    }
    starts
}

#[test]
fn a_crawl_archive_of_the_python_docs_becomes_documents_with_code_verbatim() {
    let (Some(warc), Some(site)) = (
        primer_testdata::shared_file_or_skip("warc/pydocs311.warc.gz"),
        primer_testdata::shared_file_or_skip("sites/python-3.11-docs"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ctx = |id| BuildContext {
        stage_id: id,
        base_dir: dir.path(),
    };
    let cfg: ReadWarcConfig =
        toml::from_str(&format!("paths = [{:?}]", warc.display().to_string())).unwrap();
    let responses = run_stage(
        &cfg.build(&ctx("warc")).unwrap(),
        &[],
        &dir.path().join("warc"),
        64,
    )
    .unwrap();
    // The 555 responses; wget's arguments and log (resource records) are not read.
    assert_eq!(responses.rows(), 555);
    assert_eq!(responses.manifest().counters.get("records.resource"), 2);
    let cfg: ExtractConfig = toml::from_str("").unwrap();
    let docs: Dataset = run_stage(
        &cfg.build(&ctx("extract")).unwrap(),
        &[responses],
        &dir.path().join("docs"),
        64,
    )
    .unwrap();
    let c = &docs.manifest().counters;
    assert_eq!(c.get("dropped.http_status"), 3, "the three 404s");
    // The 526 HTML pages are documents; 26 stylesheets, scripts and images are not.
    assert_eq!(c.get("dropped.content_type"), 26, "{c:?}");
    assert_eq!(docs.rows(), 526, "{c:?}");
    let all = read_all(&docs).unwrap();
    let urls = all.column_by_name("url").unwrap().as_string::<i32>();
    let texts = all.column_by_name("text").unwrap().as_string::<i64>();
    let langs = all.column_by_name("html_lang").unwrap().as_string::<i32>();
    let i = (0..all.num_rows())
        .find(|&i| urls.value(i).ends_with("/tutorial/controlflow.html"))
        .expect("the control-flow tutorial");
    let text = texts.value(i);
    assert!(
        text.starts_with("4. More Control Flow Tools"),
        "{}",
        &text[..200]
    );
    let block = ">>> def fib(n):    # write Fibonacci series up to n\n\
                 ...     \"\"\"Print a Fibonacci series up to n.\"\"\"\n\
                 ...     a, b = 0, 1\n\
                 ...     while a < n:\n\
                 ...         print(a, end=' ')\n\
                 ...         a, b = b, a+b\n\
                 ...     print()";
    assert!(text.contains(block), "{text}");
    assert!(!text.contains("Table of Contents"), "the sidebar went");
    assert_eq!(langs.value(i), "en");
    // The same page read from disk gives the same text.
    let html = std::fs::read_to_string(site.join("tutorial/controlflow.html")).unwrap();
    let e = primer_crawl::html::extract(&html, &Default::default());
    assert_eq!(e.text, text);
    assert!(urls.iter().all(|u| u.is_some()));
    assert_eq!(all.column_by_name("title").unwrap().null_count(), 0);
}
