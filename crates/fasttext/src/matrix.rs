//! fastText's two matrices: `DenseMatrix` (`.bin`) and `QuantMatrix` (`.ftz`: product
//! quantization, `ProductQuantizer`, with optionally quantized row norms). Only the two
//! operations prediction needs, in fastText's float operation order: add a row to a vector
//! (`addRowToVector`) and the dot product of a row with a vector (`dotRow`).

use std::io::BufRead;

use crate::error::Result;
use crate::read::Reader;

/// Centroids per sub-quantizer (`ksub_ = 1 << nbits_`, 8 bits).
const KSUB: usize = 256;

pub(crate) enum Matrix {
    Dense(Dense),
    Quant(Quant),
}

pub(crate) struct Dense {
    m: usize,
    n: usize,
    data: Vec<f32>,
}

/// `ProductQuantizer`: `nsubq` sub-vectors of `dsub` floats (the last one `lastdsub`),
/// each coded by one byte choosing one of 256 centroids.
struct Pq {
    nsubq: usize,
    dsub: usize,
    lastdsub: usize,
    centroids: Vec<f32>,
}

pub(crate) struct Quant {
    m: usize,
    n: usize,
    /// `nsubq` codes per row.
    codes: Vec<u8>,
    pq: Pq,
    /// With `qnorm`: one code per row and the norm quantizer's centroids.
    norms: Option<(Vec<u8>, Pq)>,
    /// Every row decoded (`norm * c` of each centroid value `c`, the product `addcode`
    /// computes), when that takes at most [`MAX_DECODED_BYTES`]: adding a row is then one
    /// load of `n` floats instead of `nsubq` centroid lookups, with the same float
    /// operations. lid.176's input matrix (50,000 rows of 16) takes 3.2 MB.
    decoded: Option<Vec<f32>>,
}

/// Quantized matrices up to this size are decoded when loaded.
const MAX_DECODED_BYTES: usize = 64 << 20;

impl Pq {
    fn read<R: BufRead>(r: &mut Reader<R>, want_dim: usize) -> Result<Pq> {
        let dim = r.i32("product quantizer dim")?;
        let nsubq = r.i32("product quantizer nsubq")?;
        let dsub = r.i32("product quantizer dsub")?;
        let lastdsub = r.i32("product quantizer lastdsub")?;
        // What `ProductQuantizer(dim, dsub)` computes; fastText trusts the file.
        let consistent = dim >= 1
            && dsub >= 1
            && nsubq == dim / dsub + i32::from(dim % dsub != 0)
            && lastdsub == if dim % dsub == 0 { dsub } else { dim % dsub };
        if !consistent || dim as usize != want_dim {
            return Err(r.invalid(format!(
                "product quantizer of dim {dim}, nsubq {nsubq}, dsub {dsub}, lastdsub {lastdsub} for vectors of dim {want_dim}"
            )));
        }
        let centroids = r.f32s("product quantizer centroids", dim as u64 * KSUB as u64)?;
        Ok(Pq {
            nsubq: nsubq as usize,
            dsub: dsub as usize,
            lastdsub: lastdsub as usize,
            centroids,
        })
    }

    /// `get_centroids(m, i)`: the centroid `i` of sub-quantizer `m`.
    #[inline(always)]
    fn centroid(&self, m: usize, i: u8) -> &[f32] {
        let i = i as usize;
        if m == self.nsubq - 1 {
            let s = m * KSUB * self.dsub + i * self.lastdsub;
            &self.centroids[s..s + self.lastdsub]
        } else {
            let s = (m * KSUB + i) * self.dsub;
            &self.centroids[s..s + self.dsub]
        }
    }
}

