//! The run report: written at the end of `primer run` and by `primer report`, opened in
//! headless Chromium (Debian's `chromium`; `.ci/run` installs it) to check that every chart
//! drew, nothing was logged or requested and no script from data ran; its numbers checked
//! against the manifests.

use std::io::Write;
use std::path::Path;

use primer_browser::{Browser, chromium_or_skip, file_url};
use serde_json::Value;

use super::util::{demo_copy, manifest, run_ok};

/// `data-stage`/`data-field`/`data-counter` cells of the page: (stage, field, value, text).
fn number_cells(html: &str) -> Vec<(String, String, String, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[at..at + tag[at..].find('"')?].to_string())
    };
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<td class=\"n\" data-stage=\"") {
        rest = &rest[at..];
        let end = rest.find('>').unwrap();
        let tag = &rest[..end];
        let close = rest.find("</td>").unwrap();
        let text = rest[end + 1..close].to_string();
        let field = attr(tag, "data-field")
            .or_else(|| attr(tag, "data-counter").map(|c| format!("counter:{c}")))
            .unwrap();
        out.push((
            attr(tag, "data-stage").unwrap(),
            field,
            attr(tag, "data-value").unwrap(),
            text,
        ));
        rest = &rest[close..];
    }
    out
}

/// Every number the page shows for a stage equals its manifest's.
pub(super) fn check_numbers_against_manifests(html: &str, workdir: &Path) -> usize {
    let cells = number_cells(html);
    assert!(!cells.is_empty(), "no number cells on the page");
    for (stage, field, value, text) in &cells {
        let m = manifest(&workdir.join(stage));
        let counter = |k: &str| m["counters"][k].as_u64().unwrap_or(0);
        let want: Option<String> = match field.as_str() {
            "rows_in" => Some(counter("rows_in").to_string()),
            "rows_out" => Some(m["rows"].as_u64().unwrap().to_string()),
            "bytes" => Some(m["bytes"].as_u64().unwrap().to_string()),
            "seconds" => Some(format!("{:.3}", m["seconds"].as_f64().unwrap())),
            "tokens" => Some(counter("tokens").to_string()),
            "dropped" => Some(
                m["counters"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| k.starts_with("dropped."))
                    .map(|(_, v)| v.as_u64().unwrap())
                    .sum::<u64>()
                    .to_string(),
            ),
            f if f.starts_with("llm.") => Some(counter(f).to_string()),
            f if f.starts_with("counter:") => Some(counter(&f["counter:".len()..]).to_string()),
            // Estimates and words are the report's own (checked elsewhere).
            _ => None,
        };
        if let Some(want) = want {
            assert_eq!(value, &want, "{stage} {field}");
            // What is shown is the same number, with thousands separators (or in MB).
            if field == "bytes" {
                let mb: f64 = text.parse().unwrap();
                assert!(
                    (mb - want.parse::<f64>().unwrap() / 1e6).abs() < 0.006,
                    "{stage} {field}: {text}"
                );
            } else if field == "seconds" {
                let s: f64 = text.parse().unwrap();
                assert!(
                    (s - want.parse::<f64>().unwrap()).abs() < 0.051,
                    "{stage} {field}: {text}"
                );
            } else {
                assert_eq!(text.replace(',', ""), want, "{stage} {field}: shown {text}");
            }
        }
    }
    cells.len()
}

/// What every chart on the page drew: (kind, width, height, shapes, shapes with a size).
const CHARTS_JS: &str = "Array.from(document.querySelectorAll('svg.chart')).map(s => {\
    const r = s.getBoundingClientRect();\
    const shapes = Array.from(s.querySelectorAll('rect,path,line'));\
    const drawn = shapes.filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length;\
    return [s.dataset.chart, r.width, r.height, shapes.length, drawn];\
})";

/// Open `report` in Chromium: nothing logged, requested or opened; every chart drew.
/// Returns the kinds of charts seen.
fn open_and_check_charts(
    b: &mut Browser,
    report: &Path,
) -> (Vec<String>, primer_browser::PageLoad) {
    let load = b.open(&file_url(report)).unwrap();
    assert!(load.console.is_empty(), "console: {:?}", load.console);
    assert!(
        load.requests.is_empty(),
        "network requests: {:?}",
        load.requests
    );
    assert!(load.dialogs.is_empty(), "dialogs: {:?}", load.dialogs);
    assert_eq!(b.eval("document.scripts.length").unwrap(), 0);
    let charts = b.eval(CHARTS_JS).unwrap();
    let charts = charts.as_array().unwrap();
    assert!(!charts.is_empty());
    let mut kinds = Vec::new();
    for c in charts {
        let (kind, w, h, shapes, drawn) = (
            c[0].as_str().unwrap().to_string(),
            c[1].as_f64().unwrap(),
            c[2].as_f64().unwrap(),
            c[3].as_u64().unwrap(),
            c[4].as_u64().unwrap(),
        );
        assert!(w > 0.0 && h > 0.0, "chart {kind} has no size: {c}");
        assert!(shapes > 0 && drawn > 0, "chart {kind} drew nothing: {c}");
        kinds.push(kind);
    }
    (kinds, load)
}

