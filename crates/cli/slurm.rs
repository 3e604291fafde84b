//! `primer slurm`: the pipeline as Slurm jobs. Each stage is a job array of N elements,
//! element `i` running `primer run FILE --only STAGE --shard i/N` (it does the stage's
//! tasks `t` with `t mod N = i`), then one job running `primer run FILE --only STAGE`,
//! which does what only one process can do once every element is done (a stage's later
//! phases, such as MinHash clustering and shard assembly) and writes the manifest (or finds
//! it written and skips). A stage's array waits (`--dependency=afterok`) for the finishing
//! jobs of its inputs; a last job writes the run report. An element that failed is rerun
//! with the same command and skips the tasks that are done. Storage must be shared by every
//! node (a network file system), as it is for datatrove's and NeMo Curator's Slurm runs.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use primer_pipeline::Pipeline;

/// What every job asks Slurm for, and where things are.
pub struct SlurmOptions {
    /// Array elements per stage (N of `--shard i/N`).
    pub tasks: usize,
    pub partition: Option<String>,
    pub time: Option<String>,
    pub mem: Option<String>,
    pub cpus: Option<usize>,
    /// The primer binary the jobs run (this one, by default).
    pub primer: PathBuf,
    /// The pipeline file, absolute.
    pub file: PathBuf,
    /// `--workdir`, when given to `primer slurm`.
    pub workdir: Option<PathBuf>,
    /// Where job logs go.
    pub log_dir: PathBuf,
}

/// One `sbatch` script.
pub struct Job {
    /// File name of the script.
    pub file: String,
    pub script: String,
    /// Jobs (indices) it waits for.
    pub after: Vec<usize>,
}

/// Single-quote `s` for the shell.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The jobs for `p`, in submission order: per stage an array, then its finishing job;
/// last the report.
pub fn jobs(p: &Pipeline, o: &SlurmOptions) -> Vec<Job> {
    let n = o.tasks.max(1);
    let mut jobs: Vec<Job> = Vec::new();
    let mut finish_of: Vec<(String, usize)> = Vec::new();
    // `primer <command> FILE [--workdir W]`, quoted for the shell.
    let primer = |command: &str| -> String {
        let mut cmd = format!(
            "{} {command} {}",
            sh(&o.primer.display().to_string()),
            sh(&o.file.display().to_string())
        );
        if let Some(w) = &o.workdir {
            let _ = write!(cmd, " --workdir {}", sh(&w.display().to_string()));
        }
        cmd
    };
    let header = |name: &str, array: Option<usize>, log: &str| -> String {
        let mut s = String::from("#!/bin/bash\n");
        let _ = writeln!(s, "#SBATCH --job-name={name}");
        if let Some(n) = array {
            let _ = writeln!(s, "#SBATCH --array=0-{}", n - 1);
        }
        if let Some(x) = &o.partition {
            let _ = writeln!(s, "#SBATCH --partition={x}");
        }
        if let Some(x) = &o.time {
            let _ = writeln!(s, "#SBATCH --time={x}");
        }
        if let Some(x) = &o.mem {
            let _ = writeln!(s, "#SBATCH --mem={x}");
        }
        if let Some(x) = o.cpus {
            let _ = writeln!(s, "#SBATCH --cpus-per-task={x}");
        }
        let _ = writeln!(s, "#SBATCH --output={}", o.log_dir.join(log).display());
        s.push_str("set -euo pipefail\n");
        s
    };
    let threads = " -j \"${SLURM_CPUS_PER_TASK:-1}\"";
    for (k, def) in p.stages.iter().enumerate() {
        let base = format!("{:02}-{}", k, def.id);
        let after: Vec<usize> = def
            .inputs
            .iter()
            .filter_map(|i| finish_of.iter().find(|f| &f.0 == i).map(|f| f.1))
            .collect();
        let name = format!("primer-{}-{}", p.name, def.id);
        let mut array = header(&name, Some(n), &format!("{base}-%A_%a.log"));
        let _ = writeln!(
            array,
            "exec {} --only {} --shard \"$SLURM_ARRAY_TASK_ID/{n}\" --no-report{threads}",
            primer("run"),
            sh(&def.id)
        );
        jobs.push(Job {
            file: format!("{base}.sbatch"),
            script: array,
            after,
        });
        let mut finish = header(
            &format!("{name}-finish"),
            None,
            &format!("{base}-finish-%j.log"),
        );
        let _ = writeln!(
            finish,
            "exec {} --only {} --no-report{threads}",
            primer("run"),
            sh(&def.id)
        );
        jobs.push(Job {
            file: format!("{base}-finish.sbatch"),
            script: finish,
            after: vec![jobs.len() - 1],
        });
        finish_of.push((def.id.clone(), jobs.len() - 1));
    }
    let mut report = header(&format!("primer-{}-report", p.name), None, "report-%j.log");
    let _ = writeln!(report, "exec {}", primer("report"));
    jobs.push(Job {
        file: "report.sbatch".into(),
        script: report,
        after: finish_of.iter().map(|f| f.1).collect(),
    });
    jobs
}

/// The script that submits `jobs` in order with `sbatch --parsable`, passing each job the
/// ids of those it waits for, and prints the ids.
pub fn submit_script(jobs: &[Job]) -> String {
    let mut s = String::from(
        "#!/bin/bash\n# Submits the pipeline's jobs; each waits (afterok) for the jobs it needs.\n\
         set -euo pipefail\ncd \"$(dirname \"$0\")\"\n\
         submit() {\n    local id\n    id=$(sbatch --parsable \"$@\") || { echo \"sbatch $* failed\" >&2; return 1; }\n    echo \"${id%%;*}\"\n}\n",
    );
    for (k, j) in jobs.iter().enumerate() {
        let dep = if j.after.is_empty() {
            String::new()
        } else {
            format!(
                "--dependency=afterok:{} ",
                j.after
                    .iter()
                    .map(|a| format!("$j{a}"))
                    .collect::<Vec<_>>()
                    .join(":")
            )
        };
        let _ = writeln!(s, "j{k}=$(submit {dep}{})", j.file);
        let _ = writeln!(s, "echo \"{}: job $j{k}\"", j.file);
    }
    s
}

/// Write the scripts and `submit.sh` into `dir`; returns the submit script's path.
pub fn write(jobs: &[Job], dir: &Path) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for j in jobs {
        let path = dir.join(&j.file);
        std::fs::write(&path, &j.script).with_context(|| format!("writing {}", path.display()))?;
    }
    let submit = dir.join("submit.sh");
    std::fs::write(&submit, submit_script(jobs))
        .with_context(|| format!("writing {}", submit.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in jobs
            .iter()
            .map(|j| dir.join(&j.file))
            .chain([submit.clone()])
        {
            let _ = std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755));
        }
    }
    Ok(submit)
}