impl Matrix {
    /// `DenseMatrix::load` or `QuantMatrix::load`; `dim`: the model's vector size.
    pub(crate) fn read<R: BufRead>(
        r: &mut Reader<R>,
        quant: bool,
        dim: usize,
        what: &str,
    ) -> Result<Matrix> {
        if !quant {
            let m = r.i64("dense matrix rows")?;
            let n = r.i64("dense matrix columns")?;
            check_shape(r, what, m, n, dim)?;
            let data = r.f32s("dense matrix data", (m as u64).saturating_mul(n as u64))?;
            return Ok(Matrix::Dense(Dense {
                m: m as usize,
                n: n as usize,
                data,
            }));
        }
        let qnorm = r.bool("quantized matrix qnorm")?;
        let m = r.i64("quantized matrix rows")?;
        let n = r.i64("quantized matrix columns")?;
        check_shape(r, what, m, n, dim)?;
        let codesize = r.i32("quantized matrix code size")?;
        let codes = r.bytes("quantized matrix codes", codesize.max(0) as u64)?;
        let pq = Pq::read(r, n as usize)?;
        if Some(codesize as i64) != m.checked_mul(pq.nsubq as i64) {
            return Err(r.invalid(format!(
                "the {what} matrix has {codesize} codes for {m} rows of {} sub-vectors",
                pq.nsubq
            )));
        }
        let norms = if qnorm {
            let codes = r.bytes("quantized matrix norm codes", m as u64)?;
            let npq = Pq::read(r, 1)?;
            Some((codes, npq))
        } else {
            None
        };
        let mut q = Quant {
            m: m as usize,
            n: n as usize,
            codes,
            pq,
            norms,
            decoded: None,
        };
        if q.m.saturating_mul(q.n).saturating_mul(4) <= MAX_DECODED_BYTES {
            q.decoded = Some(q.decode());
        }
        Ok(Matrix::Quant(q))
    }

    pub(crate) fn rows(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.m,
            Matrix::Quant(q) => q.m,
        }
    }

    pub(crate) fn cols(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.n,
            Matrix::Quant(q) => q.n,
        }
    }

    /// `x += row r` for each `r` of `rows` in turn (`computeHidden`'s `addRow` loop).
    pub(crate) fn add_rows(&self, x: &mut [f32], rows: &[i32]) {
        match self {
            Matrix::Dense(d) => sum_rows(x, &d.data, d.n, rows),
            Matrix::Quant(q) => q.add_rows(x, rows),
        }
    }

    /// `dotRow(x, i)`: a sequential float sum, as fastText adds.
    #[inline]
    pub(crate) fn dot_row(&self, x: &[f32], i: usize) -> f32 {
        match self {
            Matrix::Dense(d) => {
                let row = &d.data[i * d.n..(i + 1) * d.n];
                let mut s = 0.0f32;
                for (a, b) in row.iter().zip(x) {
                    s += a * b;
                }
                s
            }
            Matrix::Quant(q) => q.dot_row(x, i),
        }
    }

    /// Row `i`'s values as prediction adds them: the dense row, or a quantized row's
    /// `norm * c` of each centroid value `c`.
    fn row_into(&self, i: usize, out: &mut Vec<f32>) {
        out.clear();
        match self {
            Matrix::Dense(d) => out.extend_from_slice(&d.data[i * d.n..(i + 1) * d.n]),
            Matrix::Quant(q) => match &q.decoded {
                Some(d) => out.extend_from_slice(&d[i * q.n..(i + 1) * q.n]),
                None => q.decode_row(i, out),
            },
        }
    }

    /// The dense `rows() × by.rows()` matrix whose row `i` holds the dot product of this
    /// matrix's row `i` with each row of `by` (`self · byᵀ`), each summed in `f64` and
    /// rounded once. With `by` a model's output matrix, a sum of these rows is the output
    /// layer applied to the sum of the original rows, up to float rounding.
    pub(crate) fn project(&self, by: &Matrix) -> Matrix {
        let (m, k) = (self.rows(), by.rows());
        let mut b = Vec::new();
        let by: Vec<Vec<f64>> = (0..k)
            .map(|r| {
                by.row_into(r, &mut b);
                b.iter().map(|&x| f64::from(x)).collect()
            })
            .collect();
        let mut data = Vec::with_capacity(m * k);
        crate::pages::advise_huge(&data);
        let mut a = Vec::new();
        for i in 0..m {
            self.row_into(i, &mut a);
            for row in &by {
                let dot: f64 = a.iter().zip(row).map(|(&x, &y)| f64::from(x) * y).sum();
                data.push(dot as f32);
            }
        }
        Matrix::Dense(Dense { m, n: k, data })
    }

    /// The `n × n` identity: `dot_row(x, i)` is exactly `x[i]` (each `0 * x[j]` adds zero).
    pub(crate) fn identity(n: usize) -> Matrix {
        let mut data = vec![0.0; n * n];
        for i in 0..n {
            data[i * n + i] = 1.0;
        }
        Matrix::Dense(Dense { m: n, n, data })
    }
}