#[test]
fn the_demo_report_draws_every_chart_in_chromium_and_shows_the_manifests_numbers() {
    let dir = demo_copy();
    let out = run_ok(&["run", "pipelines/demo.toml"], dir.path());
    let workdir = dir.path().join("work/demo");
    let report = workdir.join("report.html");
    assert!(
        out.contains(&format!("report: {}", report.display())),
        "the run prints where the report is:\n{out}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.to_ascii_lowercase().contains("<script"));
    let n = check_numbers_against_manifests(&html, &workdir);
    assert!(n > 14 * 5, "{n} number cells");
    // Every stage ran in this run; a second run skips them all and says so.
    assert_eq!(html.matches("ran in this run").count(), 3 * 14);
    assert!(html.contains("this run built 14 of them in "));
    let first = workdir.join("first-report.html");
    std::fs::copy(&report, &first).unwrap();
    run_ok(&["run", "pipelines/demo.toml"], dir.path());
    let again = std::fs::read_to_string(&report).unwrap();
    assert_eq!(again.matches("up to date, skipped").count(), 3 * 14);
    assert!(again.contains("this run found every stage up to date"));
    // Each filter reason is on the page with its count.
    let q = manifest(&workdir.join("quality"));
    for (k, v) in q["counters"].as_object().unwrap() {
        if let Some(reason) = k.strip_prefix("dropped.") {
            assert!(
                html.contains(&format!("<title>{reason}: {}</title>", v.as_u64().unwrap())),
                "reason {reason} not charted"
            );
        }
    }
    // The dropped documents' side dataset is sampled with its reasons.
    assert!(html.contains("Side dataset <code>dropped</code>: 176 rows"));
    assert!(html.contains("<td>gopher_below_alpha_threshold</td>"));

    // `primer report` writes the same page (without the run's states) where it is told.
    let other = dir.path().join("elsewhere/r.html");
    let printed = run_ok(
        &[
            "report",
            "pipelines/demo.toml",
            "-o",
            other.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(printed.contains("r.html"));
    let html2 = std::fs::read_to_string(&other).unwrap();
    assert_eq!(html2.matches(">done</span>").count(), 14);
    check_numbers_against_manifests(&html2, &workdir);

    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let mut b = Browser::launch(&chromium).unwrap();
    b.viewport(1400, 1000).unwrap();
    let (kinds, load) = open_and_check_charts(&mut b, &first);
    for want in ["graph", "funnel", "reasons", "histogram", "mix"] {
        assert!(
            kinds.iter().any(|k| k == want),
            "no {want} chart: {kinds:?}"
        );
    }
    // The graph has a box per stage, each linking to its section.
    assert_eq!(
        b.eval("document.querySelectorAll('svg[data-chart=graph] g[data-stage]').length")
            .unwrap(),
        14
    );
    assert_eq!(
        b.eval("Array.from(document.querySelectorAll('svg[data-chart=graph] a')).every(a => document.querySelector(a.getAttribute('href')) !== null)").unwrap(),
        true
    );
    // What the browser shows in the table is what the manifests say.
    let shown: Value = b
        .eval("Array.from(document.querySelectorAll('td[data-field=rows_out]')).map(td => [td.dataset.stage, td.textContent])")
        .unwrap();
    for row in shown.as_array().unwrap() {
        let stage = row[0].as_str().unwrap();
        let rows = manifest(&workdir.join(stage))["rows"].as_u64().unwrap();
        assert_eq!(
            row[1].as_str().unwrap().replace(',', ""),
            rows.to_string(),
            "{stage}"
        );
    }
    let png = b.screenshot(1400, 2400).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 50_000,
        "a {}-byte screenshot looks blank",
        png.len()
    );
    if let Some(to) = std::env::var_os("PRIMER_REPORT_SCREENSHOT") {
        std::fs::write(to, &png).unwrap();
    }
    primer_testdata::report(&format!(
        "report of the demo: {} bytes, {} charts, loaded in {:.0} ms, painted in {:.0} ms",
        html.len(),
        kinds.len(),
        load.load_ms,
        load.painted_ms
    ));
}

/// A paragraph that passes Gopher's quality rules, carrying markup that would run if the
/// report did not escape it.
const HOSTILE: &str = "The report shows what documents say, and some documents say things like \
    <script>alert(1)</script> or <img src=x onerror=alert(2)> in the middle of their text. \
    A careful page prints these as they are written, so that a reader can see them, and \
    it never lets them run, load an image or reach the network. This paragraph has enough \
    ordinary words in it for the quality filter to keep it, because it reads like the \
    prose of a small and friendly tutorial about writing safe web pages for everyone.";

#[test]
fn markup_in_documents_shows_as_text_and_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let docs = [
        serde_json::json!({"id": "kept\"><script>alert(3)</script>", "text": HOSTILE}),
        serde_json::json!({"id": "dropped", "text": "<script>alert(1)</script> too short"}),
    ];
    let mut f = std::fs::File::create(dir.path().join("docs.jsonl")).unwrap();
    for d in docs {
        writeln!(f, "{d}").unwrap();
    }
    std::fs::write(
        dir.path().join("p.toml"),
        "[pipeline]\nname = \"hostile\"\nworkdir = \"work\"\n\
         [stages.docs.read]\npaths = [\"docs.jsonl\"]\nsource = \"<i>src</i>\"\n\
         [stages.q]\ninputs = [\"docs\"]\n[stages.q.filter]\nkeep_dropped = true\nchain = [{ gopher_quality = {} }]\n",
    )
    .unwrap();
    run_ok(&["run", "p.toml"], dir.path());
    let report = dir.path().join("work/report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        !html.to_ascii_lowercase().contains("<script"),
        "a raw <script> tag is on the page"
    );
    assert!(!html.contains("<img"));
    assert!(!html.contains("<i>src"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Both the kept document and the dropped one are sampled.
    assert_eq!(
        manifest(&dir.path().join("work/q"))["rows"].as_u64(),
        Some(1),
        "the filter should keep the long paragraph and drop the short one"
    );
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let mut b = Browser::launch(&chromium).unwrap();
    open_and_check_charts(&mut b, &report);
    assert_eq!(b.eval("document.images.length").unwrap(), 0);
    let text = b.eval("document.body.innerText").unwrap();
    let text = text.as_str().unwrap();
    assert!(
        text.contains("<script>alert(1)</script> too short"),
        "dropped sample not shown as text"
    );
    assert!(
        text.contains("<img src=x onerror=alert(2)>"),
        "kept sample not shown as text"
    );
    assert!(text.contains("kept\"><script>alert(3)</script>"));
    assert!(
        text.contains("<i>src</i>"),
        "the source mix shows the name as text"
    );
}

/// A dataset of a million rows: the page stays small (sampled distributions, fixed bins),
/// says it sampled, and renders cleanly. Its time to render is measured by
/// `bench/report.sh`, not here.
#[test]
fn a_million_row_report_is_sampled_small_and_renders() {
    let dir = tempfile::tempdir().unwrap();
    {
        let f = std::fs::File::create(dir.path().join("docs.jsonl.zst")).unwrap();
        let mut z = zstd::Encoder::new(f, 1).unwrap().auto_finish();
        let words = [
            "alpha", "beta", "gamma", "delta", "the", "of", "and", "corpus", "token",
        ];
        let mut line = String::new();
        for i in 0..1_000_000u64 {
            line.clear();
            let n = 1 + (i * 2_654_435_761 % 97) as usize;
            line.push_str(&format!(
                "{{\"id\":\"d{i}\",\"source\":\"s{}\",\"text\":\"",
                i % 5
            ));
            for k in 0..n {
                line.push_str(words[(i as usize + k) % words.len()]);
                line.push(' ');
            }
            line.push_str("\"}\n");
            z.write_all(line.as_bytes()).unwrap();
        }
    }
    std::fs::write(
        dir.path().join("p.toml"),
        "[pipeline]\nname = \"million\"\nworkdir = \"work\"\n\
         [stages.docs.read]\npaths = [\"docs.jsonl.zst\"]\n\
         [stages.long]\ninputs = [\"docs\"]\n[stages.long.sql]\n\
         query = \"SELECT id, text, source, url, length(text) AS chars FROM docs WHERE length(text) > 60\"\n",
    )
    .unwrap();
    run_ok(&["run", "p.toml", "--no-report"], dir.path());
    let report = dir.path().join("work/report.html");
    run_ok(&["report", "p.toml"], dir.path());
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.len() < 5_000_000, "{} bytes", html.len());
    assert!(html.contains("of its 1,000,000 rows"), "no sampling notice");
    assert!(
        html.contains("data-column=\"chars\""),
        "the added column has no histogram"
    );
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let mut b = Browser::launch(&chromium).unwrap();
    let (kinds, load) = open_and_check_charts(&mut b, &report);
    primer_testdata::report(&format!(
        "report of a 1M-row dataset: {} bytes, {} charts, painted in {:.0} ms",
        html.len(),
        kinds.len(),
        load.painted_ms
    ));
}
