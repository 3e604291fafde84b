//! MinHash signatures exactly as datatrove 0.10.1's `MinhashDedupSignature` computes them
//! with `HashConfig(precision=64)` (xxhash64 of each shingle): the permutation
//! parameters come from numpy's legacy `RandomState(seed).randint`, reproduced here
//! (Mersenne Twister MT19937 and numpy's masked rejection sampling), so a signature is
//! the same 64-bit numbers datatrove writes.

use xxhash_rust::xxh64::xxh64;

use crate::text;

/// The Mersenne prime 2^61 − 1 the permutations work modulo.
pub const MERSENNE_PRIME: u64 = (1 << 61) - 1;

/// numpy's MT19937 as `RandomState(seed)` seeds it (`init_genrand`).
struct Mt19937 {
    mt: [u32; 624],
    index: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Mt19937 { mt, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for i in 0..624 {
                let y = (self.mt[i] & 0x8000_0000) | (self.mt[(i + 1) % 624] & 0x7fff_ffff);
                let mut v = self.mt[(i + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.mt[i] = v;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    fn next_u64(&mut self) -> u64 {
        let hi = self.next_u32() as u64;
        let lo = self.next_u32() as u64;
        (hi << 32) | lo
    }

    /// `randint(low, high, dtype=np.uint64)` of numpy's legacy `RandomState` for a range
    /// wider than 32 bits: masked rejection sampling.
    fn randint_u64(&mut self, low: u64, high: u64) -> u64 {
        let rng = high - 1 - low;
        debug_assert!(rng > u32::MAX as u64 && rng < u64::MAX);
        let mask = u64::MAX >> rng.leading_zeros();
        loop {
            let v = self.next_u64() & mask;
            if v <= rng {
                return low + v;
            }
        }
    }
}

/// The `a` and `b` of the `num_hashes` permutations `h ↦ (a·h + b) mod (2^61 − 1)`, as
/// datatrove draws them: `a` from `randint(1, P)`, then `b` from `randint(0, P)`.
pub fn permutations(seed: u32, num_hashes: usize) -> (Vec<u64>, Vec<u64>) {
    let mut g = Mt19937::new(seed);
    let a = (0..num_hashes)
        .map(|_| g.randint_u64(1, MERSENNE_PRIME))
        .collect();
    let b = (0..num_hashes)
        .map(|_| g.randint_u64(0, MERSENNE_PRIME))
        .collect();
    (a, b)
}

/// `x mod (2^61 − 1)` for any 64-bit `x`.
#[inline]
fn mod_mersenne(x: u64) -> u64 {
    let r = (x & MERSENNE_PRIME) + (x >> 61);
    r.min(r.wrapping_sub(MERSENNE_PRIME))
}

/// Computes shingles and signatures; holds the permutation parameters and scratch buffers.
#[derive(Clone)]
pub struct MinHasher {
    ngram: usize,
    a: Vec<u64>,
    b: Vec<u64>,
    simplified: String,
    gram: String,
}

impl MinHasher {
    pub fn new(ngram: usize, num_hashes: usize, seed: u32) -> Self {
        let (a, b) = permutations(seed, num_hashes);
        MinHasher {
            ngram,
            a,
            b,
            simplified: String::new(),
            gram: String::new(),
        }
    }

    pub fn num_hashes(&self) -> usize {
        self.a.len()
    }

    /// The distinct shingles of `text`, sorted: xxhash64 (seed 0) of each word n-gram of the
    /// simplified text, words joined by one space. Empty when the text has fewer than
    /// `ngram` words (datatrove writes no signature for such a document).
    pub fn shingles(&mut self, text: &str, out: &mut Vec<u64>) {
        self.shingle_hashes(text, out);
        out.sort_unstable();
        out.dedup();
    }

    /// The shingles of `text` in text order, repeats included: enough for a signature,
    /// which repeats do not change, and cheaper than [`MinHasher::shingles`].
    pub fn shingle_hashes(&mut self, text: &str, out: &mut Vec<u64>) {
        out.clear();
        text::simplify_text(text, &mut self.simplified);
        let mut words = Vec::new();
        text::words(&self.simplified, &mut words);
        text::for_each_ngram(&self.simplified, &words, self.ngram, &mut self.gram, |g| {
            out.push(xxh64(g.as_bytes(), 0))
        });
    }

    /// The signature of a shingle set: for each permutation, the least
    /// `((s·a + b) mod 2^64) mod (2^61 − 1)` over the shingles (numpy's uint64 arithmetic
    /// wraps, and datatrove relies on it). `shingles` must not be empty; repeated shingles
    /// do not change it.
    #[allow(unsafe_code)] // a CPU-feature-checked call of the AVX-512 version
    pub fn signature(&self, shingles: &[u64], out: &mut Vec<u64>) {
        out.clear();
        out.resize(self.a.len(), u64::MAX);
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU has the features the function is compiled for.
            done = unsafe { signature_avx512(&self.a, &self.b, shingles, out) };
        }
        signature_scalar(&self.a[done..], &self.b[done..], shingles, &mut out[done..]);
    }
}

/// The signature's minima for the permutations `a`, `b`, one at a time.
fn signature_scalar(a: &[u64], b: &[u64], shingles: &[u64], out: &mut [u64]) {
    for ((m, &a), &b) in out.iter_mut().zip(a).zip(b) {
        for &s in shingles {
            *m = (*m).min(mod_mersenne(s.wrapping_mul(a).wrapping_add(b)));
        }
    }
}

/// The signature's minima for the first multiple of 8 permutations, 8 at a time in AVX-512
/// lanes (64-bit multiply-low is AVX-512DQ); returns how many it did.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
#[allow(unsafe_code)] // unaligned vector loads and stores within the slices' bounds
fn signature_avx512(a: &[u64], b: &[u64], shingles: &[u64], out: &mut [u64]) -> usize {
    use std::arch::x86_64::*;
    let lanes = a.len() / 8 * 8;
    let p = _mm512_set1_epi64(MERSENNE_PRIME as i64);
    for k in (0..lanes).step_by(8) {
        // SAFETY: k + 8 <= lanes <= a.len() == b.len() == out.len().
        let (va, vb, mut m) = unsafe {
            (
                _mm512_loadu_si512(a.as_ptr().add(k).cast()),
                _mm512_loadu_si512(b.as_ptr().add(k).cast()),
                _mm512_loadu_si512(out.as_ptr().add(k).cast()),
            )
        };
        for &s in shingles {
            let h = _mm512_add_epi64(_mm512_mullo_epi64(_mm512_set1_epi64(s as i64), va), vb);
            // h mod (2^61 - 1): r = (h & P) + (h >> 61) < 2P, then min(r, r - P) as
            // unsigned numbers (r - P wraps to a huge number when r < P).
            let r = _mm512_add_epi64(_mm512_and_si512(h, p), _mm512_srli_epi64::<61>(h));
            let r = _mm512_min_epu64(r, _mm512_sub_epi64(r, p));
            m = _mm512_min_epu64(m, r);
        }
        // SAFETY: as above.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(k).cast(), m) };
    }
    lanes
}

/// The exact Jaccard similarity of two sorted, distinct shingle sets.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    inter as f64 / (a.len() + b.len() - inter) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_numpys() {
        // numpy 2.4: g = np.random.RandomState(1); a = g.randint(1, 2**61-1, dtype=np.uint64,
        // size=(1, 112)); b = g.randint(0, 2**61-1, dtype=np.uint64, size=(1, 112))
        let (a, b) = permutations(1, 112);
        assert_eq!(
            a[..3],
            [775169054918279404, 1758426461858698313, 2109959069025162]
        );
        assert_eq!(a[111], 223865076026037746);
        assert_eq!(
            b[..3],
            [
                1062448801025099917,
                1324811268927594100,
                1217488311597731462
            ]
        );
        assert_eq!(b[111], 1097409548522419201);
    }

    #[test]
    fn vector_and_scalar_signatures_agree() {
        // Whatever path `signature` takes on this CPU, it equals the plain loop, also
        // for permutation counts that are not a multiple of the vector width.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let shingles: Vec<u64> = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect();
        for n in [1, 8, 13, 112] {
            let h = MinHasher::new(5, n, 7);
            let mut got = Vec::new();
            h.signature(&shingles, &mut got);
            let want: Vec<u64> =
                h.a.iter()
                    .zip(&h.b)
                    .map(|(&a, &b)| {
                        shingles
                            .iter()
                            .map(|&s| s.wrapping_mul(a).wrapping_add(b) % MERSENNE_PRIME)
                            .min()
                            .unwrap()
                    })
                    .collect();
            assert_eq!(got, want, "{n} permutations");
        }
    }

    #[test]
    fn mod_mersenne_is_modulo() {
        for x in [
            0,
            1,
            MERSENNE_PRIME - 1,
            MERSENNE_PRIME,
            MERSENNE_PRIME + 1,
            u64::MAX,
            1 << 63,
        ] {
            assert_eq!(mod_mersenne(x), x % MERSENNE_PRIME, "{x}");
        }
    }

    #[test]
    fn jaccard_of_sets() {
        assert_eq!(jaccard(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard(&[1], &[2]), 0.0);
    }
}
