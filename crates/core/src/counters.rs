use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Named counts a stage keeps: `rows_in`, `rows_out`, `dropped.<reason>`, …
///
/// Ordered by name so manifests are byte-stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Counters(pub BTreeMap<String, u64>);

impl Counters {
    pub fn add(&mut self, name: &str, n: u64) {
        if let Some(v) = self.0.get_mut(name) {
            *v += n;
        } else {
            self.0.insert(name.to_string(), n);
        }
    }
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }
    pub fn merge(&mut self, other: &Counters) {
        for (k, v) in &other.0 {
            self.add(k, *v);
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }
}