/// `x += row r` of the `n`-column row-major `data` for each `r` of `rows` in turn.
#[inline]
fn sum_rows(x: &mut [f32], data: &[f32], n: usize, rows: &[i32]) {
    match n {
        // lid.176's dim, and the few labels of a projected classifier (`Model::project`).
        16 => sum_fixed::<16>(x, data, rows),
        1 => sum_fixed::<1>(x, data, rows),
        2 => sum_fixed::<2>(x, data, rows),
        3 => sum_fixed::<3>(x, data, rows),
        4 => sum_fixed::<4>(x, data, rows),
        5 => sum_fixed::<5>(x, data, rows),
        6 => sum_fixed::<6>(x, data, rows),
        7 => sum_fixed::<7>(x, data, rows),
        8 => sum_fixed::<8>(x, data, rows),
        _ => {
            // Wide rows of a big matrix (DCLM-style classifiers: dim 100, millions of
            // n-gram buckets) are cache misses one after another; asking for the rows a
            // few ahead keeps several in flight. The sums are the same, in the same order.
            for (k, &r) in rows.iter().enumerate() {
                if let Some(&ahead) = rows.get(k + PREFETCH_AHEAD) {
                    prefetch_row(data, ahead as usize * n, n);
                }
                let r = r as usize;
                let row = &data[r * n..(r + 1) * n];
                x.iter_mut().zip(row).for_each(|(a, b)| *a += *b);
            }
        }
    }
}

/// [`sum_rows`] for rows of `N`: the sum kept in registers (vector adds; each element is
/// still summed in row order). Summing into `x` in memory compiled to scalar adds, each
/// waiting for the store before it.
#[inline(always)]
fn sum_fixed<const N: usize>(x: &mut [f32], data: &[f32], rows: &[i32]) {
    let x: &mut [f32; N] = (&mut x[..N]).try_into().expect("N values");
    let mut acc = *x;
    for (k, &r) in rows.iter().enumerate() {
        if N < 16
            && let Some(&ahead) = rows.get(k + SMALL_PREFETCH_AHEAD)
        {
            // A projected n-gram table (16 MB for 2M buckets of 2 labels) misses the
            // core's caches too.
            prefetch_row(data, ahead as usize * N, N);
        }
        let r = r as usize;
        let row: &[f32; N] = data[r * N..r * N + N].try_into().expect("N values");
        acc.iter_mut().zip(row).for_each(|(a, b)| *a += *b);
    }
    *x = acc;
}

/// How many rows ahead `sum_rows` asks for.
const PREFETCH_AHEAD: usize = 8;
/// How many rows of a few floats ahead `sum_fixed` asks for: each takes a couple of
/// cycles to add, and a miss of the core's caches a hundred or more.
const SMALL_PREFETCH_AHEAD: usize = 32;

/// Ask the processor to fetch `data[start..start + n]`, a cache line at a time.
#[inline(always)]
fn prefetch_row(data: &[f32], start: usize, n: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(row) = data.get(start..start + n) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        for line in row.chunks(16) {
            let p: *const f32 = line.as_ptr();
            // SAFETY: a prefetch is only a hint, and `p` points into `data`.
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p.cast())
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, start, n);
}

fn check_shape<R: BufRead>(r: &Reader<R>, what: &str, m: i64, n: i64, dim: usize) -> Result<()> {
    if m < 0 || n != dim as i64 {
        return Err(r.invalid(format!(
            "the {what} matrix is {m} × {n}, the model's vectors have dim {dim}"
        )));
    }
    Ok(())
}

impl Quant {
    #[inline(always)]
    fn norm(&self, i: usize) -> Option<f32> {
        self.norms
            .as_ref()
            .map(|(codes, npq)| npq.centroid(0, codes[i])[0])
    }

