//! The output side of fastText's prediction (loss.cc): the hierarchical-softmax tree, the
//! sigmoid table, `std_log`, and libstdc++'s heap algorithms (whose order among equal scores
//! fastText's results inherit).

/// The loss a model was trained with; it decides how label scores are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// Hierarchical softmax (`-loss hs`, lid.176): a Huffman tree over the labels.
    HierarchicalSoftmax,
    /// Negative sampling (`-loss ns`): predicts like one-vs-all.
    NegativeSampling,
    /// Softmax (`-loss softmax`).
    Softmax,
    /// One-vs-all (`-loss ova`): independent sigmoids.
    OneVsAll,
}

/// `std_log` in loss.cc: `std::log(x + 1e-5)` — in double, since `1e-5` is a double.
#[inline]
pub(crate) fn std_log(x: f32) -> f32 {
    ((x as f64) + 1e-5).ln() as f32
}

/// The hierarchical softmax's sigmoid in `dfs`: `1. / (1 + std::exp(-f))`: `expf`, a
/// float sum, a double division.
#[inline]
pub(crate) fn hs_sigmoid(f: f32) -> f32 {
    (1.0f64 / (1.0f32 + (-f).exp()) as f64) as f32
}

const SIGMOID_TABLE_SIZE: usize = 512;
const MAX_SIGMOID: f32 = 8.0;

/// `Loss::t_sigmoid_` and `Loss::sigmoid`, used by one-vs-all and negative sampling.
pub(crate) struct SigmoidTable(Vec<f32>);

impl SigmoidTable {
    pub(crate) fn new() -> Self {
        SigmoidTable(
            (0..=SIGMOID_TABLE_SIZE as i64)
                .map(|i| {
                    let x = (i * 2 * 8) as f32 / SIGMOID_TABLE_SIZE as f32 - MAX_SIGMOID;
                    (1.0f64 / (1.0f64 + (-x).exp() as f64)) as f32
                })
                .collect(),
        )
    }

    #[inline]
    pub(crate) fn sigmoid(&self, x: f32) -> f32 {
        if x < -MAX_SIGMOID {
            0.0
        } else if x > MAX_SIGMOID {
            1.0
        } else {
            let i = ((x + MAX_SIGMOID) * SIGMOID_TABLE_SIZE as f32 / MAX_SIGMOID / 2.0) as i64;
            // In range for every number; NaN (undefined in C++) reads entry 0.
            self.0[i.clamp(0, SIGMOID_TABLE_SIZE as i64) as usize]
        }
    }
}

/// `HierarchicalSoftmaxLoss::buildTree`: a Huffman tree over the label counts. Leaves are
/// the labels `0..osz`, internal node `i` uses output row `i - osz`, the root is
/// `2 * osz - 2`.
pub(crate) struct Tree {
    pub(crate) osz: usize,
    pub(crate) left: Vec<i32>,
    pub(crate) right: Vec<i32>,
    pub(crate) parent: Vec<i32>,
    /// The node is its parent's right child (`binary`).
    pub(crate) binary: Vec<bool>,
    /// Longest path from the node down to a leaf.
    pub(crate) height: Vec<u32>,
}

impl Tree {
    /// `None` when the counts make fastText's construction pick a node it has not built
    /// yet (counts of 10^15 and more).
    pub(crate) fn build(counts: &[i64]) -> Option<Tree> {
        let osz = counts.len();
        if osz == 0 {
            return None;
        }
        let n = 2 * osz - 1;
        let mut count = vec![1_000_000_000_000_000i64; n];
        count[..osz].copy_from_slice(counts);
        let mut t = Tree {
            osz,
            left: vec![-1; n],
            right: vec![-1; n],
            parent: vec![-1; n],
            binary: vec![false; n],
            height: vec![0; n],
        };
        let mut leaf = osz as i64 - 1;
        let mut node = osz;
        for i in osz..n {
            let mut mini = [0usize; 2];
            for m in &mut mini {
                if leaf >= 0 && count[leaf as usize] < count[node] {
                    *m = leaf as usize;
                    leaf -= 1;
                } else {
                    if node >= i {
                        return None;
                    }
                    *m = node;
                    node += 1;
                }
            }
            t.left[i] = mini[0] as i32;
            t.right[i] = mini[1] as i32;
            count[i] = count[mini[0]].wrapping_add(count[mini[1]]);
            t.parent[mini[0]] = i as i32;
            t.parent[mini[1]] = i as i32;
            t.binary[mini[1]] = true;
            t.height[i] = 1 + t.height[mini[0]].max(t.height[mini[1]]);
        }
        Some(t)
    }

