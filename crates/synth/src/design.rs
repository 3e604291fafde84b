//! A combinatorial design: named variables with values, their cross product, and seeded
//! draws of combinations without repeats.

use std::collections::{BTreeMap, BTreeSet};

/// Variables (in name order) and their values.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    vars: Vec<(String, Vec<String>)>,
}

impl Design {
    pub fn new(vars: &BTreeMap<String, Vec<String>>) -> Design {
        Design {
            vars: vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|v| v.0.as_str())
    }

    /// How many combinations there are (1 for an empty design; saturating).
    pub fn size(&self) -> u64 {
        self.vars
            .iter()
            .fold(1u64, |n, (_, v)| n.saturating_mul(v.len() as u64))
    }

    /// Combination `i` of the cross product (the last variable varies fastest).
    pub fn combination(&self, mut i: u64) -> Vec<(&str, &str)> {
        let mut out = vec![("", ""); self.vars.len()];
        for (k, (name, values)) in self.vars.iter().enumerate().rev() {
            let n = values.len() as u64;
            out[k] = (name.as_str(), values[(i % n) as usize].as_str());
            i /= n;
        }
        out
    }

    /// The indices of the combinations to use: all of them, or `sample` of them drawn
    /// without repeats with `seed` (Floyd's algorithm over SplitMix64), in ascending order.
    pub fn select(&self, sample: Option<usize>, seed: u64) -> Vec<u64> {
        let total = self.size();
        match sample {
            Some(k) if (k as u64) < total => {
                let mut rng = SplitMix64(seed);
                let mut chosen = BTreeSet::new();
                for j in total - k as u64..total {
                    let t = rng.below(j + 1);
                    if !chosen.insert(t) {
                        chosen.insert(j);
                    }
                }
                chosen.into_iter().collect()
            }
            _ => (0..total).collect(),
        }
    }

    /// Problems: an empty value list, a value listed twice (it would make the same prompt
    /// twice).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, values) in &self.vars {
            if values.is_empty() {
                out.push(format!("design.{name} has no values"));
            }
            let mut seen = BTreeSet::new();
            for v in values {
                if !seen.insert(v) {
                    out.push(format!("design.{name} lists `{v}` twice"));
                }
            }
        }
        out
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): the seeded generator of the draws.
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift with rejection).
    pub fn below(&mut self, n: u64) -> u64 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn design() -> Design {
        let mut m = BTreeMap::new();
        m.insert(
            "topic".to_string(),
            vec!["a".into(), "b".into(), "c".into()],
        );
        m.insert("audience".to_string(), vec!["x".into(), "y".into()]);
        Design::new(&m)
    }

    #[test]
    fn the_cross_product_in_order() {
        let d = design();
        assert_eq!(d.size(), 6);
        assert_eq!(d.combination(0), vec![("audience", "x"), ("topic", "a")]);
        assert_eq!(d.combination(1), vec![("audience", "x"), ("topic", "b")]);
        assert_eq!(d.combination(5), vec![("audience", "y"), ("topic", "c")]);
        assert_eq!(d.select(None, 0), (0..6).collect::<Vec<_>>());
        assert_eq!(d.select(Some(10), 0).len(), 6);
    }

    #[test]
    fn draws_are_seeded_distinct_and_cover_uniformly() {
        let d = design();
        let a = d.select(Some(3), 42);
        assert_eq!(a, d.select(Some(3), 42));
        assert_eq!(a.len(), 3);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        let mut hits = [0u32; 6];
        for seed in 0..6000 {
            for i in d.select(Some(2), seed) {
                hits[i as usize] += 1;
            }
        }
        // Each combination is drawn with probability 1/3: 2000 of 6000 times.
        assert!(hits.iter().all(|&h| (1800..2200).contains(&h)), "{hits:?}");
    }

    #[test]
    fn duplicate_and_empty_values_are_problems() {
        let mut m = BTreeMap::new();
        m.insert("topic".to_string(), vec!["a".into(), "a".into()]);
        m.insert("style".to_string(), vec![]);
        let p = Design::new(&m).problems();
        assert_eq!(
            p,
            ["design.style has no values", "design.topic lists `a` twice"]
        );
    }
}
