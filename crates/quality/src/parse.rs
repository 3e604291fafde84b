//! Reading a score out of an annotator's answer. Nothing is guessed: an answer without a
//! score in the expected form, or with one outside the scale, is kept with the reason.

use std::sync::OnceLock;

/// How an answer gives its score.
#[derive(Debug, Clone)]
pub enum ScoreParser {
    /// The last match of a regex's first capture group (FineWeb-Edu's
    /// `Educational score: N` is one).
    Regex(regex::Regex),
    /// A JSON object's field (the answer may be wrapped in a code fence); the rationale is
    /// read from `rationale_field` when there is one.
    Json {
        field: String,
        rationale_field: String,
    },
}

/// A score read from an answer, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Score {
        score: i64,
        rationale: Option<String>,
    },
    /// `no_score` (the form is not there), `not_integer`, `out_of_range`, `not_json`.
    Problem {
        reason: &'static str,
        detail: String,
    },
}

/// The regex of FineWeb-Edu's prompt: `Educational score: N` (any case, any spacing, an
/// optional `/5` after it, markdown emphasis around it tolerated).
pub fn educational_score() -> regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(?i)educational\s+score\s*[:=]?\s*\**\s*(-?\d+(?:\.\d+)?)")
            .expect("valid regex")
    })
    .clone()
}

impl ScoreParser {
    /// Read `answer`; scores must be whole numbers from `min` to `max`.
    pub fn parse(&self, answer: &str, min: i64, max: i64) -> Parsed {
        let (raw, rationale) = match self {
            ScoreParser::Regex(re) => {
                let Some(caps) = re.captures_iter(answer).last() else {
                    return Parsed::Problem {
                        reason: "no_score",
                        detail: format!("no match of `{}`", re.as_str()),
                    };
                };
                let m = caps
                    .get(1)
                    .or_else(|| caps.get(0))
                    .expect("a match has group 0");
                let rationale = answer[..caps.get(0).expect("group 0").start()].trim();
                (
                    m.as_str().trim().to_string(),
                    (!rationale.is_empty()).then(|| rationale.to_string()),
                )
            }
            ScoreParser::Json {
                field,
                rationale_field,
            } => {
                let body = strip_fence(answer);
                let v: serde_json::Value = match serde_json::from_str(body) {
                    Ok(v) => v,
                    Err(e) => {
                        return Parsed::Problem {
                            reason: "not_json",
                            detail: format!("the answer is not JSON: {e}"),
                        };
                    }
                };
                let raw = match v.get(field) {
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    Some(serde_json::Value::String(s)) => s.trim().to_string(),
                    _ => {
                        return Parsed::Problem {
                            reason: "no_score",
                            detail: format!("the JSON has no field `{field}` with a number"),
                        };
                    }
                };
                let rationale = v
                    .get(rationale_field)
                    .and_then(|r| r.as_str())
                    .map(str::to_string);
                (raw, rationale)
            }
        };
        let score: i64 = match raw.parse::<i64>() {
            Ok(s) => s,
            Err(_) => match raw.parse::<f64>() {
                Ok(f) if f.fract() == 0.0 && f.is_finite() => f as i64,
                _ => {
                    return Parsed::Problem {
                        reason: "not_integer",
                        detail: format!("the score `{raw}` is not a whole number"),
                    };
                }
            },
        };
        if !(min..=max).contains(&score) {
            return Parsed::Problem {
                reason: "out_of_range",
                detail: format!("the score {score} is outside {min} to {max}"),
            };
        }
        Parsed::Score { score, rationale }
    }
}

/// The inside of a ```` ``` ```` fence around the whole answer, or the answer.
fn strip_fence(answer: &str) -> &str {
    let t = answer.trim();
    if let Some(rest) = t.strip_prefix("```") {
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
        return rest.strip_suffix("```").unwrap_or(rest).trim();
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(p: &Parsed) -> Option<i64> {
        match p {
            Parsed::Score { score, .. } => Some(*score),
            Parsed::Problem { .. } => None,
        }
    }
    fn reason(p: &Parsed) -> &'static str {
        match p {
            Parsed::Problem { reason, .. } => reason,
            Parsed::Score { .. } => "ok",
        }
    }

    #[test]
    fn educational_score_in_its_forms() {
        let p = ScoreParser::Regex(educational_score());
        let a = p.parse(
            "The extract teaches loops with examples.\n\nEducational score: 4",
            0,
            5,
        );
        assert_eq!(
            a,
            Parsed::Score {
                score: 4,
                rationale: Some("The extract teaches loops with examples.".into())
            }
        );
        assert_eq!(score(&p.parse("**Educational Score:** 3/5", 0, 5)), Some(3));
        assert_eq!(score(&p.parse("educational score = 2", 0, 5)), Some(2));
        assert_eq!(score(&p.parse("Educational score:  5", 0, 5)), Some(5));
        assert_eq!(score(&p.parse("Educational score: 3.0", 0, 5)), Some(3));
        // The last one counts: a model that repeats the instruction first.
        assert_eq!(
            score(&p.parse(
                "Conclude with \"Educational score: <total points>\". Educational score: 1",
                0,
                5
            )),
            Some(1)
        );
        assert_eq!(
            reason(&p.parse("I would give it four points.", 0, 5)),
            "no_score"
        );
        assert_eq!(
            reason(&p.parse("Educational score: 10", 0, 5)),
            "out_of_range"
        );
        assert_eq!(
            reason(&p.parse("Educational score: -1", 0, 5)),
            "out_of_range"
        );
        assert_eq!(
            reason(&p.parse("Educational score: 3.5", 0, 5)),
            "not_integer"
        );
        assert_eq!(reason(&p.parse("", 0, 5)), "no_score");
    }

    #[test]
    fn json_answers() {
        let p = ScoreParser::Json {
            field: "score".into(),
            rationale_field: "rationale".into(),
        };
        assert_eq!(
            p.parse(r#"{"score": 2, "rationale": "Some facts."}"#, 0, 5),
            Parsed::Score {
                score: 2,
                rationale: Some("Some facts.".into())
            }
        );
        assert_eq!(
            score(&p.parse("```json\n{\"score\": \"4\"}\n```", 0, 5)),
            Some(4)
        );
        // SmolLM2 answered 10 on a 0-5 scale: the schema's maximum is not enforced.
        assert_eq!(reason(&p.parse(r#"{"score": 10}"#, 0, 5)), "out_of_range");
        assert_eq!(
            reason(&p.parse(r#"{"score": "high"}"#, 0, 5)),
            "not_integer"
        );
        assert_eq!(reason(&p.parse(r#"{"rationale": "x"}"#, 0, 5)), "no_score");
        assert_eq!(reason(&p.parse(r#"{ "reason": "3.0}"#, 0, 5)), "not_json");
    }

    #[test]
    fn a_custom_regex() {
        let p = ScoreParser::Regex(regex::Regex::new(r"Rating: (\d)").unwrap());
        assert_eq!(score(&p.parse("Rating: 1", 0, 3)), Some(1));
        assert_eq!(reason(&p.parse("Rating: 7", 0, 3)), "out_of_range");
    }
}
