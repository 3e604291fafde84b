//! The demo with every dataset, input and output in object storage: a real S3-compatible
//! server on loopback (moto's, which `.ci/run` starts and names in
//! `PRIMER_TEST_S3_ENDPOINT`). The stored outputs equal a run on local disk byte for
//! byte, and a run killed in the middle is completed by a rerun on another machine (a
//! fresh staging directory), which skips and resumes from what the store holds.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::util::{demo_copy, primer, run_ok, stage_outputs};

const ENDPOINT_VAR: &str = "PRIMER_TEST_S3_ENDPOINT";

fn endpoint_or_skip() -> Option<String> {
    let e = std::env::var(ENDPOINT_VAR).ok().filter(|e| !e.is_empty());
    if e.is_none() {
        primer_testdata::skip(&format!(
            "set {ENDPOINT_VAR} to an S3-compatible server on loopback (.ci/run starts moto's)"
        ));
    }
    e
}

/// Create `bucket` with S3's CreateBucket (`PUT /bucket`), which moto takes unsigned.
fn create_bucket(endpoint: &str, bucket: &str) {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "CreateBucket: {reply}");
}

fn client(endpoint: &str, bucket: &str) -> primer_store::Bucket {
    primer_store::connect(
        bucket,
        &[
            ("aws_endpoint", endpoint),
            ("aws_access_key_id", "primer-test"),
            ("aws_secret_access_key", "primer-test"),
            ("aws_region", "us-east-1"),
            ("aws_allow_http", "true"),
        ],
    )
    .unwrap()
}

/// The environment of a primer process that uses the store, staging in `staging`.
fn env(endpoint: &str, staging: &Path) -> Vec<(&'static str, OsString)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.into()),
        ("AWS_ACCESS_KEY_ID", "primer-test".into()),
        ("AWS_SECRET_ACCESS_KEY", "primer-test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("PRIMER_STAGING_DIR", staging.into()),
    ]
}

fn run_with(dir: &Path, envs: &[(&str, OsString)], args: &[&str]) -> String {
    let out = primer()
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().map(|(k, v)| (*k, v)))
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.status.success(), "primer {args:?} failed:\n{log}");
    log
}

/// The demo's outputs as stored (see `stage_outputs`).
fn stored_outputs(b: &primer_store::Bucket) -> BTreeMap<String, Vec<u8>> {
    let into = tempfile::tempdir().unwrap();
    for prefix in ["demo", "demo-export", "demo-shards"] {
        for obj in b.list(prefix).unwrap() {
            b.download(&obj.key, &into.path().join(&obj.key)).unwrap();
        }
    }
    stage_outputs(into.path())
}

fn assert_same(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, what: &str) {
    let keys = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(got), keys(want), "{what}: different files");
    for (k, v) in want {
        assert!(got[k] == *v, "{k} differs between {what} and local disk");
    }
}

/// A new bucket on the test server, and a client for it.
fn new_bucket(endpoint: &str, name: &str) -> (String, primer_store::Bucket) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let bucket = format!("primer-{name}-{}-{nanos}", std::process::id());
    create_bucket(endpoint, &bucket);
    let store = client(endpoint, &bucket);
    (bucket, store)
}

/// The demo's outputs on local disk from one process with one thread (the sql stage's
/// part layout follows the threads, and each Slurm job here has one).
fn local_demo_outputs() -> BTreeMap<String, Vec<u8>> {
    let local = demo_copy();
    run_ok(
        &["run", "pipelines/demo.toml", "--no-report", "-j", "1"],
        local.path(),
    );
    let want = stage_outputs(&local.path().join("work"));
    assert!(want.len() > 30, "{:?}", want.keys());
    want
}

