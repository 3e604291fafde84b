//! Where primer's tests and benchmarks find data, and how they say they were skipped.
//!
//! Three places hold test data, and one service may be there:
//!
//! - the repository's own small files in `pipelines/demo-data/` (lid.176, GPT-2's
//!   tokenizer, HumanEval, the demo corpora): always there, [`demo_data`];
//! - the large shared corpora, sites, benchmarks and tokenizers that live beside the
//!   project on the machines that build it (`../shared/data`), or wherever
//!   `PRIMER_TEST_DATA` points: [`shared_data`], often absent in a user's clone;
//! - a Python with the reference tools (datatrove, spaCy, fastText…), named by
//!   `PRIMER_REF_PYTHON`: [`ref_python`];
//! - a real small LLM behind an OpenAI-compatible API, named by `PRIMER_TEST_LLM_URL` and
//!   `PRIMER_TEST_LLM_MODEL`: [`llm_server_or_skip`].
//!
//! A test that needs what is absent calls [`skip`] (or one of the `*_or_skip` helpers),
//! which prints `SKIPPED <test binary> <test>: <reason>` straight to the process's stderr — past the
//! test harness's output capture, so `cargo test` shows every skipped test and why — and
//! the test returns. `.ci/run` counts those lines. Setting `PRIMER_NO_SKIP=1` turns a skip
//! into a failure, for runs that must test everything.
//!
//! Only a dev-dependency: nothing here is part of primer.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable naming the shared test data directory.
pub const TEST_DATA_VAR: &str = "PRIMER_TEST_DATA";
/// The environment variable naming the reference tools' Python.
pub const REF_PYTHON_VAR: &str = "PRIMER_REF_PYTHON";
/// Set to `1` to make every skip a failure.
pub const NO_SKIP_VAR: &str = "PRIMER_NO_SKIP";

/// The repository's root directory: the nearest directory above the running test's
/// package (cargo sets `CARGO_MANIFEST_DIR` when it runs a test) that has
/// `pipelines/demo-data`. Found at run time, not from this crate's compile-time path: a
/// build cache shared by two copies of the repository can hand one copy the other's
/// compiled path.
pub fn repo_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start
        .ancestors()
        .find(|d| d.join("pipelines/demo-data").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// The repository's demo data directory, `pipelines/demo-data/`.
pub fn demo_data_dir() -> PathBuf {
    repo_root().join("pipelines/demo-data")
}

/// A file of the repository's demo data (`pipelines/demo-data/<name>`), which every clone
/// has: `lid.176.ftz`, `gpt2-tokenizer.json`, `HumanEval.jsonl.gz`,
/// `python-docs.jsonl.zst`, `cpython-stdlib.jsonl.zst`.
pub fn demo_data(name: &str) -> PathBuf {
    let p = demo_data_dir().join(name);
    assert!(
        p.exists(),
        "{} is not in the repository: demo data is tracked and always present",
        p.display()
    );
    p
}

/// The shared data directory: `PRIMER_TEST_DATA` when set (it must then exist: a run
/// that names data and does not find it is misconfigured, and fails), else
/// `../shared/data` beside the repository when that exists, else `None`.
pub fn shared_data() -> Option<PathBuf> {
    match std::env::var_os(TEST_DATA_VAR) {
        Some(v) if !v.is_empty() => {
            let p = PathBuf::from(v);
            assert!(
                p.is_dir(),
                "{TEST_DATA_VAR}={} is not a directory",
                p.display()
            );
            Some(p)
        }
        _ => {
            let p = repo_root().join("../shared/data");
            p.is_dir().then_some(p)
        }
    }
}

/// `rel` inside the shared data directory, if the directory and the file are there.
pub fn shared_file(rel: &str) -> Option<PathBuf> {
    let p = shared_data()?.join(rel);
    p.exists().then_some(p)
}

/// The reference tools' Python (`PRIMER_REF_PYTHON`), if set.
pub fn ref_python() -> Option<String> {
    std::env::var(REF_PYTHON_VAR).ok().filter(|s| !s.is_empty())
}

/// The environment variables naming a real OpenAI-compatible server for end-to-end LLM
/// tests (`.ci/run` starts SmolLM2-135M-Instruct under llama-cpp-python and sets them).
pub const LLM_URL_VAR: &str = "PRIMER_TEST_LLM_URL";
pub const LLM_MODEL_VAR: &str = "PRIMER_TEST_LLM_MODEL";

/// The real model's base URL and name, or `None` after saying the test is skipped.
pub fn llm_server_or_skip() -> Option<(String, String)> {
    let url = std::env::var(LLM_URL_VAR).ok().filter(|s| !s.is_empty());
    let model = std::env::var(LLM_MODEL_VAR).ok().filter(|s| !s.is_empty());
    match (url, model) {
        (Some(u), Some(m)) => Some((u, m)),
        _ => {
            skip(&format!(
                "set {LLM_URL_VAR} and {LLM_MODEL_VAR} to a real OpenAI-compatible server and model (.ci/run starts SmolLM2-135M-Instruct with llama-cpp-python)"
            ));
            None
        }
    }
}

/// Print a line to the process's stderr past the test harness's capture (figures a test
/// measured, for the CI log).
pub fn report(line: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("{line}\n").as_bytes());
}

