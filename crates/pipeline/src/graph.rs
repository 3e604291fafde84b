//! Checks of the stage graph: every input names a stage, no cycles, and every stage builds
//! and accepts its inputs' schemas.

use std::collections::{BTreeMap, HashMap};

use primer_core::{BuildContext, InputSchema};

use crate::config::{Diagnostic, Pipeline, StageDef};

/// A stage whose settings did not parse, with its inputs read as well as could be, so the
/// graph can still be checked.
pub(crate) struct BrokenStage {
    pub id: String,
    /// Inputs with their byte offsets.
    pub inputs: Vec<(String, usize)>,
    pub offset: usize,
}

/// A node of the graph: id, inputs with offsets, offset, whether it has a dataset.
struct Node(String, Vec<(String, usize)>, usize, bool);

/// Check the graph; return the well-formed stages with every stage after its inputs (file
/// order among independent stages). Problems go to `diags`.
pub(crate) fn check(
    text: &str,
    stages: &[StageDef],
    broken: &[BrokenStage],
    diags: &mut Vec<Diagnostic>,
) -> Vec<StageDef> {
    let mut nodes: Vec<Node> = Vec::new();
    for s in stages {
        let inputs = s
            .inputs
            .iter()
            .cloned()
            .zip(s.input_offsets.iter().copied())
            .collect();
        nodes.push(Node(s.id.clone(), inputs, s.offset, s.op.has_dataset()));
    }
    for b in broken {
        nodes.push(Node(b.id.clone(), b.inputs.clone(), b.offset, true));
    }
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.0.as_str(), i))
        .collect();
    let ids: Vec<&str> = nodes.iter().map(|n| n.0.as_str()).collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, Node(id, inputs, _, _)) in nodes.iter().enumerate() {
        let mut seen = Vec::new();
        for (input, offset) in inputs {
            if seen.contains(input) {
                diags.push(Diagnostic::at(
                    text,
                    Some(*offset),
                    format!("stage `{id}`: input `{input}` is listed twice"),
                ));
                continue;
            }
            seen.push(input.clone());
            match index.get(input.as_str()) {
                None => {
                    let hint = closest(input, &ids)
                        .map(|c| format!("did you mean `{c}`? "))
                        .unwrap_or_default();
                    diags.push(Diagnostic::at(
                        text,
                        Some(*offset),
                        format!(
                            "stage `{id}`: input `{input}` is not a stage; {hint}stages are: {}",
                            ids.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
                Some(&j) if !nodes[j].3 => diags.push(Diagnostic::at(
                    text,
                    Some(*offset),
                    format!("stage `{id}`: input `{input}` is a `write` stage, which exports files and has no dataset to read; use its input instead"),
                )),
                Some(&j) => edges[i].push(j),
            }
        }
    }
    // Kahn's algorithm, taking the earliest ready stage in file order each time.
    let mut indegree: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, e) in edges.iter().enumerate() {
        for &j in e {
            dependents[j].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..nodes.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::new();
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &dependents[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() < nodes.len() {
        // Report each cycle once: walk from a stuck node along stuck inputs.
        let stuck: Vec<bool> = (0..nodes.len()).map(|i| indegree[i] > 0).collect();
        let mut reported = vec![false; nodes.len()];
        for start in 0..nodes.len() {
            if !stuck[start] || reported[start] {
                continue;
            }
            let mut path = vec![start];
            let mut pos: BTreeMap<usize, usize> = BTreeMap::from([(start, 0)]);
            let mut cur = start;
            let cycle = loop {
                let Some(&next) = edges[cur].iter().find(|&&j| stuck[j]) else {
                    break None;
                };
                if let Some(&p) = pos.get(&next) {
                    break Some(path[p..].to_vec());
                }
                pos.insert(next, path.len());
                path.push(next);
                cur = next;
            };
            if let Some(cycle) = cycle {
                if cycle.iter().any(|&c| reported[c]) {
                    continue;
                }
                for &c in &cycle {
                    reported[c] = true;
                }
                // Stages read inputs, so data flows against the edges: show the data flow.
                let mut names: Vec<&str> =
                    cycle.iter().rev().map(|&c| nodes[c].0.as_str()).collect();
                names.push(names[0]);
                let first = *cycle
                    .iter()
                    .min_by_key(|&&c| nodes[c].2)
                    .expect("non-empty");
                diags.push(Diagnostic::at(
                    text,
                    Some(nodes[first].2),
                    format!(
                        "cycle: {} (a stage cannot depend on its own output)",
                        names.join(" → ")
                    ),
                ));
            }
        }
    }
    let by_id: HashMap<&str, &StageDef> = stages.iter().map(|s| (s.id.as_str(), s)).collect();
    order
        .iter()
        .filter_map(|&i| by_id.get(nodes[i].0.as_str()).map(|s| (*s).clone()))
        .collect()
}

/// Build every stage and compute its output schema from its inputs' schemas, in order.
pub(crate) fn check_build(text: &str, pipeline: &Pipeline, diags: &mut Vec<Diagnostic>) {
    let mut schemas: HashMap<String, arrow::datatypes::SchemaRef> = HashMap::new();
    for stage in &pipeline.stages {
        let ctx = BuildContext {
            stage_id: &stage.id,
            base_dir: &pipeline.base_dir,
        };
        let at = |msg: String| {
            Diagnostic::at(
                text,
                Some(stage.offset),
                format!("stage `{}` ({}): {msg}", stage.id, stage.op.kind()),
            )
        };
        let built = match stage.op.build(&ctx, &stage.inputs) {
            Ok(b) => b,
            Err(e) => {
                diags.push(at(e.to_string()));
                continue;
            }
        };
        let Some(inputs) = stage
            .inputs
            .iter()
            .map(|i| {
                schemas.get(i).map(|s| InputSchema {
                    id: i.clone(),
                    schema: s.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()
        else {
            continue; // an input failed; already reported
        };
        match built.output_schema(&inputs) {
            Ok(s) => {
                schemas.insert(stage.id.clone(), s);
            }
            Err(e) => diags.push(at(e.to_string())),
        }
    }
}

/// The name closest to `word` by edit distance, when it is close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}