#[test]
fn the_demo_on_s3_equals_local_disk_and_a_killed_run_completes_elsewhere() {
    let Some(endpoint) = endpoint_or_skip() else {
        return;
    };
    let (bucket, store) = new_bucket(&endpoint, "demo");
    let want = local_demo_outputs();

    let copy = demo_copy();
    demo_on_store(copy.path(), &store, &bucket);
    let run_args = ["run", "pipelines/demo.toml", "--no-report", "-j", "1"];

    // Machine A: killed (SIGKILL) once the exact-dedupe stage has stored a task.
    let staging_a = tempfile::tempdir().unwrap();
    let log_a = staging_a.path().join("run.log");
    let mut child = primer()
        .args(run_args)
        .current_dir(copy.path())
        .envs(env(&endpoint, staging_a.path()))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_a).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    let stored_tasks = |stage: &str| store.list(&format!("demo/{stage}/_tasks")).unwrap().len();
    while stored_tasks("exact") == 0 && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let exact_done = stored_tasks("exact");
    let has = |key: &str| store.get(key).unwrap().is_some();
    let log = std::fs::read_to_string(&log_a).unwrap();
    assert!(
        exact_done > 0,
        "no exact-dedupe task was stored in 5 minutes:\n{log}"
    );
    assert!(
        !has("demo/tokens/_manifest.json"),
        "the run ended before it was killed"
    );
    assert!(has("demo/mix/_manifest.json"));
    // Nothing local-only went up; the scratch files a phase hands on did (under the
    // fingerprint), for the machine that resumes.
    let stored = store.list("demo").unwrap();
    for obj in &stored {
        for local_only in ["_running.json", "_lock"] {
            assert!(!obj.key.contains(local_only), "{} was stored", obj.key);
        }
    }
    assert!(
        stored.iter().any(|o| o.key.contains("/exact/_scratch/")),
        "the exact-dedupe stage's scratch files are not in the store"
    );

    // Machine B, with nothing staged: skips what the store has complete, resumes the
    // stage that was cut off, and completes the run.
    let staging_b = tempfile::tempdir().unwrap();
    let log = run_with(copy.path(), &env(&endpoint, staging_b.path()), &run_args);
    assert!(
        log.contains("[1/14] docs (read): skipped, up to date"),
        "{log}"
    );
    assert!(
        log.contains("[9/14] mix (sql): skipped, up to date"),
        "{log}"
    );
    if !has_manifest_before(&log, "exact") {
        let m: serde_json::Value =
            serde_json::from_slice(&store.get("demo/exact/_manifest.json").unwrap().unwrap())
                .unwrap();
        let tasks = m["tasks"].as_u64().unwrap();
        assert!(exact_done < tasks as usize);
        assert!(
            log.contains(&format!(
                "[10/14] exact (exact_dedupe): resuming: {exact_done} of {tasks} tasks are done"
            )),
            "{log}"
        );
    }
    assert!(log.contains("[14/14] tokens (tokenize): done"), "{log}");

    // What the store holds equals the local run, byte for byte.
    assert_same(&stored_outputs(&store), &want, "the store");
    for stage in ["docs", "quality", "near", "tokens"] {
        assert!(has(&format!("demo/{stage}/_manifest.json")), "{stage}");
    }
    // A completed stage keeps no scratch files in the store.
    let left: Vec<String> = store
        .list("demo")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.contains("_scratch"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(has("demo-shards/manifest.json"));

    // Machine C: everything is up to date, and the report is stored beside the datasets.
    let staging_c = tempfile::tempdir().unwrap();
    let log = run_with(
        copy.path(),
        &env(&endpoint, staging_c.path()),
        &["run", "pipelines/demo.toml", "-j", "1"],
    );
    assert_eq!(log.matches("skipped, up to date").count(), 14, "{log}");
    // Finding the stages complete fetched no input file (the report then read the
    // datasets, so their parts are here).
    let staged = staging_c.path().join(format!("s3/{bucket}"));
    assert!(!staged.join("inputs").exists());
    assert!(
        log.contains(&format!("report: s3://{bucket}/demo/report.html")),
        "{log}"
    );
    let report = String::from_utf8(store.get("demo/report.html").unwrap().unwrap()).unwrap();
    assert!(report.contains("near"), "the stored report names no stage");

    // Machine D: `--force near` rebuilds every task of the two-phase MinHash stage; none
    // of the stored records of the run it replaces is taken for done.
    let records = || store.list("demo/near/_tasks").unwrap();
    let before = records().iter().map(|o| o.modified).max().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let staging_d = tempfile::tempdir().unwrap();
    let log = run_with(
        copy.path(),
        &env(&endpoint, staging_d.path()),
        &[
            "run",
            "pipelines/demo.toml",
            "-j",
            "1",
            "--no-report",
            "--force",
            "near",
        ],
    );
    assert!(log.contains("near (minhash_dedupe): running"), "{log}");
    let stale: Vec<String> = records()
        .into_iter()
        .filter(|o| o.modified <= before)
        .map(|o| o.key)
        .collect();
    assert!(stale.is_empty(), "not rebuilt: {stale:?}\n{log}");
    assert_same(
        &stored_outputs(&store),
        &want,
        "the store after --force near",
    );
}