/// CPU seconds (user + system, all threads) this process has used, from `/proc/self/stat`
/// (Linux; clock ticks of 1/100 s): what benchmarks divide by to give figures per core.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name's closing parenthesis; utime and stime are the
    // 12th and 13th of those.
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The process's peak resident memory in MB (`VmHWM` of `/proc/self/status`; Linux), for
/// benchmarks' memory figures; 0 where it cannot be read.
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The running test's name, after its test binary's (`primer_tokenize`, `parity`, …):
/// libtest names each test's thread after the test.
fn test_name() -> String {
    let binary = std::env::args()
        .next()
        .and_then(|a| {
            let name = Path::new(&a).file_name()?.to_string_lossy().into_owned();
            // Cargo names test binaries `<target>-<16 hex digits>`.
            Some(match name.rsplit_once('-') {
                Some((t, h)) if h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    t.to_string()
                }
                _ => name,
            })
        })
        .unwrap_or_default();
    match std::thread::current().name() {
        Some(n) if n != "main" => format!("{binary} {n}"),
        _ => binary,
    }
}

/// Say that the running test is skipped and why: `SKIPPED <binary> <test>: <reason>` on the
/// process's stderr, which the test harness does not capture. Panics instead when
/// `PRIMER_NO_SKIP=1`. The caller returns after this.
pub fn skip(reason: &str) {
    let line = format!("SKIPPED {}: {reason}\n", test_name());
    if std::env::var(NO_SKIP_VAR).is_ok_and(|v| v == "1") {
        panic!("{NO_SKIP_VAR}=1 but {}", line.trim_end());
    }
    // `eprintln!` would be captured by the test harness and shown only on failure.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn missing_data_reason(rel: &str) -> String {
    match shared_data() {
        Some(d) => format!("{} is not there", d.join(rel).display()),
        None => format!(
            "needs the shared test data ({rel}); set {TEST_DATA_VAR} to its directory \
             (.ci/run uses ../shared/data)"
        ),
    }
}

/// The shared data directory, or `None` after saying the test is skipped.
pub fn shared_data_or_skip() -> Option<PathBuf> {
    let d = shared_data();
    if d.is_none() {
        skip(&missing_data_reason("the shared data directory"));
    }
    d
}

/// A file in the shared data, or `None` after saying the test is skipped.
pub fn shared_file_or_skip(rel: &str) -> Option<PathBuf> {
    let f = shared_file(rel);
    if f.is_none() {
        skip(&missing_data_reason(rel));
    }
    f
}

/// The reference Python, or `None` after saying the test is skipped; `needs` says what
/// it must have (e.g. `datatrove 0.10.1 and spaCy`).
pub fn ref_python_or_skip(needs: &str) -> Option<String> {
    let p = ref_python();
    if p.is_none() {
        skip(&format!(
            "set {REF_PYTHON_VAR} to a Python with {needs} (.ci/run installs one)"
        ));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_is_in_the_repository() {
        assert!(demo_data("lid.176.ftz").is_file());
        assert!(demo_data("gpt2-tokenizer.json").is_file());
        assert!(demo_data("HumanEval.jsonl.gz").is_file());
    }

    #[test]
    fn the_test_name_is_the_thread_name() {
        let name = test_name();
        assert_eq!(
            name,
            "primer_testdata tests::the_test_name_is_the_thread_name"
        );
    }
}
