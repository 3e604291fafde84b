//! OpenAI's chat-completions wire format: the request body, the answer, the error body and
//! the rate-limit headers.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{JsonSchemaFormat, LlmConfig};

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Message {
        Message {
            role: "system".into(),
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }
}

/// The parts of a request that decide its answer: what the cache key is made of (with the
/// base URL and the sample index) and what is sent.
#[derive(Debug, Serialize)]
pub(crate) struct RequestBody<'a> {
    pub model: &'a str,
    pub messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Box<serde_json::value::RawValue>>,
}

impl<'a> RequestBody<'a> {
    pub fn new(
        cfg: &'a LlmConfig,
        model: &'a str,
        schema: Option<&str>,
        messages: &'a [Message],
        sample: u32,
    ) -> Self {
        RequestBody {
            model,
            messages,
            temperature: cfg.temperature,
            top_p: cfg.top_p,
            max_tokens: cfg.max_tokens,
            stop: &cfg.stop,
            seed: cfg.seed.map(|s| s.wrapping_add(u64::from(sample))),
            // Built as text, so the schema's keys keep their order.
            response_format: schema.and_then(|s| {
                let text = match cfg.json_schema_format {
                    JsonSchemaFormat::Openai => format!(
                        r#"{{"type":"json_schema","json_schema":{{"name":"answer","schema":{s},"strict":true}}}}"#
                    ),
                    JsonSchemaFormat::JsonObject => {
                        format!(r#"{{"type":"json_object","schema":{s}}}"#)
                    }
                };
                serde_json::value::RawValue::from_string(text).ok()
            }),
        }
    }
}

/// A chat completion as servers send it (only the fields primer reads).
#[derive(Debug, Deserialize)]
pub(crate) struct Completion {
    #[serde(default)]
    pub model: Option<String>,
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    pub message: Option<AnswerMessage>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AnswerMessage {
    #[serde(default)]
    pub content: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// The message of an OpenAI error body, `{"error": {"message": …, "type": …, "code": …}}`,
/// or the start of whatever the server sent.
pub(crate) fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        message: Option<String>,
        #[serde(default, rename = "type")]
        kind: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(Body {
            error: Inner {
                message: Some(m),
                kind,
            },
        }) => match kind {
            Some(k) => format!("{m} ({k})"),
            None => m,
        },
        _ => {
            let text = String::from_utf8_lossy(body);
            let t = text.trim();
            if t.is_empty() {
                "(empty body)".to_string()
            } else {
                clip(t, 300)
            }
        }
    }
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// What a server said about waiting and its limits, from response headers.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ServerHints {
    /// `Retry-After` (seconds or an HTTP date) or `retry-after-ms`.
    pub retry_after: Option<Duration>,
    pub limit_requests: Option<f64>,
    pub remaining_requests: Option<f64>,
    pub reset_requests: Option<Duration>,
    pub limit_tokens: Option<f64>,
    pub remaining_tokens: Option<f64>,
    pub reset_tokens: Option<Duration>,
}

impl ServerHints {
    pub fn from_headers(h: &reqwest::header::HeaderMap) -> ServerHints {
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let num = |name: &str| get(name).and_then(|v| v.parse::<f64>().ok());
        let retry_after = get("retry-after-ms")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
            .or_else(|| get("retry-after").and_then(parse_retry_after));
        ServerHints {
            retry_after,
            limit_requests: num("x-ratelimit-limit-requests"),
            remaining_requests: num("x-ratelimit-remaining-requests"),
            reset_requests: get("x-ratelimit-reset-requests").and_then(parse_duration),
            limit_tokens: num("x-ratelimit-limit-tokens"),
            remaining_tokens: num("x-ratelimit-remaining-tokens"),
            reset_tokens: get("x-ratelimit-reset-tokens").and_then(parse_duration),
        }
    }
}

/// `Retry-After`: delay-seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// OpenAI's reset durations: `1s`, `6m0s`, `20ms`, `1h2m3.5s`, or plain seconds.
pub(crate) fn parse_duration(v: &str) -> Option<Duration> {
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s));
    }
    let mut total = 0.0;
    let mut rest = v;
    let mut any = false;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * factor;
        any = true;
    }
    any.then(|| Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_durations_in_openai_notation() {
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(
            parse_duration("1h2m3.5s"),
            Some(Duration::from_secs_f64(3723.5))
        );
        assert_eq!(parse_duration("2.5"), Some(Duration::from_secs_f64(2.5)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("3x"), None);
    }

    #[test]
    fn retry_after_in_seconds_milliseconds_or_a_date() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            ServerHints::from_headers(&h).retry_after,
            Some(Duration::from_secs(7))
        );
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(
            ServerHints::from_headers(&h).retry_after,
            Some(Duration::from_millis(250))
        );
        let mut h = reqwest::header::HeaderMap::new();
        let later = std::time::SystemTime::now() + Duration::from_secs(30);
        h.insert(
            "retry-after",
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let d = ServerHints::from_headers(&h).retry_after.unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            error_message(br#"{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}"#),
            "Rate limit reached (requests)"
        );
        assert_eq!(
            error_message(b"<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
        assert_eq!(error_message(b""), "(empty body)");
    }
}
