//! Hash maps keyed by values that are already hashes.

use std::collections::{HashMap, HashSet};

/// Hashes `u64` keys that are already hashes (xxh3) by passing them through, and other
/// keys (lines, paragraphs) with xxh3.
#[derive(Default)]
pub struct PassHasher(u64);

impl std::hash::Hasher for PassHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// Builds [`PassHasher`]s.
pub type PassBuild = std::hash::BuildHasherDefault<PassHasher>;
/// A map from hashes.
pub type HashedMap<V> = HashMap<u64, V, PassBuild>;
/// A set of hashes.
pub type HashedSet = HashSet<u64, PassBuild>;
