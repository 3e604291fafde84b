//! Running an exercise's tests against its solution: `python3 -I -S` in an empty
//! temporary directory, with an empty environment (no API key, no PYTHONPATH), CPU,
//! memory and file-size limits, no network, and a wall-clock timeout after which the
//! process is killed.
//!
//! No network: the runner first moves itself into new user and network namespaces
//! (`unshare(CLONE_NEWUSER | CLONE_NEWNET)`, where only a loopback that is down exists);
//! where the kernel refuses that, Python's socket constructors are replaced by ones that
//! raise, so the code cannot open a connection by the usual means. Which of the two held is
//! reported by [`Sandbox::probe`] and recorded in the manifest.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::config::ExecConfig;

/// The Python side: limits, namespaces, then the exercise from stdin.
const RUNNER: &str = r#"
import sys, resource
cpu, mem, fsize = (int(a) for a in sys.argv[1:4])
net = "socket-blocked"
try:
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0 or libc.unshare(CLONE_NEWNET) == 0:
        net = "namespace"
except Exception:
    pass
import socket
def _no_network(*args, **kwargs):
    raise OSError("the network is disabled for exercise tests")
socket.socket = _no_network
socket.create_connection = _no_network
socket.socketpair = _no_network
if len(sys.argv) > 4 and sys.argv[4] == "probe":
    print(net)
    sys.exit(0)
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
code = sys.stdin.read()
sys.stdin = open(__import__("os").devnull)
namespace = {"__name__": "__main__", "__builtins__": __builtins__}
exec(compile(code, "exercise.py", "exec"), namespace)
"#;

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunResult {
    Passed,
    /// A test failed or the code raised: the reason and the error's last lines.
    Failed {
        reason: &'static str,
        detail: String,
    },
}

/// Runs exercise tests, a few at a time.
pub struct Sandbox {
    cfg: ExecConfig,
    slots: tokio::sync::Semaphore,
}

impl Sandbox {
    pub fn new(cfg: &ExecConfig) -> Sandbox {
        let parallel = cfg.parallel.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        Sandbox {
            cfg: cfg.clone(),
            slots: tokio::sync::Semaphore::new(parallel.max(1)),
        }
    }

    fn command(&self, dir: &std::path::Path) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.cfg.python);
        c.arg("-I")
            .arg("-S")
            .arg("-c")
            .arg(RUNNER)
            .arg(self.cfg.cpu_secs.max(1).to_string())
            .arg((self.cfg.memory_mb.max(16) << 20).to_string())
            .arg((self.cfg.file_size_mb << 20).to_string())
            .current_dir(dir)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("HOME", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// How the network is kept away here (`namespace` or `socket-blocked`), or why the
    /// Python cannot be run.
    pub async fn probe(&self) -> Result<String, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
        let out = self
            .command(dir.path())
            .arg("probe")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run `{}`: {e}", self.cfg.python))?;
        if !out.status.success() {
            return Err(format!(
                "`{} -I -S` failed: {}",
                self.cfg.python,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Run `solution` then `tests`.
    pub async fn run(&self, solution: &str, tests: &str) -> Result<RunResult, String> {
        let _slot = self.slots.acquire().await.map_err(|e| e.to_string())?;
        let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
        let mut child = self
            .command(dir.path())
            .spawn()
            .map_err(|e| format!("cannot run `{}`: {e}", self.cfg.python))?;
        let program = format!("{solution}\n\n{tests}\n");
        if let Some(mut stdin) = child.stdin.take() {
            // A program that exits early closes its stdin; that is its result, not ours.
            let _ = stdin.write_all(program.as_bytes()).await;
        }
        let timeout = Duration::from_secs_f64(self.cfg.timeout_secs);
        let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(|e| format!("waiting for `{}`: {e}", self.cfg.python))?,
            Err(_) => {
                return Ok(RunResult::Failed {
                    reason: "timeout",
                    detail: format!("still running after {} s; killed", self.cfg.timeout_secs),
                });
            }
        };
        if out.status.success() {
            return Ok(RunResult::Passed);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let last = tail.last().copied().unwrap_or_default();
        let reason = {
            use std::os::unix::process::ExitStatusExt;
            match out.status.signal() {
                Some(24) => "cpu_limit",       // SIGXCPU
                Some(25) => "file_size_limit", // SIGXFSZ
                Some(_) => "crashed",
                None if last.starts_with("AssertionError") => "tests_failed",
                None if last.starts_with("MemoryError") => "memory_limit",
                // Python ignores SIGXFSZ: the write fails with EFBIG instead.
                None if last.contains("[Errno 27] File too large") => "file_size_limit",
                None => "error",
            }
        };
        Ok(RunResult::Failed {
            reason,
            detail: crate::clip(&tail.join("\n"), 600),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(solution: &str, tests: &str, cfg: ExecConfig) -> RunResult {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(Sandbox::new(&cfg).run(solution, tests))
            .unwrap()
    }

    fn quick() -> ExecConfig {
        ExecConfig {
            timeout_secs: 5.0,
            cpu_secs: 2,
            ..ExecConfig::default()
        }
    }

    #[test]
    fn passing_and_failing_tests() {
        let sol = "def double(x):\n    \"\"\"Double.\"\"\"\n    return 2 * x";
        assert_eq!(
            run(sol, "assert double(2) == 4", quick()),
            RunResult::Passed
        );
        match run(sol, "assert double(2) == 5, 'two doubled'", quick()) {
            RunResult::Failed { reason, detail } => {
                assert_eq!(reason, "tests_failed");
                assert!(detail.contains("AssertionError: two doubled"), "{detail}");
            }
            r => panic!("{r:?}"),
        }
        match run("def f(:", "", quick()) {
            RunResult::Failed { reason, detail } => {
                assert_eq!(reason, "error");
                assert!(detail.contains("SyntaxError"), "{detail}");
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn limits_hold() {
        // An endless loop: the CPU limit (2 s) ends it before the timeout (5 s).
        match run("while True:\n    pass", "", quick()) {
            RunResult::Failed { reason, .. } => assert_eq!(reason, "cpu_limit"),
            r => panic!("{r:?}"),
        }
        // Sleeping uses no CPU: the wall-clock timeout kills it.
        let cfg = ExecConfig {
            timeout_secs: 1.0,
            ..quick()
        };
        assert_eq!(
            run("import time\ntime.sleep(30)", "", cfg),
            RunResult::Failed {
                reason: "timeout",
                detail: "still running after 1 s; killed".into()
            }
        );
        match run("x = bytearray(2 * 1024 ** 3)", "", quick()) {
            RunResult::Failed { reason, .. } => assert_eq!(reason, "memory_limit"),
            r => panic!("{r:?}"),
        }
        match run("open('big', 'wb').write(b'x' * (3 << 20))", "", quick()) {
            RunResult::Failed { reason, .. } => assert_eq!(reason, "file_size_limit"),
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn no_network_no_environment_and_an_empty_directory() {
        // SAFETY: a variable only this test reads.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("PRIMER_SANDBOX_SECRET", "hunter2")
        };
        let code = "import os, socket\n\
            assert 'PRIMER_SANDBOX_SECRET' not in os.environ\n\
            assert os.listdir('.') == [], os.listdir('.')\n\
            try:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n    raise SystemExit('connected')\n\
            except OSError:\n    pass\n";
        assert_eq!(run(code, "", quick()), RunResult::Passed);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let how = rt.block_on(Sandbox::new(&quick()).probe()).unwrap();
        eprintln!("network kept away by: {how}");
        assert!(how == "namespace" || how == "socket-blocked", "{how}");
    }
}