/// Make the demo copy in `dir` use the store for everything: its inputs are uploaded and
/// removed from the copy, and the pipeline names the store for them, its work directory,
/// the export and the shards.
fn demo_on_store(dir: &Path, store: &primer_store::Bucket, bucket: &str) {
    let data = dir.join("pipelines/demo-data");
    for f in [
        "python-docs.jsonl.zst",
        "cpython-stdlib.jsonl.zst",
        "python-reference.warc.gz",
    ] {
        store.upload(&data.join(f), &format!("inputs/{f}")).unwrap();
        std::fs::remove_file(data.join(f)).unwrap();
    }
    let toml_path = dir.join("pipelines/demo.toml");
    let mut toml = std::fs::read_to_string(&toml_path).unwrap();
    for (from, to) in [
        (
            "workdir = \"../work/demo\"",
            format!("workdir = \"s3://{bucket}/demo\""),
        ),
        // A glob, matched against the store's keys.
        (
            "\"demo-data/python-docs.jsonl.zst\"",
            format!("\"s3://{bucket}/inputs/python-*.jsonl.zst\""),
        ),
        (
            "\"demo-data/cpython-stdlib.jsonl.zst\"",
            format!("\"s3://{bucket}/inputs/cpython-stdlib.jsonl.zst\""),
        ),
        (
            "\"demo-data/python-reference.warc.gz\"",
            format!("\"s3://{bucket}/inputs/python-reference.warc.gz\""),
        ),
        (
            "\"../work/demo-export\"",
            format!("\"s3://{bucket}/demo-export\""),
        ),
        (
            "\"../work/demo-shards\"",
            format!("\"s3://{bucket}/demo-shards\""),
        ),
    ] {
        assert!(toml.contains(from), "the demo no longer has {from}");
        toml = toml.replace(from, &to);
    }
    std::fs::write(&toml_path, toml).unwrap();
}

/// Whether the log's run found `stage`'s dataset complete in the store already.
fn has_manifest_before(log: &str, stage: &str) -> bool {
    log.lines()
        .any(|l| l.contains(&format!(" {stage} (")) && l.contains("skipped, up to date"))
}

/// `primer slurm` with the work directory in the store and every job and array element
/// staging in a directory of its own, as on separate nodes sharing only the store: three
/// shards per stage at the same time, then the finishing jobs, give the bytes of one
/// process on local disk.
#[test]
fn slurm_jobs_sharing_only_the_store_equal_one_process() {
    let Some(endpoint) = endpoint_or_skip() else {
        return;
    };
    let (bucket, store) = new_bucket(&endpoint, "slurm");
    let want = local_demo_outputs();
    let dir = demo_copy();
    demo_on_store(dir.path(), &store, &bucket);
    let (fake_dir, path) = super::slurm::install_fake_sbatch(dir.path());
    let submitter_staging = dir.path().join("submitter");
    let mut envs = env(&endpoint, &submitter_staging);
    envs.push(("PATH", path.into()));
    envs.push(("FAKE_SLURM_DIR", fake_dir.clone().into()));
    envs.push(("FAKE_SLURM_NODES", "1".into()));
    let envs: Vec<(&str, &std::ffi::OsStr)> =
        envs.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    super::slurm::slurm_submit(dir.path(), 3, &envs);
    let arrays = std::fs::read_to_string(fake_dir.join("arrays")).unwrap();
    assert_eq!(arrays.lines().count(), 14, "{arrays}");
    // 14 arrays of 3, 14 finishing jobs and the report job: 57 staging directories.
    let nodes = std::fs::read_dir(&fake_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("node-")
        })
        .count();
    assert_eq!(nodes, 57);
    assert_same(&stored_outputs(&store), &want, "the store after Slurm jobs");
    // The elements of `redact`'s array (stage 7: job 15, ids count from 1, an array and a
    // finishing job per stage) read `quality`'s parts, one task per part: each part came
    // down to the one element whose task reads it, not to all three.
    let quality: serde_json::Value =
        serde_json::from_slice(&store.get("demo/quality/_manifest.json").unwrap().unwrap())
            .unwrap();
    let parts = quality["parts"].as_array().unwrap().len();
    let fetched: Vec<usize> = (0..3)
        .map(|i| {
            let d = fake_dir.join(format!("node-15-{i}/s3/{bucket}/demo/quality"));
            std::fs::read_dir(&d).map_or(0, |d| {
                d.filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    let name = name.to_string_lossy();
                    name.starts_with("part-") && name.ends_with(".parquet")
                })
                .count()
            })
        })
        .collect();
    assert_eq!(fetched.iter().sum::<usize>(), parts, "{fetched:?}");
    assert!(
        fetched.iter().all(|&n| n <= parts.div_ceil(3)),
        "{fetched:?}"
    );
    // Input files likewise: `docs` (job 1) reads one file, in its one task.
    let inputs: Vec<bool> = (0..3)
        .map(|i| {
            fake_dir
                .join(format!(
                    "node-1-{i}/s3/{bucket}/inputs/python-docs.jsonl.zst"
                ))
                .exists()
        })
        .collect();
    assert_eq!(inputs, [true, false, false]);
    assert!(store.get("demo/report.html").unwrap().is_some());
}

