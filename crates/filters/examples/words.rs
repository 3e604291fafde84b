//! Print primer's word split of JSONL documents (`{"id", "text"}` per line on stdin) as
//! JSONL `{"id", "words"}`: a tool for comparing the splitter with spaCy's.
use std::io::{BufRead, Write};

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    for line in stdin.lock().lines() {
        let line = line.expect("stdin");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        let text = v["text"].as_str().unwrap_or("");
        let mut words = Vec::new();
        primer_filters::words::split_words(text, &mut words);
        let row = serde_json::json!({"id": v["id"], "words": words,
            "sentences": primer_filters::words::count_sentences(text)});
        writeln!(out, "{row}").expect("stdout");
    }
}