    /// All rows, each as the `n` values `addcode` adds: `norm * c[j]`, or `c[j]` without
    /// `qnorm`.
    fn decode(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.m * self.n);
        for r in 0..self.m {
            self.decode_row(r, &mut out);
        }
        out
    }

    /// Row `i` of [`decode`](Self::decode).
    fn decode_row(&self, i: usize, out: &mut Vec<f32>) {
        let pq = &self.pq;
        let norm = self.norm(i);
        for (m, &code) in self.codes[i * pq.nsubq..(i + 1) * pq.nsubq]
            .iter()
            .enumerate()
        {
            let c = pq.centroid(m, code);
            match norm {
                None => out.extend_from_slice(c),
                Some(norm) => out.extend(c.iter().map(|b| norm * b)),
            }
        }
    }

    /// `QuantMatrix::addRowToVector` → `ProductQuantizer::addcode(x, codes, r, norm)` for
    /// each row `r`: `x[j] += norm * c[j]` (without `qnorm`, norm is 1 and `1 * c` is `c`).
    fn add_rows(&self, x: &mut [f32], rows: &[i32]) {
        if let Some(d) = &self.decoded {
            sum_rows(x, d, self.n, rows);
            return;
        }
        let pq = &self.pq;
        if pq.dsub == 2 && pq.lastdsub == 2 && pq.nsubq == 8 {
            // lid.176 (dim 16, fastText's default dsub 2): gather the eight centroid pairs,
            // then one vectorisable multiply-add per element (still `x + norm * c`).
            let x: &mut [f32; 16] = (&mut x[..16]).try_into().expect("dim 16");
            let gather = |r: usize| {
                let codes: &[u8; 8] = self.codes[r * 8..r * 8 + 8].try_into().expect("8 codes");
                let mut c = [0.0f32; 16];
                for (m, &code) in codes.iter().enumerate() {
                    let s = (m * KSUB + code as usize) * 2;
                    c[2 * m..2 * m + 2].copy_from_slice(&pq.centroids[s..s + 2]);
                }
                c
            };
            match &self.norms {
                None => {
                    for &r in rows {
                        let c = gather(r as usize);
                        x.iter_mut().zip(&c).for_each(|(a, b)| *a += *b);
                    }
                }
                Some((codes, npq)) => {
                    for &r in rows {
                        let c = gather(r as usize);
                        let norm = npq.centroid(0, codes[r as usize])[0];
                        x.iter_mut().zip(&c).for_each(|(a, b)| *a += norm * b);
                    }
                }
            }
            return;
        }
        for &r in rows {
            let r = r as usize;
            let codes = &self.codes[r * pq.nsubq..(r + 1) * pq.nsubq];
            let norm = self.norm(r);
            for (m, &code) in codes.iter().enumerate() {
                let c = pq.centroid(m, code);
                let xs = &mut x[m * pq.dsub..m * pq.dsub + c.len()];
                match norm {
                    None => xs.iter_mut().zip(c).for_each(|(a, b)| *a += *b),
                    Some(norm) => xs.iter_mut().zip(c).for_each(|(a, b)| *a += norm * b),
                }
            }
        }
    }

    /// `QuantMatrix::dotRow` → `ProductQuantizer::mulcode(x, codes, i, norm)`.
    fn dot_row(&self, x: &[f32], i: usize) -> f32 {
        let pq = &self.pq;
        let codes = &self.codes[i * pq.nsubq..(i + 1) * pq.nsubq];
        let mut res = 0.0f32;
        for (m, &code) in codes.iter().enumerate() {
            let c = pq.centroid(m, code);
            for (a, b) in x[m * pq.dsub..].iter().zip(c) {
                res += a * b;
            }
        }
        res * self.norm(i).unwrap_or(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64: pseudo-random numbers for test data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn floats(&mut self, n: usize) -> Vec<f32> {
            (0..n)
                .map(|_| (self.next() % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        }
    }

    /// A quantized matrix of `m` rows of `dim` with pseudo-random codes and centroids.
    fn quant(m: usize, dim: usize, dsub: usize, qnorm: bool) -> Quant {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let nsubq = dim.div_ceil(dsub);
        let lastdsub = if dim.is_multiple_of(dsub) {
            dsub
        } else {
            dim % dsub
        };
        let pq = Pq {
            nsubq,
            dsub,
            lastdsub,
            centroids: rng.floats(dim * KSUB),
        };
        let norms = qnorm.then(|| {
            let npq = Pq {
                nsubq: 1,
                dsub: 1,
                lastdsub: 1,
                centroids: rng.floats(KSUB),
            };
            ((0..m).map(|_| rng.next() as u8).collect(), npq)
        });
        Quant {
            m,
            n: dim,
            codes: (0..m * nsubq).map(|_| rng.next() as u8).collect(),
            pq,
            norms,
            decoded: None,
        }
    }

    #[test]
    fn decoded_rows_add_exactly_as_the_codes() {
        for (dim, dsub, qnorm) in [(16, 2, true), (16, 2, false), (10, 3, true), (7, 2, false)] {
            let mut q = quant(300, dim, dsub, qnorm);
            let rows: Vec<i32> = (0..2000).map(|i| i * 7919 % 300).collect();
            let mut coded = vec![0.0f32; dim];
            q.add_rows(&mut coded, &rows);
            q.decoded = Some(q.decode());
            let mut decoded = vec![0.0f32; dim];
            q.add_rows(&mut decoded, &rows);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&coded),
                bits(&decoded),
                "dim {dim}, dsub {dsub}, qnorm {qnorm}"
            );
        }
    }
}
