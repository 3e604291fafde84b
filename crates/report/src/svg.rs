//! The report's charts as inline SVG, drawn here so the page needs no script: bars,
//! histograms, the funnel and the pipeline graph. Every chart is an `<svg class="chart">`
//! with a `data-chart` kind; every text in it is escaped.

use std::fmt::Write;

use crate::html::{esc, num};
use crate::scan::Histogram;

const FONT: &str = "font-family=\"system-ui,sans-serif\" font-size=\"12\"";

/// Horizontal bars, one per item, longest first as given: `(label, value)`.
pub fn bars(kind: &str, items: &[(String, u64)], color: &str) -> String {
    let label_w = items
        .iter()
        .map(|(l, _)| l.chars().count().min(48))
        .max()
        .unwrap_or(0) as f64
        * 6.6
        + 12.0;
    let bar_w = 360.0;
    let row = 20.0;
    let h = row * items.len() as f64 + 6.0;
    let w = label_w + bar_w + 90.0;
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1) as f64;
    let mut s = format!(
        "<svg class=\"chart\" data-chart=\"{kind}\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\" {FONT}>"
    );
    for (k, (label, v)) in items.iter().enumerate() {
        let y = 3.0 + row * k as f64;
        let len = (*v as f64 / max * bar_w).max(if *v > 0 { 1.5 } else { 0.0 });
        let short: String = crate::scan::cut(label, 48);
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w:.1}\" y=\"{:.1}\" width=\"{len:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{}: {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            label_w - 6.0,
            y + 13.0,
            esc(&short),
            y + 2.0,
            row - 5.0,
            esc(label),
            num(*v),
            label_w + len + 5.0,
            y + 13.0,
            num(*v),
        );
    }
    s.push_str("</svg>");
    s
}

/// A histogram with its axis: bins as columns, the edges at both ends and the median.
pub fn histogram(h: &Histogram) -> String {
    let (w, ht, left, bottom, top) = (420.0, 150.0, 46.0, 30.0, 8.0);
    let plot_w = w - left - 10.0;
    let plot_h = ht - bottom - top;
    let max = h.counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bw = plot_w / h.counts.len() as f64;
    let mut s = format!(
        "<svg class=\"chart\" data-chart=\"histogram\" data-column=\"{}\" viewBox=\"0 0 {w} {ht}\" width=\"{w}\" height=\"{ht}\" {FONT}>",
        esc(&h.column)
    );
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#888\"/>\
         <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{m}</text>\
         <text x=\"{tx}\" y=\"{y}\" text-anchor=\"end\">0</text>",
        y = top + plot_h,
        x2 = left + plot_w,
        tx = left - 4.0,
        ty = top + 10.0,
        m = num(max as u64),
    );
    for (k, c) in h.counts.iter().enumerate() {
        let bh = *c as f64 / max * plot_h;
        let x = left + bw * k as f64;
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#4c78a8\"><title>{} to {}: {}</title></rect>",
            x + 0.5,
            top + plot_h - bh,
            (bw - 1.0).max(0.5),
            bh.max(if *c > 0 { 1.0 } else { 0.0 }),
            short_num(h.edges[k]),
            short_num(h.edges[k + 1]),
            num(*c)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"{y}\">{}</text><text x=\"{x2}\" y=\"{y}\" text-anchor=\"end\">{}</text>",
        short_num(h.edges[0]),
        short_num(*h.edges.last().unwrap_or(&h.max)),
        y = top + plot_h + 14.0,
        x2 = left + plot_w,
    );
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}{}</text>",
        left + plot_w / 2.0,
        top + plot_h + 27.0,
        if h.log { "log scale · " } else { "" },
        esc(&h.column)
    );
    s.push_str("</svg>");
    s
}

/// One stage of the funnel.
pub struct FunnelRow {
    pub id: String,
    pub docs: u64,
    /// Tokens out, and whether the count is exact (else estimated).
    pub tokens: Option<(f64, bool)>,
}

