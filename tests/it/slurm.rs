//! `primer slurm`: the scripts it writes, and the demo run through them as separate
//! processes — every element of a stage's array at the same time, as a cluster would run
//! them — giving the same bytes as one `primer run`.

use std::path::Path;

use super::util::{demo_copy, run_ok, stage_outputs};

#[test]
fn dry_run_prints_an_array_and_a_finishing_job_per_stage_chained_by_inputs() {
    let dir = demo_copy();
    let out = run_ok(
        &[
            "slurm",
            "pipelines/demo.toml",
            "--tasks",
            "4",
            "--dry-run",
            "--partition",
            "cpu",
            "--time",
            "1:00:00",
            "--mem",
            "4G",
            "--cpus-per-task",
            "2",
        ],
        dir.path(),
    );
    assert!(!dir.path().join("work").exists(), "a dry run wrote files");
    assert_eq!(out.matches("#SBATCH --array=0-3\n").count(), 14);
    assert_eq!(out.matches("#SBATCH --partition=cpu\n").count(), 29);
    assert_eq!(out.matches("#SBATCH --time=1:00:00\n").count(), 29);
    assert_eq!(out.matches("#SBATCH --mem=4G\n").count(), 29);
    assert_eq!(out.matches("#SBATCH --cpus-per-task=2\n").count(), 29);
    let file = dir.path().join("pipelines/demo.toml");
    assert!(out.contains(&format!(
        " run '{}' --only 'near' --shard \"$SLURM_ARRAY_TASK_ID/4\" --no-report -j \"${{SLURM_CPUS_PER_TASK:-1}}\"",
        file.display()
    )));
    assert!(out.contains(&format!(
        " run '{}' --only 'near' --no-report -j",
        file.display()
    )));
    assert!(out.contains(&format!(" report '{}'\n", file.display())));
    // Stage k's array is job 2k, its finishing job 2k+1. `web` (stage 4) waits for the
    // finishing jobs of `docs` (0) and `pages` (3); `mix` (8) for `redact` (7) and `code` (1);
    // the report for every stage.
    assert!(out.contains("j8=$(submit --dependency=afterok:$j1:$j7 04-web.sbatch)"));
    assert!(out.contains("j9=$(submit --dependency=afterok:$j8 04-web-finish.sbatch)"));
    assert!(out.contains("j16=$(submit --dependency=afterok:$j15:$j3 08-mix.sbatch)"));
    assert!(out.contains("j0=$(submit 00-docs.sbatch)"));
    assert!(out.contains(
        "j28=$(submit --dependency=afterok:$j1:$j3:$j5:$j7:$j9:$j11:$j13:$j15:$j17:$j19:$j21:$j23:$j25:$j27 report.sbatch)"
    ));
}

/// A stand-in for `sbatch` on one machine: it runs the job at once and prints an id. The
/// elements of an array run as separate processes at the same time; it fails when one does.
/// With `FAKE_SLURM_NODES` set, every job and array element stages object storage in a
/// directory of its own, as on a node of its own.
const FAKE_SBATCH: &str = r#"#!/bin/bash
set -u
script="${@: -1}"
id=$(( $(cat "$FAKE_SLURM_DIR/counter" 2>/dev/null || echo 0) + 1 ))
echo "$id" > "$FAKE_SLURM_DIR/counter"
echo "$*" >> "$FAKE_SLURM_DIR/submitted"
range=$(grep -m1 '^#SBATCH --array=' "$script" | sed 's/.*=//')
if [ -n "$range" ]; then
    pids=()
    for i in $(seq "${range%-*}" "${range#*-}"); do
        SLURM_ARRAY_TASK_ID=$i SLURM_CPUS_PER_TASK=1 \
            env ${FAKE_SLURM_NODES:+PRIMER_STAGING_DIR=$FAKE_SLURM_DIR/node-$id-$i} \
            bash "$script" > "$FAKE_SLURM_DIR/$id-$i.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do
        wait "$p" || { echo "element of $script failed" >&2; exit 1; }
    done
    # How many ran at once: each element's log is there.
    echo "$script ${#pids[@]}" >> "$FAKE_SLURM_DIR/arrays"
else
    SLURM_CPUS_PER_TASK=1 env ${FAKE_SLURM_NODES:+PRIMER_STAGING_DIR=$FAKE_SLURM_DIR/node-$id} \
        bash "$script" > "$FAKE_SLURM_DIR/$id.log" 2>&1 \
        || { echo "$script failed" >&2; exit 1; }
fi
echo "$id"
"#;

/// Put [`FAKE_SBATCH`] on a `PATH` in `dir`; returns the directory it logs to
/// (`FAKE_SLURM_DIR`) and the `PATH` to run with.
pub(super) fn install_fake_sbatch(dir: &Path) -> (std::path::PathBuf, String) {
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sbatch = bin.join("sbatch");
    std::fs::write(&sbatch, FAKE_SBATCH).unwrap();
    std::process::Command::new("chmod")
        .args(["+x", sbatch.to_str().unwrap()])
        .status()
        .unwrap();
    let fake_dir = dir.join("fake-slurm");
    std::fs::create_dir_all(&fake_dir).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (fake_dir, path)
}

