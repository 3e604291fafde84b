//! The run report page. Everything from data is escaped by [`esc`]; the page carries no
//! script, and its Content-Security-Policy forbids scripts and every network fetch, so a
//! document's text cannot run or load anything when the report is opened.

use std::collections::HashSet;
use std::fmt::Write;

use primer_core::schema_from_json;
use primer_pipeline::Pipeline;

use crate::scan::{self, DatasetStats, SampleRow, ScanOptions};
use crate::svg::{self, Node};
use crate::{RunInfo, StageFacts, State};

/// Text for HTML (element content and quoted attributes alike).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An integer with thousands separators.
pub fn num(v: u64) -> String {
    primer_core::thousands(v)
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1400px;padding:0 24px 48px;color:#222}
h1{font-size:22px;margin:20px 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:16px 0 4px}
.meta{color:#555}.note{color:#555;font-size:13px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;vertical-align:top}
th{background:#f4f4f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
table.samples td{max-width:22em;overflow-wrap:anywhere}table.samples td:has(pre.doc){max-width:none;min-width:36em}
.charts{display:flex;flex-wrap:wrap;gap:12px 28px;align-items:flex-start}.charts figure{margin:0}
figcaption{font-size:12px;color:#555;max-width:420px}
.state{display:inline-block;padding:1px 8px;border-radius:9px;font-size:12px;margin-left:8px;vertical-align:middle}
pre.doc{white-space:pre-wrap;word-break:break-word;max-height:14em;overflow:auto;background:#fafafa;border:1px solid #eee;padding:6px;margin:0;font-size:12px}
.scroll{overflow-x:auto}
section.stage{margin-bottom:12px}
";

fn fill(state: &State, ran: Option<bool>) -> &'static str {
    match (state, ran) {
        (_, Some(true)) => "#dcefdc",
        (State::Done, _) => "#e6eef9",
        (State::InProgress { .. } | State::Started, _) => "#fff1cc",
        (State::Stale, _) => "#fde0cc",
        (State::NotStarted | State::Blocked, _) => "#eeeeee",
    }
}

/// Per stage: the state to show and whether this run built it.
fn state_text(f: &StageFacts, run: Option<&RunInfo>) -> (String, Option<bool>) {
    match run {
        Some(r) if r.ran.contains(&f.id) => ("ran in this run".into(), Some(true)),
        Some(r) if r.skipped.contains(&f.id) => ("up to date, skipped".into(), Some(false)),
        _ => (f.state.describe(), None),
    }
}

/// Numeric columns a stage added: in its schema, not in any input's.
fn added_measures(f: &StageFacts, facts: &[StageFacts]) -> Vec<String> {
    let Some(m) = &f.manifest else {
        return Vec::new();
    };
    let Ok(schema) = schema_from_json(&m.schema) else {
        return Vec::new();
    };
    let mut inherited: HashSet<String> = HashSet::new();
    for i in &f.inputs {
        if let Some(im) = facts
            .iter()
            .find(|g| &g.id == i)
            .and_then(|g| g.manifest.as_ref())
            && let Ok(s) = schema_from_json(&im.schema)
        {
            inherited.extend(s.fields().iter().map(|x| x.name().clone()));
        }
    }
    schema
        .fields()
        .iter()
        .filter(|x| !inherited.contains(x.name()) && scan::is_measure(x.name(), x.data_type()))
        .map(|x| x.name().clone())
        .collect()
}

/// The whole page.
pub fn render_html(
    p: &Pipeline,
    facts: &[StageFacts],
    run: Option<&RunInfo>,
    opts: &ScanOptions,
) -> String {
    // One pass over each dataset.
    let stats: Vec<Option<Result<DatasetStats, String>>> = facts
        .iter()
        .map(|f| {
            let m = f.manifest.as_ref()?;
            if m.parts.is_empty() {
                return None;
            }
            Some(scan::scan(&f.dir, &added_measures(f, facts), opts).map_err(|e| e.to_string()))
        })
        .collect();
    // Bytes per token, as a tokenize stage measured it, for the token estimates.
    let bytes_per_token = facts.iter().find_map(|f| {
        let c = &f.manifest.as_ref()?.counters;
        (c.get("tokens") > 0 && c.get("text_bytes") > 0).then(|| {
            (
                f.id.clone(),
                c.get("text_bytes") as f64 / c.get("tokens") as f64,
            )
        })
    });
    let tokens_of = |k: usize| -> Option<(f64, bool)> {
        let f = &facts[k];
        let m = f.manifest.as_ref()?;
        if m.counters.get("tokens") > 0 {
            return Some((m.counters.get("tokens") as f64, true));
        }
        let (_, bpt) = bytes_per_token.as_ref()?;
        let st = stats[k].as_ref()?.as_ref().ok()?;
        Some((st.text_bytes? / bpt, false))
    };

    let mut h = String::with_capacity(256 << 10);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>primer report: {name}</title><style>{STYLE}</style></head><body>\
         <h1>Run report: pipeline <code>{name}</code></h1>\
         <p class=\"meta\">{file} · datasets in {work} · written {when} by primer {ver}</p>",
        name = esc(&p.name),
        file = esc(&p.path.display().to_string()),
        work = esc(&p.workdir.display().to_string()),
        when = httpdate::fmt_http_date(std::time::SystemTime::now()),
        ver = primer_core::PROGRAM_VERSION,
    );
    let done = facts.iter().filter(|f| f.manifest.is_some()).count();
    let seconds: f64 = facts
        .iter()
        .filter(|f| run.is_none_or(|r| r.ran.contains(&f.id)))
        .filter_map(|f| f.manifest.as_ref().map(|m| m.seconds))
        .fold(0.0, |a, b| a + b);
    let time = match run {
        Some(r) if r.ran.is_empty() => "this run found every stage up to date".to_string(),
        Some(r) => format!(
            "this run built {} of them in {seconds:.1} s of stage time",
            r.ran.len()
        ),
        None => format!("{seconds:.1} s of stage time as the manifests record it"),
    };
    let _ = write!(
        h,
        "<p>{done} of {} stages have a dataset; {time}.</p>",
        facts.len(),
    );

    // The graph.
    let nodes: Vec<Node> = facts
        .iter()
        .map(|f| {
            let (state, ran) = state_text(f, run);
            let line = match &f.manifest {
                Some(m) => format!(
                    "{} → {} rows · {}",
                    num(m.counters.get("rows_in")),
                    num(m.rows),
                    mb(m.bytes)
                ),
                None => "no dataset".into(),
            };
            let state = match &f.manifest {
                Some(m) => format!("{:.1} s · {state}", m.seconds),
                None => state,
            };
            Node {
                id: f.id.clone(),
                kind: f.kind.clone(),
                inputs: f.inputs.clone(),
                line,
                state,
                fill: fill(&f.state, ran),
            }
        })
        .collect();
    let _ = write!(
        h,
        "<h2 id=\"graph\">Pipeline</h2><p class=\"note\">Each stage below its inputs; a stage links to its section.</p><div class=\"scroll\">{}</div>",
        svg::graph(&nodes)
    );

    // The funnel.
    let funnel: Vec<svg::FunnelRow> = facts
        .iter()
        .enumerate()
        .filter_map(|(k, f)| {
            let m = f.manifest.as_ref()?;
            let docs = if m.notes.contains_key("exported_to") {
                m.counters.get("rows_exported")
            } else {
                m.rows
            };
            Some(svg::FunnelRow {
                id: f.id.clone(),
                docs,
                tokens: tokens_of(k),
            })
        })
        .collect();
    if !funnel.is_empty() {
        let how = match &bytes_per_token {
            Some((id, bpt)) => format!(
                "Tokens are exact where a stage tokenized (stage <code>{}</code>) and elsewhere \
                 estimated as the text's bytes ÷ {bpt:.2}, the bytes per token that stage measured.",
                esc(id)
            ),
            None => "No stage tokenized, so tokens are not shown; see the words under each stage."
                .into(),
        };
        let _ = write!(
            h,
            "<h2 id=\"funnel\">Funnel</h2><p class=\"note\">Documents and tokens each stage put out, in pipeline order. {how}</p><div class=\"scroll\">{}</div>",
            svg::funnel(&funnel)
        );
    }

    // The overview table.
    h.push_str(
        "<h2 id=\"stages\">Stages</h2><div class=\"scroll\"><table><tr><th>stage</th><th>kind</th><th>inputs</th><th>state</th>\
         <th>rows in</th><th>rows out</th><th>dropped</th><th>MB out</th><th>words out</th><th>tokens out</th><th>seconds</th></tr>",
    );
    for (k, f) in facts.iter().enumerate() {
        let (state, _) = state_text(f, run);
        let cell = |field: &str, value: Option<String>, shown: String| -> String {
            match value {
                Some(v) => format!(
                    "<td class=\"n\" data-stage=\"{}\" data-field=\"{field}\" data-value=\"{}\">{}</td>",
                    esc(&f.id),
                    esc(&v),
                    esc(&shown)
                ),
                None => "<td class=\"n\">–</td>".into(),
            }
        };
        let m = f.manifest.as_ref();
        let dropped: u64 = f.dropped().iter().map(|d| d.1).sum();
        let st = stats[k].as_ref().and_then(|s| s.as_ref().ok());
        let words = st.and_then(|s| s.words.map(|w| (w, s.sampled())));
        let tokens = tokens_of(k);
        let _ = write!(
            h,
            "<tr><td><a href=\"#stage-{id}\">{id}</a></td><td>{kind}</td><td>{inputs}</td><td>{state}</td>{}{}{}{}{}{}{}</tr>",
            cell(
                "rows_in",
                m.map(|m| m.counters.get("rows_in").to_string()),
                m.map(|m| num(m.counters.get("rows_in")))
                    .unwrap_or_default()
            ),
            cell(
                "rows_out",
                m.map(|m| m.rows.to_string()),
                m.map(|m| num(m.rows)).unwrap_or_default()
            ),
            cell("dropped", m.map(|_| dropped.to_string()), num(dropped)),
            cell(
                "bytes",
                m.map(|m| m.bytes.to_string()),
                m.map(|m| format!("{:.2}", m.bytes as f64 / 1e6))
                    .unwrap_or_default()
            ),
            match words {
                Some((w, sampled)) =>
                    cell("words", Some(format!("{w:.0}")), svg::count(w, !sampled)),
                None => cell("words", None, String::new()),
            },
            match tokens {
                Some((t, exact)) => cell(
                    if exact { "tokens" } else { "tokens_estimate" },
                    Some(format!("{t:.0}")),
                    svg::count(t, exact)
                ),
                None => cell("tokens", None, String::new()),
            },
            cell(
                "seconds",
                m.map(|m| format!("{:.3}", m.seconds)),
                m.map(|m| format!("{:.1}", m.seconds)).unwrap_or_default()
            ),
            id = esc(&f.id),
            kind = esc(&f.kind),
            inputs = esc(&f.inputs.join(", ")),
        );
    }
    h.push_str("</table></div>");

    // A section per stage.
    for (k, f) in facts.iter().enumerate() {
        stage_section(&mut h, f, stats[k].as_ref(), run, opts);
    }
    h.push_str("</body></html>\n");
    h
}

fn mb(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.0} kB", bytes as f64 / 1e3)
    }
}

fn stage_section(
    h: &mut String,
    f: &StageFacts,
    stats: Option<&Result<DatasetStats, String>>,
    run: Option<&RunInfo>,
    opts: &ScanOptions,
) {
    let (state, ran) = state_text(f, run);
    let _ = write!(
        h,
        "<section class=\"stage\" id=\"stage-{id}\"><h2>{id} <span class=\"note\">({kind})</span><span class=\"state\" style=\"background:{bg}\">{state}</span></h2>",
        id = esc(&f.id),
        kind = esc(&f.kind),
        bg = fill(&f.state, ran),
        state = esc(&state),
    );
    let Some(m) = &f.manifest else {
        h.push_str("<p>No dataset yet.</p></section>");
        return;
    };
    let _ = write!(
        h,
        "<p>{inputs}{rows} rows in {parts} part(s), {size}; {tasks} task(s){reused}, {secs:.1} s. <code>{dir}</code></p>",
        inputs = if f.inputs.is_empty() {
            String::new()
        } else {
            format!("From {}. ", esc(&f.inputs.join(", ")))
        },
        rows = num(m.rows),
        parts = m.parts.len(),
        size = mb(m.bytes),
        tasks = m.tasks,
        reused = if m.tasks_reused > 0 {
            format!(" ({} kept from an earlier run)", m.tasks_reused)
        } else {
            String::new()
        },
        secs = m.seconds,
        dir = esc(&f.dir.display().to_string()),
    );

    let mut charts = String::new();
    let dropped = f.dropped();
    if !dropped.is_empty() {
        let total: u64 = dropped.iter().map(|d| d.1).sum();
        let _ = write!(
            charts,
            "<figure>{}<figcaption>Dropped by rule or reason: {} of {} rows in.</figcaption></figure>",
            svg::bars("reasons", &dropped, "#e45756"),
            num(total),
            num(m.counters.get("rows_in")),
        );
    }
    if let Some(s) = primer_llm::Summary::from_counters(&m.counters) {
        let mut causes: Vec<(String, u64)> = Vec::new();
        causes.extend(s.retries.iter().map(|(k, n)| (format!("retry: {k}"), *n)));
        causes.extend(s.failed.iter().map(|(k, n)| (format!("failed: {k}"), *n)));
        causes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let _ = write!(
            h,
            "<h3>LLM calls</h3><table><tr><th>calls</th><th>cache hits</th><th>requests</th><th>answers</th><th>retries</th><th>failed</th>\
             <th>prompt tokens</th><th>completion tokens</th><th>cost</th><th>latency p50 / p90 / p99</th></tr><tr>\
             <td class=\"n\" data-stage=\"{id}\" data-field=\"llm.calls\" data-value=\"{calls}\">{}</td>\
             <td class=\"n\" data-stage=\"{id}\" data-field=\"llm.cache_hits\" data-value=\"{hits}\">{}</td>\
             <td class=\"n\" data-stage=\"{id}\" data-field=\"llm.requests\" data-value=\"{req}\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">${:.4}</td><td class=\"n\">{}</td></tr></table>",
            num(s.calls),
            num(s.cache_hits),
            num(s.requests),
            num(s.answers),
            num(s.retries.iter().map(|r| r.1).sum()),
            num(s.failed.iter().map(|r| r.1).sum()),
            num(s.prompt_tokens),
            num(s.completion_tokens),
            s.cost,
            s.latency_ms
                .map(|(a, b, c)| format!("{a:.0} / {b:.0} / {c:.0} ms"))
                .unwrap_or_else(|| "–".into()),
            id = esc(&f.id),
            calls = s.calls,
            hits = s.cache_hits,
            req = s.requests,
        );
        if !causes.is_empty() {
            let _ = write!(
                charts,
                "<figure>{}<figcaption>LLM retries and failures by cause.</figcaption></figure>",
                svg::bars("llm-causes", &causes, "#b279a2")
            );
        }
    }

    match stats {
        Some(Ok(st)) => {
            if st.sampled() {
                let _ = write!(
                    h,
                    "<p class=\"note\">Distributions, mixes and totals below are from a sample of {} of its {} rows \
                     (whole row groups spread over its parts), scaled to the whole where they are totals.</p>",
                    num(st.scanned),
                    num(st.rows)
                );
            }
            if let (Some(b), Some(w)) = (st.text_bytes, st.words) {
                let _ = write!(
                    h,
                    "<p>Text: {}{} bytes, {}{} words.</p>",
                    if st.sampled() { "≈" } else { "" },
                    num(b as u64),
                    if st.sampled() { "≈" } else { "" },
                    num(w as u64)
                );
            }
            for hist in &st.histograms {
                let _ = write!(
                    charts,
                    "<figure>{}<figcaption>{}: {} values, median {}, mean {}, min {}, max {}{}.</figcaption></figure>",
                    svg::histogram(hist),
                    esc(&hist.column),
                    num(hist.n),
                    svg::short_num(hist.median),
                    svg::short_num(hist.mean),
                    svg::short_num(hist.min),
                    svg::short_num(hist.max),
                    if hist.nulls > 0 {
                        format!(", {} null", num(hist.nulls))
                    } else {
                        String::new()
                    }
                );
            }
            for mix in &st.mixes {
                let mut items = mix.top.clone();
                if mix.other > 0 {
                    items.push(("(other values)".into(), mix.other));
                }
                let _ = write!(
                    charts,
                    "<figure>{}<figcaption>{} mix{}.</figcaption></figure>",
                    svg::bars("mix", &items, "#54a24b"),
                    esc(&mix.column),
                    if st.sampled() { " (sample)" } else { "" }
                );
            }
            if !charts.is_empty() {
                let _ = write!(h, "<div class=\"charts\">{charts}</div>");
            }
            if !st.clusters.is_empty() {
                h.push_str("<h3>Largest duplicate clusters</h3><table><tr><th>column</th><th>size</th><th>kept id</th><th>text</th></tr>");
                for (col, size, id, text) in &st.clusters {
                    let _ = write!(
                        h,
                        "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td><pre class=\"doc\">{}</pre></td></tr>",
                        esc(col),
                        num(*size),
                        esc(id),
                        esc(text)
                    );
                }
                h.push_str("</table>");
            }
            if !st.samples.is_empty() {
                h.push_str("<h3>Kept: the first rows</h3>");
                samples_table(h, &st.samples);
            }
        }
        Some(Err(e)) => {
            if !charts.is_empty() {
                let _ = write!(h, "<div class=\"charts\">{charts}</div>");
            }
            let _ = write!(h, "<p>Could not read the dataset: {}</p>", esc(e));
        }
        None => {
            if !charts.is_empty() {
                let _ = write!(h, "<div class=\"charts\">{charts}</div>");
            }
        }
    }

    for (name, dir) in f.sides() {
        match scan::side_samples(&dir, 3, 12, opts) {
            Ok((rows, sample)) => {
                let _ = write!(
                    h,
                    "<h3>Side dataset <code>{}</code>: {} rows</h3>",
                    esc(&name),
                    num(rows)
                );
                if sample.is_empty() {
                    h.push_str("<p class=\"note\">Empty.</p>");
                } else {
                    let _ = write!(
                        h,
                        "<p class=\"note\">Up to three rows for each reason among its first rows. In <code>{}</code>.</p>",
                        esc(&dir.display().to_string())
                    );
                    samples_table(h, &sample);
                }
            }
            Err(e) => {
                let _ = write!(
                    h,
                    "<h3>Side dataset <code>{}</code></h3><p>Could not read it: {}</p>",
                    esc(&name),
                    esc(&e.to_string())
                );
            }
        }
    }

    if !m.warnings.is_empty() {
        let _ = write!(
            h,
            "<details><summary>Warnings ({} in all; the first {})</summary><ul>",
            num(m.counters.get("warnings").max(m.warnings.len() as u64)),
            m.warnings.len()
        );
        for w in &m.warnings {
            let _ = write!(h, "<li>{}</li>", esc(w));
        }
        h.push_str("</ul></details>");
    }
    h.push_str("<details><summary>Counters and notes</summary><table>");
    for (k, v) in m.counters.iter() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\" data-stage=\"{}\" data-counter=\"{}\" data-value=\"{v}\">{}</td></tr>",
            esc(k),
            esc(&f.id),
            esc(k),
            num(v)
        );
    }
    for (k, v) in &m.notes {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(k),
            esc(&scan::cut(&text, 400))
        );
    }
    h.push_str("</table></details></section>");
}

/// Sample rows as a table: one column per field, text in a scrolling block.
fn samples_table(h: &mut String, rows: &[SampleRow]) {
    let mut cols: Vec<&str> = Vec::new();
    for r in rows {
        for (k, _) in r {
            if !cols.contains(&k.as_str()) {
                cols.push(k);
            }
        }
    }
    h.push_str("<div class=\"scroll\"><table class=\"samples\"><tr>");
    for c in &cols {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr>");
    for r in rows {
        h.push_str("<tr>");
        for c in &cols {
            let v = r
                .iter()
                .find(|(k, _)| k == c)
                .map(|x| x.1.as_str())
                .unwrap_or("");
            if *c == "text" {
                let _ = write!(h, "<td><pre class=\"doc\">{}</pre></td>", esc(v));
            } else {
                let _ = write!(h, "<td>{}</td>", esc(v));
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert(\"1\")</script> & 'x'"),
            "&lt;script&gt;alert(&quot;1&quot;)&lt;/script&gt; &amp; &#39;x&#39;"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(num(0), "0");
        assert_eq!(num(999), "999");
        assert_eq!(num(1000), "1,000");
        assert_eq!(num(1234567), "1,234,567");
    }
}