/// The funnel: for each stage, documents out and (where known) tokens out, as two bars
/// each scaled to its own largest value.
pub fn funnel(rows: &[FunnelRow]) -> String {
    let label_w = rows.iter().map(|r| r.id.chars().count()).max().unwrap_or(0) as f64 * 6.6 + 16.0;
    let col_w = 300.0;
    let row = 36.0;
    let w = label_w + 2.0 * (col_w + 100.0);
    let h = row * rows.len() as f64 + 26.0;
    let max_docs = rows.iter().map(|r| r.docs).max().unwrap_or(0).max(1) as f64;
    let max_tok = rows
        .iter()
        .filter_map(|r| r.tokens.map(|t| t.0))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let mut s = format!(
        "<svg class=\"chart\" data-chart=\"funnel\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\" {FONT}>\
         <text x=\"{label_w:.0}\" y=\"14\" font-weight=\"bold\">documents</text>\
         <text x=\"{:.0}\" y=\"14\" font-weight=\"bold\">tokens (≈ estimated from text bytes)</text>",
        label_w + col_w + 100.0
    );
    for (k, FunnelRow { id, docs, tokens }) in rows.iter().enumerate() {
        let y = 24.0 + row * k as f64;
        let dl = (*docs as f64 / max_docs * col_w).max(if *docs > 0 { 1.5 } else { 0.0 });
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{dl:.1}\" height=\"{:.1}\" fill=\"#4c78a8\"><title>{}: {} documents</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            label_w - 8.0,
            y + 17.0,
            esc(id),
            label_w + (col_w - dl) / 2.0,
            row - 10.0,
            esc(id),
            num(*docs),
            label_w + col_w + 6.0,
            y + 17.0,
            num(*docs),
        );
        if let Some((t, exact)) = tokens {
            let tl = (t / max_tok * col_w).max(if *t > 0.0 { 1.5 } else { 0.0 });
            let x0 = label_w + col_w + 100.0;
            let label = count(*t, *exact);
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{tl:.1}\" height=\"{:.1}\" fill=\"#f58518\"><title>{}: {label} tokens</title></rect>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
                x0 + (col_w - tl) / 2.0,
                row - 10.0,
                esc(id),
                x0 + col_w + 6.0,
                y + 17.0,
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A node of the pipeline graph.
pub struct Node {
    pub id: String,
    pub kind: String,
    pub inputs: Vec<String>,
    /// Second line: rows in → out.
    pub line: String,
    /// Third line: time and state.
    pub state: String,
    /// Fill colour for the state.
    pub fill: &'static str,
}

/// The pipeline as layers, top to bottom: each stage one layer below its deepest input;
/// edges from an input's bottom to the stage's top. Stages link to their sections.
pub fn graph(nodes: &[Node]) -> String {
    let (bw, bh, gap_x, gap_y) = (230.0, 58.0, 22.0, 34.0);
    let mut layer: Vec<usize> = Vec::with_capacity(nodes.len());
    for n in nodes {
        let l = n
            .inputs
            .iter()
            .filter_map(|i| nodes.iter().position(|m| &m.id == i))
            .map(|p| layer.get(p).copied().unwrap_or(0) + 1)
            .max()
            .unwrap_or(0);
        layer.push(l);
    }
    let layers = layer.iter().copied().max().map_or(0, |m| m + 1);
    // x of each box: the first layer side by side; below, each box under the middle of
    // its inputs, in that order, pushed right where boxes would overlap.
    let mut x = vec![0.0f64; nodes.len()];
    for l in 0..layers {
        let mut members: Vec<(f64, usize)> = (0..nodes.len())
            .filter(|k| layer[*k] == l)
            .map(|k| {
                let parents: Vec<f64> = nodes[k]
                    .inputs
                    .iter()
                    .filter_map(|i| nodes.iter().position(|m| &m.id == i))
                    .map(|p| x[p])
                    .collect();
                let want = if parents.is_empty() {
                    f64::NEG_INFINITY
                } else {
                    parents.iter().sum::<f64>() / parents.len() as f64
                };
                (want, k)
            })
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut next = f64::NEG_INFINITY;
        for (want, k) in members {
            let at = if want.is_finite() {
                want.max(next)
            } else {
                next.max(0.0)
            };
            x[k] = at;
            next = at + bw + gap_x;
        }
    }
    // Edges that skip layers run down a lane of their own left of the boxes they pass,
    // instead of behind them.
    let index = |id: &String| nodes.iter().position(|m| &m.id == id);
    let long = nodes
        .iter()
        .enumerate()
        .flat_map(|(k, n)| n.inputs.iter().filter_map(move |i| Some((index(i)?, k))))
        .filter(|(p, k)| layer[*k] > layer[*p] + 1)
        .count(); // an upper bound on the lanes used
    let lanes_w = if long > 0 {
        14.0 + 8.0 * long as f64
    } else {
        0.0
    };
    let min_x = x.iter().copied().fold(f64::INFINITY, f64::min);
    for v in &mut x {
        *v += gap_x + lanes_w - min_x;
    }
    let w = x.iter().copied().fold(0.0f64, f64::max) + bw + gap_x;
    let h = layers as f64 * (bh + gap_y) + gap_y;
    let pos = |k: usize| -> (f64, f64) { (x[k], gap_y / 2.0 + layer[k] as f64 * (bh + gap_y)) };
    let mut s = format!(
        "<svg class=\"chart\" data-chart=\"graph\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\" {FONT}>"
    );
    let mut lane = 0usize;
    for (k, n) in nodes.iter().enumerate() {
        let (x, y) = pos(k);
        for i in &n.inputs {
            let Some(p) = index(i) else {
                continue;
            };
            let (px, py) = pos(p);
            let (x1, y1, x2, y2) = (px + bw / 2.0, py + bh, x + bw / 2.0, y - 1.0);
            let between: Vec<usize> = (0..nodes.len())
                .filter(|m| layer[*m] > layer[p] && layer[*m] < layer[k])
                .collect();
            let (lo, hi) = (x1.min(x2) - 4.0, x1.max(x2) + 4.0);
            let blocked = between.iter().any(|m| {
                let bx = pos(*m).0;
                bx < hi && bx + bw > lo
            });
            let d = if blocked {
                // Left of every box in the layers between.
                let left = between
                    .iter()
                    .map(|m| pos(*m).0)
                    .fold(f64::INFINITY, f64::min);
                let lx = left - 10.0 - 8.0 * lane as f64;
                lane += 1;
                let (ya, yb) = (y1 + gap_y / 2.0, y2 - gap_y / 2.0);
                format!(
                    "M{x1:.1},{y1:.1} C{x1:.1},{ya:.1} {lx:.1},{y1:.1} {lx:.1},{ya:.1} L{lx:.1},{yb:.1} C{lx:.1},{y2:.1} {x2:.1},{yb:.1} {x2:.1},{y2:.1}"
                )
            } else {
                let my = (y1 + y2) / 2.0;
                format!("M{x1:.1},{y1:.1} C{x1:.1},{my:.1} {x2:.1},{my:.1} {x2:.1},{y2:.1}")
            };
            let _ = write!(
                s,
                "<path d=\"{d}\" fill=\"none\" stroke=\"#999\" stroke-width=\"1.5\"/>\
                 <path d=\"M{x2:.1},{y:.1} l4,-6 l-8,0 z\" fill=\"#999\"/>",
            );
        }
    }
    for (k, n) in nodes.iter().enumerate() {
        let (x, y) = pos(k);
        let _ = write!(
            s,
            "<a href=\"#stage-{id}\"><g data-stage=\"{id}\">\
             <rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw}\" height=\"{bh}\" rx=\"6\" fill=\"{fill}\" stroke=\"#555\"/>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" font-weight=\"bold\">{id} <tspan font-weight=\"normal\" fill=\"#555\">({kind})</tspan></text>\
             <text x=\"{tx:.1}\" y=\"{:.1}\">{line}</text>\
             <text x=\"{tx:.1}\" y=\"{:.1}\" fill=\"#444\">{state}</text></g></a>",
            y + 16.0,
            y + 33.0,
            y + 50.0,
            id = esc(&n.id),
            kind = esc(&n.kind),
            fill = n.fill,
            tx = x + 8.0,
            line = esc(&n.line),
            state = esc(&n.state),
        );
    }
    s.push_str("</svg>");
    s
}

/// A count as shown on the page: exact with thousands separators, or an estimate in three
/// significant figures after `≈`.
pub fn count(v: f64, exact: bool) -> String {
    if exact {
        num(v as u64)
    } else {
        format!("≈{}", short_num(v))
    }
}

/// A number in three significant figures with k/M/B (for axes and estimates).
pub fn short_num(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e9 {
        (v / 1e9, "B")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if x.abs() >= 100.0 || (x.fract() == 0.0 && suffix.is_empty()) {
        0
    } else if x.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{x:.digits$}{suffix}")
}
