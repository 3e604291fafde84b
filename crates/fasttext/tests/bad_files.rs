//! Files that are not usable models: each is refused with an error naming the file, and
//! nothing panics — missing, empty, text, wrong magic, newer version, truncated at every
//! offset of the header and dictionary and at many further on, word-vector models, and
//! randomly corrupted copies of lid.176.ftz.

mod common;

use std::panic::AssertUnwindSafe;

use common::lid_model;
use primer_fasttext::{Error, Model};

fn lid_bytes() -> Vec<u8> {
    std::fs::read(lid_model()).expect("lid.176.ftz in pipelines/demo-data")
}

#[test]
fn missing_empty_and_text_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.ftz");
    let e = Model::load(&missing).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot read fastText model {}", missing.display())),
        "{e}"
    );

    for (name, bytes) in [
        ("empty.bin", &b""[..]),
        ("short.bin", &b"\xba\x16"[..]),
        (
            "text.bin",
            &b"__label__en hello world\n__label__de hallo welt\n"[..],
        ),
        ("zeros.bin", &[0u8; 64][..]),
    ] {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = Model::load(&p).unwrap_err();
        assert!(matches!(e, Error::NotFastText { .. }), "{name}: {e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "{} is not a fastText model (it does not start with fastText's magic number 793712314)",
                p.display()
            )
        );
    }
}

#[test]
fn newer_versions_and_other_model_kinds_are_refused() {
    let mut b = lid_bytes();
    b[4..8].copy_from_slice(&13i32.to_le_bytes());
    let e = Model::from_bytes(&b, "v13.ftz").unwrap_err();
    assert_eq!(
        e.to_string(),
        "v13.ftz is fastText format version 13; fastText 0.9 (and this reader) reads versions up to 12"
    );

    // args: dim ws epoch minCount neg wordNgrams loss model …, after magic and version.
    let mut b = lid_bytes();
    b[36..40].copy_from_slice(&1i32.to_le_bytes());
    let e = Model::from_bytes(&b, "cbow.bin").unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "cbow.bin cannot be used for prediction: it is a word-vector model (cbow), not a supervised classifier"
    );
    let mut b = lid_bytes();
    b[32..36].copy_from_slice(&9i32.to_le_bytes());
    let e = Model::from_bytes(&b, "loss9.bin").unwrap_err();
    assert_eq!(
        e.to_string(),
        "loss9.bin is not a valid fastText model: unknown loss 9 (fastText knows 1 to 4)"
    );
}

#[test]
fn truncated_files_are_refused_at_every_offset() {
    let b = lid_bytes();
    let len = b.len();
    assert!(Model::from_bytes(&b, "lid.176.ftz").is_ok());
    // Every offset through the args and into the dictionary, then a spread over the
    // dictionary and the matrices, and the last bytes.
    let mut offsets: Vec<usize> = (0..2_000).collect();
    offsets.extend((2_000..len).step_by(1_999));
    offsets.extend(len - 64..len);
    for n in offsets {
        let e = Model::from_bytes(&b[..n], "cut.ftz")
            .err()
            .unwrap_or_else(|| panic!("a copy cut at byte {n} of {len} loaded"));
        if n < 4 {
            assert!(matches!(e, Error::NotFastText { .. }), "at {n}: {e}");
        } else {
            assert!(matches!(e, Error::Truncated { .. }), "at {n}: {e}");
            assert!(e.to_string().starts_with("cut.ftz is truncated: "), "{e}");
        }
    }
    // The same through the file system.
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("cut.ftz");
    std::fs::write(&p, &b[..len / 2]).unwrap();
    let e = Model::load(&p).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{} is truncated: ", p.display())),
        "{e}"
    );
}

/// xorshift64*: a fixed sequence, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn corrupted_files_never_panic() {
    let clean = lid_bytes();
    let mut rng = Rng(0x5EED_F00D_1234_5678);
    let mut panics = Vec::new();
    let (mut loaded, mut refused) = (0, 0);
    for round in 0..400 {
        let mut b = clean.clone();
        // A few bytes each: half the time in the args and the dictionary's head (sizes,
        // counts, flags), else anywhere.
        for _ in 0..1 + rng.below(4) {
            let at = if rng.below(2) == 0 {
                rng.below(200)
            } else {
                rng.below(b.len())
            };
            b[at] = match rng.below(4) {
                0 => 0,
                1 => 0xFF,
                2 => b[at] ^ (1 << rng.below(8)),
                _ => rng.next() as u8,
            };
        }
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            match Model::from_bytes(&b, "corrupt.ftz") {
                Ok(m) => {
                    let mut p = m.predictor();
                    let mut out = Vec::new();
                    for text in ["hello world", "Bonjour à tous", "", "\n"] {
                        p.read_document(text.as_bytes());
                        p.predict(usize::MAX, 0.0, &mut out);
                        p.best();
                        p.label(0, 0.0);
                    }
                    true
                }
                Err(e) => {
                    assert!(e.to_string().starts_with("corrupt.ftz "), "{e}");
                    false
                }
            }
        }));
        match r {
            Ok(true) => loaded += 1,
            Ok(false) => refused += 1,
            Err(_) => panics.push(round),
        }
    }
    eprintln!(
        "corrupted copies: {loaded} loaded, {refused} refused, {} panicked",
        panics.len()
    );
    assert!(panics.is_empty(), "rounds that panicked: {panics:?}");
}
