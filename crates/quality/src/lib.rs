//! The quality loop of phi-1 and FineWeb-Edu: an LLM rates a sample for educational value,
//! a cheap classifier learns the ratings, and the classifier scores everything at corpus
//! speed (DCLM does the same with reference positives and negatives).
//!
//! Three stages: [`AnnotateConfig`] (`annotate`) sends a seeded, optionally stratified
//! sample of documents to the LLM client of `primer-llm` with FineWeb-Edu's additive 0–5
//! prompt, phi-1's coding-concepts prompt or a template of yours, and reads the score
//! ([`ScoreParser`]: `Educational score: N`, a regex, or a JSON field) — an answer without
//! a valid score is kept with the reason, never guessed. [`TrainClassifierConfig`]
//! (`train_classifier`) trains a fastText model with fastText's own C++ trainer (DCLM's
//! recipe by default) on labels binarised at a threshold, kept as classes, or taken from
//! reference inputs, and evaluates a held-out split ([`evaluate`]: precision, recall, F1,
//! confusion matrix, precision–recall curve). [`ScoreConfig`] (`score`) adds the
//! classifier's probabilities with primer's own predictor (fastText's answers, bit for
//! bit) and keeps documents above a threshold or the top fraction.

mod annotate;
mod metrics;
mod parse;
mod prompts;
mod score;
mod train;

pub use annotate::{Allocation, Annotate, AnnotateConfig, AnnotateTemplate, annotations_schema};
pub use metrics::{ClassScores, Evaluation, PrPoint, evaluate};
pub use parse::{Parsed, ScoreParser, educational_score};
pub use prompts::{FINEWEB_EDU, PHI1_CODE};
pub use score::{Score, ScoreConfig};
pub use train::{MODEL_FILE, TrainClassifier, TrainClassifierConfig, one_line, predictions_schema};

#[cfg(test)]
mod tests {
    #[test]
    fn schemas_equal_the_schema_files() {
        use primer_core::testing::check_schema_file;
        check_schema_file("annotations", &super::annotations_schema());
        check_schema_file("classifier-predictions", &super::predictions_schema());
    }
}