/// `primer slurm pipelines/demo.toml --tasks N --dir jobs` in `dir` with `env`; its output,
/// after checking it succeeded.
pub(super) fn slurm_submit(dir: &Path, n: usize, env: &[(&str, &std::ffi::OsStr)]) -> String {
    let out = super::util::primer()
        .args([
            "slurm",
            "pipelines/demo.toml",
            "--tasks",
            &n.to_string(),
            "--dir",
            "jobs",
        ])
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "N={n}: {log}");
    log
}

#[test]
fn the_demo_through_slurm_scripts_equals_one_process_for_1_3_and_8_tasks() {
    // The jobs run one thread each (SLURM_CPUS_PER_TASK=1), and a stage's task count may
    // follow its threads (the sql stage's partitions), so the one process does too.
    let one = demo_copy();
    run_ok(
        &["run", "pipelines/demo.toml", "--no-report", "-j", "1"],
        one.path(),
    );
    let want = stage_outputs(&one.path().join("work"));
    assert!(want.len() > 20);
    for n in [1usize, 3, 8] {
        let dir = demo_copy();
        let (fake_dir, path) = install_fake_sbatch(dir.path());
        slurm_submit(
            dir.path(),
            n,
            &[
                ("PATH", std::ffi::OsStr::new(&path)),
                ("FAKE_SLURM_DIR", fake_dir.as_os_str()),
            ],
        );
        let arrays = std::fs::read_to_string(fake_dir.join("arrays")).unwrap();
        assert_eq!(arrays.lines().count(), 14, "{arrays}");
        assert!(
            arrays.lines().all(|l| l.ends_with(&format!(" {n}"))),
            "{arrays}"
        );
        let got = stage_outputs(&dir.path().join("work"));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "N={n}: different files"
        );
        for (k, v) in &want {
            assert!(
                got[k] == *v,
                "N={n}: {k} differs from one process's{}",
                if k.ends_with(".json") {
                    format!(
                        ":\n{}\nwant:\n{}",
                        String::from_utf8_lossy(&got[k]),
                        String::from_utf8_lossy(v)
                    )
                } else {
                    String::new()
                }
            );
        }
        assert!(dir.path().join("work/demo/report.html").exists());
        // Every stage is complete: a plain run skips them all.
        let again = run_ok(&["run", "pipelines/demo.toml", "--no-report"], dir.path());
        assert_eq!(again.matches("skipped, up to date").count(), 14, "{again}");
    }
}

/// The demo submitted for real to a one-node Slurm cluster (`.ci/slurm-up` starts one from
/// Debian's slurm-wlm and munge and `.ci/run` names its configuration in
/// `PRIMER_TEST_SLURM_CONF`): every job ends, and the outputs equal one process's.
#[test]
fn the_demo_runs_on_a_real_slurm_cluster() {
    let Some(conf) = std::env::var_os("PRIMER_TEST_SLURM_CONF").filter(|c| !c.is_empty()) else {
        primer_testdata::skip(
            "set PRIMER_TEST_SLURM_CONF to a running Slurm cluster's slurm.conf (.ci/run starts one with .ci/slurm-up)",
        );
        return;
    };
    let one = demo_copy();
    run_ok(
        &["run", "pipelines/demo.toml", "--no-report", "-j", "1"],
        one.path(),
    );
    let want = stage_outputs(&one.path().join("work"));

    let dir = demo_copy();
    let log = slurm_submit(dir.path(), 2, &[("SLURM_CONF", conf.as_os_str())]);
    let ids: Vec<String> = log
        .lines()
        .filter_map(|l| l.split_once(": job ").map(|x| x.1.trim().to_string()))
        .collect();
    assert_eq!(ids.len(), 29, "{log}");
    // Wait for every job to leave the queue: at most 10 minutes, polling twice a second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let q = std::process::Command::new("squeue")
            .args(["-h", "-o", "%i %T %r", "-j", &ids.join(",")])
            .env("SLURM_CONF", &conf)
            .output()
            .unwrap();
        let q = String::from_utf8_lossy(&q.stdout).into_owned();
        if q.trim().is_empty() {
            break;
        }
        let logs = || {
            let mut s = String::new();
            for e in std::fs::read_dir(dir.path().join("jobs/logs")).unwrap() {
                let p = e.unwrap().path();
                s.push_str(&format!(
                    "== {}\n{}\n",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                ));
            }
            s
        };
        assert!(
            !q.contains("DependencyNeverSatisfied"),
            "a job failed:\n{q}\n{}",
            logs()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "jobs still queued after 10 minutes:\n{q}\n{}",
            logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let got = stage_outputs(&dir.path().join("work"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, v) in &want {
        assert!(got[k] == *v, "{k} differs from one process's");
    }
    assert!(dir.path().join("work/demo/report.html").exists());
    // Each stage's array had two elements, each with its log.
    let logs = std::fs::read_dir(dir.path().join("jobs/logs"))
        .unwrap()
        .count();
    assert_eq!(logs, 14 * 2 + 14 + 1);
}