    pub(crate) fn root(&self) -> usize {
        2 * self.osz - 2
    }
}

/// `comparePairs`: `l.first > r.first` — the heap is a min-heap on the score.
#[inline(always)]
fn comp(a: &(f32, i32), b: &(f32, i32)) -> bool {
    a.0 > b.0
}

/// libstdc++'s `__push_heap`.
fn sift_up(h: &mut [(f32, i32)], mut hole: usize, top: usize, value: (f32, i32)) {
    while hole > top {
        let parent = (hole - 1) / 2;
        if !comp(&h[parent], &value) {
            break;
        }
        h[hole] = h[parent];
        hole = parent;
    }
    h[hole] = value;
}

/// libstdc++'s `__adjust_heap` on `h[..len]`.
fn adjust(h: &mut [(f32, i32)], mut hole: usize, len: usize, value: (f32, i32)) {
    let top = hole;
    let mut second = hole;
    while second < (len - 1) / 2 {
        second = 2 * (second + 1);
        if comp(&h[second], &h[second - 1]) {
            second -= 1;
        }
        h[hole] = h[second];
        hole = second;
    }
    if len & 1 == 0 && second == (len - 2) / 2 {
        second = 2 * (second + 1);
        h[hole] = h[second - 1];
        hole = second - 1;
    }
    sift_up(h, hole, top, value);
}

/// libstdc++'s `__pop_heap(first, first + last, first + last)`.
fn pop_to(h: &mut [(f32, i32)], last: usize) {
    let value = h[last];
    h[last] = h[0];
    adjust(h, 0, last, value);
}

/// `std::push_heap(h.begin(), h.end(), comparePairs)`.
pub(crate) fn push_heap(h: &mut [(f32, i32)]) {
    let last = h.len() - 1;
    sift_up(h, last, 0, h[last]);
}

/// `std::pop_heap(h.begin(), h.end(), comparePairs)`.
pub(crate) fn pop_heap(h: &mut [(f32, i32)]) {
    if h.len() > 1 {
        pop_to(h, h.len() - 1);
    }
}

/// `std::sort_heap(h.begin(), h.end(), comparePairs)`: best score first.
pub(crate) fn sort_heap(h: &mut [(f32, i32)]) {
    let mut last = h.len();
    while last > 1 {
        last -= 1;
        pop_to(h, last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order among equal scores is libstdc++'s; the parity tests check it against the
    /// C++ itself. Here: best first.
    #[test]
    fn heap_sorts_descending() {
        let mut h = Vec::new();
        for (i, s) in [3.0f32, 1.0, 2.0, 2.0, 5.0, 1.0, 4.0, 2.0]
            .iter()
            .enumerate()
        {
            h.push((*s, i as i32));
            push_heap(&mut h);
        }
        sort_heap(&mut h);
        let scores: Vec<f32> = h.iter().map(|p| p.0).collect();
        assert_eq!(scores, [5.0, 4.0, 3.0, 2.0, 2.0, 2.0, 1.0, 1.0]);
    }

    #[test]
    fn huffman_tree_of_three_labels() {
        let t = Tree::build(&[10, 5, 1]).unwrap();
        // Leaves 2 (count 1) and 1 (count 5) join first (6), then label 0 (10).
        assert_eq!((t.left[3], t.right[3]), (2, 1));
        assert_eq!((t.left[4], t.right[4]), (3, 0));
        assert!(t.binary[1] && t.binary[0] && !t.binary[2] && !t.binary[3]);
        assert_eq!(t.root(), 4);
        assert_eq!(t.height[4], 2);
    }
}
