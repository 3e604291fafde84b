use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn primer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_primer"))
}

/// Run `primer` with `args`; return the output (stdout, stderr as text) and the exit code.
pub fn run(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out: Output = primer()
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run primer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run and demand success, returning stderr + stdout.
pub fn run_ok(args: &[&str], cwd: &Path) -> String {
    let (code, stdout, stderr) = run(args, cwd);
    assert_eq!(
        code, 0,
        "primer {args:?} failed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    format!("{stderr}{stdout}")
}

/// A copy of the demo pipeline and its data in a fresh temporary directory.
pub fn demo_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pipelines");
    std::fs::create_dir_all(p.join("demo-data")).unwrap();
    for f in [
        "python-docs.jsonl.zst",
        "python-reference.warc.gz",
        "cpython-stdlib.jsonl.zst",
        "HumanEval.jsonl.gz",
        "lid.176.ftz",
        "gpt2-tokenizer.json",
    ] {
        std::fs::copy(
            repo().join("pipelines/demo-data").join(f),
            p.join("demo-data").join(f),
        )
        .unwrap();
    }
    std::fs::copy(repo().join("pipelines/demo.toml"), p.join("demo.toml")).unwrap();
    dir
}

/// The manifest of a dataset as JSON.
pub fn manifest(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("_manifest.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

/// Every file under `dir` (relative path → bytes), skipping bookkeeping (`_*`) files.
pub fn files_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('_') {
                continue;
            }
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// Decompressed lines of the demo's documentation pages.
pub fn demo_doc_lines() -> Vec<String> {
    let f = std::fs::File::open(repo().join("pipelines/demo-data/python-docs.jsonl.zst")).unwrap();
    let text = std::io::read_to_string(zstd::stream::read::Decoder::new(f).unwrap()).unwrap();
    text.lines().map(str::to_string).collect()
}

/// The finished-task records (`task-N.json`, not the temporary files they are written
/// through) of the stage whose dataset directory is `stage_dir`.
pub fn finished_tasks(stage_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(stage_dir.join("_tasks"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("task-")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Start `primer run p.toml -j 2` in `dir`, wait (at most `timeout`) until the stage in
/// `stage_dir` has recorded `tasks` finished tasks, then `kill -9` it. Returns how many
/// tasks were finished when it died.
pub fn run_and_kill_after(
    dir: &Path,
    stage_dir: &Path,
    tasks: usize,
    timeout: std::time::Duration,
) -> usize {
    let mut child = primer()
        .args(["run", "p.toml", "-j", "2"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + timeout;
    while finished_tasks(stage_dir).len() < tasks && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    finished_tasks(stage_dir).len()
}

/// Requests the scripted OpenAI server answered (not faults, not held).
pub fn answered(server: &primer_fake_openai::Server) -> usize {
    server
        .log()
        .iter()
        .filter(|e| matches!(e.outcome, primer_fake_openai::Outcome::Answered { .. }))
        .count()
}

/// Runs `primer <args>` in `dir` until `server` has answered `after` requests (waiting at
/// most 60 s), then freezes what is in flight, gives the answers already sent `settle` to
/// be committed, and kills the process mid-task; returns how many requests were answered.
pub fn kill_after_answers(
    args: &[&str],
    dir: &Path,
    server: &primer_fake_openai::Server,
    after: usize,
    settle: std::time::Duration,
) -> usize {
    use std::time::{Duration, Instant};
    let mut child = primer()
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered(server) < after && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.hold();
    std::thread::sleep(settle);
    child.kill().unwrap();
    child.wait().unwrap();
    answered(server)
}

/// The demo's outputs under a work directory's parent — its datasets (`demo/`), export
/// and token shards — by path, without bookkeeping files and the report.
pub fn stage_outputs(work: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut all = std::collections::BTreeMap::new();
    for d in ["demo", "demo-export", "demo-shards"] {
        for (k, v) in files_under(&work.join(d)) {
            if k == "report.html" {
                continue;
            }
            // The shards' manifest names the tokenizer by its path, which is in the copy, and
            // its source by fingerprint, which holds the copy's file times.
            let v = if k == "manifest.json" {
                let mut m: serde_json::Value = serde_json::from_slice(&v).unwrap();
                m["tokenizer"]["path"] = serde_json::Value::Null;
                for s in m["sources"].as_array_mut().unwrap() {
                    s["fingerprint"] = serde_json::Value::Null;
                    s["content_id"] = serde_json::Value::Null;
                }
                serde_json::to_vec_pretty(&m).unwrap()
            } else {
                v
            };
            all.insert(format!("{d}/{k}"), v);
        }
    }
    all
}
