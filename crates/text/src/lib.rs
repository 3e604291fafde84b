//! The text rules that must agree with datatrove 0.10.1 and spaCy 3.8, in one place for
//! every stage that splits words.
//!
//! [`words`] holds Python's string semantics (`str.split`, `splitlines`, `isalpha`, …) and a
//! re-implementation of spaCy's blank English tokenizer, which datatrove's filters use to
//! count words and sentences. [`simplify`] holds datatrove's `simplify_text` and the word
//! splitting and n-grams its MinHash deduplication and decontamination hash. The character
//! classes and spaCy's exceptions both use are generated from the reference tools
//! (`scripts/gen_tables.py`).

pub mod hash;
pub mod simplify;
pub mod swar;
mod tables;
pub mod words;