/// Mistakes about the store get a clear message naming the location, and nothing runs.
#[test]
fn a_missing_bucket_or_object_and_a_bad_location_are_named() {
    let Some(endpoint) = endpoint_or_skip() else {
        return;
    };
    let (bucket, store) = new_bucket(&endpoint, "errors");
    let dir = demo_copy();
    demo_on_store(dir.path(), &store, &bucket);
    let staging = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = primer()
            .args(args)
            .current_dir(dir.path())
            .envs(env(&endpoint, staging.path()))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let toml = dir.path().join("pipelines/demo.toml");
    let text = std::fs::read_to_string(&toml).unwrap();

    // A glob that matches no object.
    let missing = format!("s3://{bucket}/inputs/cpython-*.parquet");
    std::fs::write(
        &toml,
        text.replace(
            &format!("s3://{bucket}/inputs/cpython-stdlib.jsonl.zst"),
            &missing,
        ),
    )
    .unwrap();
    let (code, err) = run(&["run", "pipelines/demo.toml"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("`{missing}` matches no object")),
        "{err}"
    );

    // A work directory in a bucket that does not exist.
    std::fs::write(&toml, &text).unwrap();
    let (code, err) = run(&[
        "run",
        "pipelines/demo.toml",
        "--workdir",
        "s3://primer-no-such-bucket/demo",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("s3://primer-no-such-bucket/demo/"), "{err}");
    assert!(err.contains("NoSuchBucket"), "{err}");

    // Not a location at all.
    let (code, err) = run(&["run", "pipelines/demo.toml", "--workdir", "s3:///demo"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("write an s3:// location as s3://bucket/prefix"),
        "{err}"
    );
}

/// The quality loop with its work directory in the store: a second machine rebuilds the
/// annotations from the LLM cache stored beside them (no request is paid twice) and
/// scores with the classifier model stored in the classifier's dataset.
#[test]
fn another_machine_reuses_the_stored_llm_cache_and_classifier_model() {
    let Some(endpoint) = endpoint_or_skip() else {
        return;
    };
    let (bucket, store) = new_bucket(&endpoint, "quality");
    let server = primer_fake_openai::Server::start(primer_fake_openai::Config {
        responder: std::sync::Arc::new(super::quality::rater),
        ..Default::default()
    });
    let (_tmp, dir) = super::quality::recipe_copy("web-edu.toml");
    let toml = dir.join("web-edu.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let from = "workdir = \"../work/web-edu\"";
    assert!(text.contains(from));
    std::fs::write(
        &toml,
        text.replace(from, &format!("workdir = \"s3://{bucket}/web-edu\"")),
    )
    .unwrap();
    let url = server.base_url();
    let run = |staging: &Path, args: &[&str]| {
        let mut envs = env(&endpoint, staging);
        envs.push(("PRIMER_LLM_BASE_URL", url.clone().into()));
        envs.push(("PRIMER_LLM_MODEL", "fake-rater".into()));
        run_with(&dir, &envs, args)
    };
    let a = tempfile::tempdir().unwrap();
    run(a.path(), &["run", "web-edu.toml", "--no-report"]);
    let paid = super::util::answered(&server);
    assert!(paid > 10, "{paid} requests");
    assert!(
        !store.list("web-edu/rated/_cache").unwrap().is_empty(),
        "the LLM cache was not stored"
    );
    assert!(store.get("web-edu/classifier/model.bin").unwrap().is_some());
    let kept = |s: &primer_store::Bucket| -> serde_json::Value {
        serde_json::from_slice(
            &s.get("web-edu/educational/_manifest.json")
                .unwrap()
                .unwrap(),
        )
        .unwrap()
    };
    let first = kept(&store);

    let b = tempfile::tempdir().unwrap();
    let log = run(
        b.path(),
        &[
            "run",
            "web-edu.toml",
            "--no-report",
            "--force",
            "rated",
            "--force",
            "educational",
        ],
    );
    assert!(log.contains("rated (annotate): done"), "{log}");
    assert!(log.contains("educational (score): done"), "{log}");
    assert_eq!(
        super::util::answered(&server),
        paid,
        "the second machine paid for answers the store had:\n{log}"
    );
    let second = kept(&store);
    assert_eq!(first["rows"], second["rows"]);
    assert_eq!(first["parts"], second["parts"]);
}
