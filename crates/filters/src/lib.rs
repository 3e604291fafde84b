//! Document filters with the same decisions as HuggingFace datatrove 0.10.1.
//!
//! The `filter` stage ([`FilterConfig`] → [`FilterStage`]) runs an ordered chain of the
//! heuristic filters in one pass: [`GopherQualityConfig`], [`GopherRepetitionConfig`],
//! [`C4Config`] (which removes lines, so it changes text) and [`FinewebConfig`]; each
//! rule's threshold is a setting whose default is the published value, and every dropped
//! document is counted under `dropped.<filter>.<reason>` (and optionally written to the side
//! dataset `dropped`). Words are counted with [`words::split_words`], a re-implementation of
//! spaCy's blank English tokenizer that datatrove uses. The `pii` stage ([`PiiConfig`])
//! redacts e-mail and public IP addresses like datatrove's `PIIFormatter`; the `language`
//! stage ([`LanguageConfig`]) labels documents with fastText's lid.176 model and keeps the
//! languages asked for.

mod chain;
mod language;
mod ngrams;
mod pii;
mod rules;
mod text;
pub use primer_text::words;

pub use chain::{ChainCounts, ChainOutcome, FilterConfig, FilterRule, FilterStage};
pub use language::{LanguageConfig, LanguageStage};
pub use pii::{PiiConfig, PiiRedactor, PiiStage};
pub use rules::{
    C4Config, C4LineCounts, Decision, FinewebConfig, GopherQualityConfig, GopherRepetitionConfig,
};
