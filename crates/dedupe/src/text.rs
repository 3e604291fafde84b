//! How `exact_dedupe` normalises text before hashing it; datatrove's `simplify_text` and
//! its word splitting live in `primer_text::simplify`, shared with the filters.

use serde::{Deserialize, Serialize};

pub(crate) use primer_text::simplify::{for_each_ngram, simplify_text, simplify_text_with, words};

/// How text is normalised before it is hashed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// The text as it is, byte for byte.
    None,
    /// Runs of whitespace become one space; leading and trailing whitespace is removed.
    #[default]
    Whitespace,
    /// datatrove's `simplify_text`: lowercase, numbers become `0`, punctuation becomes
    /// space, whitespace collapsed, accents removed (NFD, then combining marks dropped).
    Datatrove,
}

/// `text` normalised by `how`, into `out` (cleared first).
pub fn normalize(text: &str, how: Normalization, out: &mut String) {
    out.clear();
    match how {
        Normalization::None => out.push_str(text),
        Normalization::Whitespace => {
            for w in text.split_whitespace() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(w);
            }
        }
        Normalization::Datatrove => simplify_text(text, out),
    }
}
