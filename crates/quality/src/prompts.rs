//! The built-in annotation prompts.

/// FineWeb-Edu's additive 0–5 educational-value prompt, as HuggingFace published it with
/// the classifier (`HuggingFaceFW/fineweb-edu-classifier`, `utils/prompt.txt`), the
/// document in `{{ text }}`.
pub const FINEWEB_EDU: &str = r#"Below is an extract from a web page. Evaluate whether the page has a high educational value and could be useful in an educational setting for teaching from primary school to grade school levels using the additive 5-point scoring system described below. Points are accumulated based on the satisfaction of each criterion:

- Add 1 point if the extract provides some basic information relevant to educational topics, even if it includes some irrelevant or non-academic content like advertisements and promotional material.
- Add another point if the extract addresses certain elements pertinent to education but does not align closely with educational standards. It might mix educational content with non-educational material, offering a superficial overview of potentially useful topics, or presenting information in a disorganized manner and incoherent writing style.
- Award a third point if the extract is appropriate for educational use and introduces key concepts relevant to school curricula. It is coherent though it may not be comprehensive or could include some extraneous information. It may resemble an introductory section of a textbook or a basic tutorial that is suitable for learning but has notable limitations like treating concepts that are too complex for grade school students. 
- Grant a fourth point if the extract highly relevant and beneficial for educational purposes for a level not higher than grade school, exhibiting a clear and consistent writing style. It could be similar to a chapter from a textbook or a tutorial, offering substantial educational content, including exercises and solutions, with minimal irrelevant information, and the concepts aren't too advanced for grade school students. The content is coherent, focused, and valuable for structured learning.
- Bestow a fifth point if the extract is outstanding in its educational value, perfectly suited for teaching either at primary school or grade school. It follows detailed reasoning, the writing style is easy to follow and offers profound and thorough insights into the subject matter, devoid of any non-educational or complex content.

The extract:
{{ text }}.

After examining the extract: 
- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Educational score:  <total points>""#;

/// phi-1's question for code ("Textbooks Are All You Need", section 2.1: the educational
/// value of a file "for a student whose goal is to learn basic coding concepts"), as an
/// additive 0–5 scale in FineWeb-Edu's form so the same parser reads it.
pub const PHI1_CODE: &str = r#"Below is a source code file. Evaluate its educational value for a student whose goal is to learn basic coding concepts, using the additive 5-point scoring system described below. Points are accumulated based on the satisfaction of each criterion:

- Add 1 point if the code is valid and does something, even if it is boilerplate, configuration or generated code with little to learn from.
- Add another point if it uses practical programming concepts (functions, loops, data structures, error handling), even without comments or explanation.
- Award a third point if it is suitable for teaching: readable, self-contained enough to follow, and it introduces key concepts, though it may depend on context a student lacks or mix in complicated details.
- Grant a fourth point if it is highly relevant for learning: well structured and clearly named, with comments or docstrings that explain what it does and why, like an example from a programming course.
- Bestow a fifth point if it is outstanding for teaching: it is like a textbook exercise or tutorial, walking through a concept step by step with clear explanations, and it is easy to follow for a beginner.

The code:
{{ text }}

After examining the code: 
- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Educational score:  <total points>""#;

/// The JSON schema asked for with `json = true`, scores from `min` to `max`. The score
/// comes first (asked for the rationale first, SmolLM2 wrote one that never ended, and no
/// score) and is an `enum`: llama.cpp's grammars enforce enums, not `minimum`/`maximum`
/// (with those SmolLM2 answered 10 to every document on a 0–5 scale; with the enum, 0–5).
pub fn score_schema(min: i64, max: i64) -> String {
    let values: Vec<String> = (min..=max).map(|v| v.to_string()).collect();
    format!(
        r#"{{"type": "object", "properties": {{"score": {{"type": "integer", "enum": [{}]}}, "rationale": {{"type": "string"}}}}, "required": ["score", "rationale"]}}"#,
        values.join(", ")
    )
}

/// The instruction that replaces the prompt's last lines when a JSON answer is asked for.
pub const JSON_TAIL: &str = "Answer with a JSON object: {\"score\": <total points>, \"rationale\": \"<why, up to 100 words>\"}.";
