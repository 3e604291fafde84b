//! Equal scores: a hand-made hierarchical-softmax model whose output rows are zero, so
//! every branch is 0.5 and all labels tie. fastText then orders them as libstdc++'s heap
//! leaves them, and the cheap best-label search must fall back to that order.

mod common;

use common::Parity;
use primer_fasttext::Model;

/// A dense supervised model: one word (`hello`, input row `[0.5, -0.25]`), the given
/// labels with equal counts, loss hs, no n-grams, output rows zero.
fn tie_model(labels: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    let i32s = |b: &mut Vec<u8>, v: &[i32]| v.iter().for_each(|x| b.extend(x.to_le_bytes()));
    i32s(&mut b, &[primer_fasttext::MAGIC, 12]);
    // dim ws epoch minCount neg wordNgrams loss(hs) model(sup) bucket minn maxn lrUpdateRate
    i32s(&mut b, &[2, 5, 1, 1, 5, 1, 1, 3, 0, 0, 0, 100]);
    b.extend(1e-4f64.to_le_bytes());
    let n = labels.len() as i32;
    i32s(&mut b, &[1 + n, 1, n]);
    b.extend(10i64.to_le_bytes());
    b.extend((-1i64).to_le_bytes());
    for (word, ty) in std::iter::once(("hello", 0u8)).chain(labels.iter().map(|l| (*l, 1))) {
        b.extend(word.as_bytes());
        b.push(0);
        b.extend(3i64.to_le_bytes());
        b.push(ty);
    }
    b.push(0); // dense input
    b.extend(1i64.to_le_bytes());
    b.extend(2i64.to_le_bytes());
    b.extend(0.5f32.to_le_bytes());
    b.extend((-0.25f32).to_le_bytes());
    b.push(0); // dense output
    b.extend((labels.len() as i64).to_le_bytes());
    b.extend(2i64.to_le_bytes());
    b.extend(std::iter::repeat_n(0u8, labels.len() * 2 * 4));
    b
}

#[test]
fn ties_are_ordered_as_fasttext_orders_them() {
    let tmp = tempfile::tempdir().unwrap();
    for n in [2, 3, 5, 8] {
        let labels: Vec<String> = (0..n).map(|i| format!("__label__l{i}")).collect();
        let names: Vec<&str> = labels.iter().map(String::as_str).collect();
        let path = tmp.path().join(format!("tie{n}.bin"));
        std::fs::write(&path, tie_model(&names)).unwrap();
        let model = Model::load(&path).unwrap();
        let mut p = Parity::new(&model, &path);
        for text in ["hello", "hello hello world", "world", "", "\n"] {
            p.check(&format!("{n} labels, {text:?}"), text);
        }
        p.finish(&format!("tied model with {n} labels"));
        // With two labels both branches are exactly 0.5: a true tie.
        if n == 2 {
            let mut pr = model.predictor();
            pr.read_document(b"hello");
            let mut all = Vec::new();
            pr.predict(usize::MAX, 0.0, &mut all);
            assert_eq!(all[0].log_prob, all[1].log_prob);
            assert_eq!(pr.best(), Some(all[0]));
        }
    }
}
