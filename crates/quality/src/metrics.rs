//! How good a classifier is on held-out documents: precision, recall and F1 per class,
//! accuracy, the confusion matrix, and (for two classes) the precision–recall curve of the
//! positive class's probability.

use std::collections::BTreeMap;

use serde::Serialize;

/// One class's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Held-out documents of this class.
    pub support: u64,
}

/// A point of the precision–recall curve: keeping documents whose positive probability is
/// at least `threshold`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrPoint {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub kept: u64,
}

/// The evaluation that goes to the manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub documents: u64,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub classes: BTreeMap<String, ClassScores>,
    /// `confusion[true label][predicted label]` = documents.
    pub confusion: BTreeMap<String, BTreeMap<String, u64>>,
    /// For two classes: the positive class and its curve, by falling threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pr_curve: Vec<PrPoint>,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Evaluate `(true label, predicted label, positive probability)` triples; `positive`
/// names the positive class when there are two. The curve has at most `points` points,
/// at thresholds between the distinct probabilities (quantiles of them when there are
/// more).
pub fn evaluate(
    labels: &[String],
    results: &[(String, String, f64)],
    positive: Option<&str>,
    points: usize,
) -> Evaluation {
    let mut confusion: BTreeMap<String, BTreeMap<String, u64>> = labels
        .iter()
        .map(|t| {
            (
                t.clone(),
                labels
                    .iter()
                    .map(|p| (p.clone(), 0))
                    .collect::<BTreeMap<_, _>>(),
            )
        })
        .collect();
    for (t, p, _) in results {
        *confusion
            .entry(t.clone())
            .or_default()
            .entry(p.clone())
            .or_insert(0) += 1;
    }
    let mut classes = BTreeMap::new();
    let mut correct = 0;
    for l in labels {
        let tp = confusion[l].get(l).copied().unwrap_or(0);
        correct += tp;
        let support: u64 = confusion[l].values().sum();
        let predicted: u64 = confusion
            .values()
            .map(|row| row.get(l).copied().unwrap_or(0))
            .sum();
        let (precision, recall) = (ratio(tp, predicted), ratio(tp, support));
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        classes.insert(
            l.clone(),
            ClassScores {
                precision,
                recall,
                f1,
                support,
            },
        );
    }
    let n = results.len() as u64;
    let macro_f1 = if labels.is_empty() {
        0.0
    } else {
        classes.values().map(|c| c.f1).sum::<f64>() / labels.len() as f64
    };
    let mut pr_curve = Vec::new();
    if let Some(pos) = positive {
        let mut scored: Vec<(f64, bool)> = results.iter().map(|(t, _, p)| (*p, t == pos)).collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let positives = scored.iter().filter(|s| s.1).count() as u64;
        // Cut after each distinct probability (or at quantiles of them).
        let mut cuts: Vec<usize> = (1..=scored.len())
            .filter(|&k| k == scored.len() || scored[k].0 < scored[k - 1].0)
            .collect();
        if cuts.len() > points && points > 0 {
            let step = cuts.len() as f64 / points as f64;
            cuts = (1..=points)
                .map(|i| cuts[((i as f64 * step).ceil() as usize).min(cuts.len()) - 1])
                .collect();
            cuts.dedup();
        }
        let mut tp = 0u64;
        let mut at = 0usize;
        for k in cuts {
            while at < k {
                tp += u64::from(scored[at].1);
                at += 1;
            }
            pr_curve.push(PrPoint {
                threshold: scored[k - 1].0,
                precision: ratio(tp, k as u64),
                recall: ratio(tp, positives),
                kept: k as u64,
            });
        }
    }
    Evaluation {
        documents: n,
        accuracy: ratio(correct, n),
        macro_f1,
        classes,
        confusion,
        positive: positive.map(str::to_string),
        pr_curve,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_of_a_small_case() {
        let l = |s: &str| s.to_string();
        let labels = [l("hq"), l("lq")];
        let results = vec![
            (l("hq"), l("hq"), 0.9),
            (l("hq"), l("hq"), 0.8),
            (l("hq"), l("lq"), 0.4),
            (l("lq"), l("hq"), 0.7),
            (l("lq"), l("lq"), 0.2),
            (l("lq"), l("lq"), 0.1),
        ];
        let e = evaluate(&labels, &results, Some("hq"), 100);
        assert_eq!(e.documents, 6);
        assert!((e.accuracy - 4.0 / 6.0).abs() < 1e-12);
        let hq = &e.classes["hq"];
        assert!((hq.precision - 2.0 / 3.0).abs() < 1e-12 && (hq.recall - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(hq.support, 3);
        assert_eq!(e.confusion["lq"]["hq"], 1);
        // Thresholds 0.9, 0.8, 0.7, 0.4, 0.2, 0.1.
        assert_eq!(e.pr_curve.len(), 6);
        assert_eq!(
            e.pr_curve[2],
            PrPoint {
                threshold: 0.7,
                precision: 2.0 / 3.0,
                recall: 2.0 / 3.0,
                kept: 3
            }
        );
        assert_eq!(e.pr_curve[5].recall, 1.0);
        let few = evaluate(&labels, &results, Some("hq"), 3);
        assert_eq!(few.pr_curve.len(), 3);
        assert_eq!(few.pr_curve.last().unwrap().kept, 6);
    }
}
