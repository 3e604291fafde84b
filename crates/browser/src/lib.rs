//! Headless Chromium for primer's tests and benchmarks: open a page and learn what it
//! logged (console messages, exceptions, errors), what it requested from the network,
//! whether it opened a dialog, how long it took to load and paint, what a script reads off
//! its DOM, and what it looks like (a PNG).
//!
//! Chromium is driven over the DevTools protocol on `--remote-debugging-pipe`: JSON messages
//! ended by NUL on file descriptors 3 (commands) and 4 (replies and events). The pipe ends are
//! two FIFOs a shell hands the browser as those descriptors, so no WebSocket client and no
//! port are needed. Every wait is bounded.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long any one reply or page load may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Where Chromium is: `PRIMER_CHROMIUM` (set and empty: none), else `chromium` (Debian's
/// package) or `chromium-browser` or `google-chrome` on the PATH.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PRIMER_CHROMIUM") {
        return (!p.is_empty()).then(|| PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Chromium, or `None` after saying the running test is skipped (see
/// `primer_testdata::skip`).
pub fn chromium_or_skip() -> Option<PathBuf> {
    let c = find_chromium();
    if c.is_none() {
        primer_testdata::skip(
            "no Chromium: install Debian's chromium (.ci/run does) or set PRIMER_CHROMIUM to a Chromium binary",
        );
    }
    c
}

/// What opening a page showed.
#[derive(Debug, Clone, Default)]
pub struct PageLoad {
    /// Milliseconds from the navigation's start to the load event, as the page measured.
    pub load_ms: f64,
    /// Milliseconds from the navigation's start to two animation frames after load (the
    /// page laid out and painted).
    pub painted_ms: f64,
    /// Console errors and warnings, uncaught exceptions and browser log errors (CSP
    /// violations, failed loads), as text.
    pub console: Vec<String>,
    /// URLs the page requested other than itself.
    pub requests: Vec<String>,
    /// Messages of dialogs (`alert`, `confirm`, `prompt`) the page opened; each is dismissed.
    pub dialogs: Vec<String>,
}

/// One headless Chromium with one page, closed when dropped.
pub struct Browser {
    child: Child,
    commands: File,
    replies: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Events that arrived while waiting for a reply, in order.
    pending: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start `chromium` headless with a fresh profile, no network of its own (background
    /// networking, updates and sync off) and one blank page attached.
    pub fn launch(chromium: &Path) -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| format!("a profile directory: {e}"))?;
        let to_browser = profile.path().join("cdp-in");
        let from_browser = profile.path().join("cdp-out");
        for f in [&to_browser, &from_browser] {
            let st = Command::new("mkfifo")
                .arg(f)
                .status()
                .map_err(|e| format!("mkfifo: {e}"))?;
            if !st.success() {
                return Err(format!("mkfifo {} failed", f.display()));
            }
        }
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<"$PRIMER_CDP_IN" 4>"$PRIMER_CDP_OUT""#)
            .arg(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--hide-scrollbars",
                "--mute-audio",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .env("PRIMER_CDP_IN", &to_browser)
            .env("PRIMER_CDP_OUT", &from_browser)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", chromium.display()))?;
        // The shell opens both FIFOs before it becomes Chromium; opening our ends waits for
        // that, so it happens on a thread with a deadline.
        let (tx, rx) = channel();
        let (a, b) = (to_browser.clone(), from_browser.clone());
        std::thread::spawn(move || {
            let r = (|| -> std::io::Result<(File, File)> {
                let w = std::fs::OpenOptions::new().write(true).open(&a)?;
                let r = File::open(&b)?;
                Ok((w, r))
            })();
            let _ = tx.send(r);
        });
        let (commands, from) = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(format!("opening the DevTools pipe: {e}")),
            Err(_) => return Err("Chromium did not open the DevTools pipe in 20 s".into()),
        };
        let (tx, replies) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(from);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            child,
            commands,
            replies,
            next_id: 0,
            session: String::new(),
            pending: Vec::new(),
            _profile: profile,
        };
        let target = b.call(None, "Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"].as_str().unwrap_or_default().to_string();
        let attached = b.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        b.session = attached["sessionId"]
            .as_str()
            .ok_or("Target.attachToTarget gave no sessionId")?
            .to_string();
        for domain in ["Page", "Runtime", "Log", "Network"] {
            b.page(&format!("{domain}.enable"), json!({}))?;
        }
        Ok(b)
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<u64, String> {
        self.next_id += 1;
        let mut msg = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .and_then(|_| self.commands.flush())
            .map_err(|e| format!("writing {method} to Chromium: {e}"))?;
        Ok(self.next_id)
    }

    /// The next message, keeping dialogs from blocking the page.
    fn recv(&mut self, deadline: Instant, what: &str) -> Result<Value, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = match self.replies.recv_timeout(left) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => return Err(format!("Chromium: no {what} in time")),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(format!("Chromium exited while waiting for {what}"));
            }
        };
        if v["method"] == "Page.javascriptDialogOpening" {
            let s = self.session.clone();
            self.send(
                Some(&s),
                "Page.handleJavaScriptDialog",
                json!({"accept": false}),
            )?;
        }
        Ok(v)
    }

    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.send(session, method, params)?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let v = self.recv(deadline, &format!("reply to {method}"))?;
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(v["result"].clone());
            }
            if v.get("method").is_some() {
                self.pending.push(v);
            }
        }
    }

    /// A command to the page.
    pub fn page(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let s = self.session.clone();
        self.call(Some(&s), method, params)
    }

    /// Set the viewport (CSS pixels).
    pub fn viewport(&mut self, width: u32, height: u32) -> Result<(), String> {
        self.page(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        Ok(())
    }

    /// Navigate to `url`, wait for its load event and two frames, and say what happened.
    pub fn open(&mut self, url: &str) -> Result<PageLoad, String> {
        self.pending.clear();
        self.page("Page.navigate", json!({"url": url}))?;
        let deadline = Instant::now() + TIMEOUT;
        let mut events = std::mem::take(&mut self.pending);
        while !events.iter().any(|e| e["method"] == "Page.loadEventFired") {
            let v = self.recv(deadline, &format!("load event of {url}"))?;
            if v.get("method").is_some() {
                events.push(v);
            }
        }
        let timing = self.eval(
            "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => {\
               const n = performance.getEntriesByType('navigation')[0];\
               r([n ? n.loadEventStart : -1, performance.now()]);\
             })))",
        )?;
        events.append(&mut self.pending);
        // Late events (a failed load, a CSP report) arrive within a moment.
        let settle = Instant::now() + Duration::from_millis(200);
        while let Ok(v) = self.recv(settle, "late events") {
            if v.get("method").is_some() {
                events.push(v);
            }
        }
        let mut load = PageLoad {
            load_ms: timing[0].as_f64().unwrap_or(-1.0),
            painted_ms: timing[1].as_f64().unwrap_or(-1.0),
            ..Default::default()
        };
        for e in events {
            if e["sessionId"].as_str() != Some(self.session.as_str()) {
                continue;
            }
            let p = &e["params"];
            match e["method"].as_str().unwrap_or_default() {
                "Runtime.consoleAPICalled" => {
                    let ty = p["type"].as_str().unwrap_or_default();
                    if matches!(ty, "error" | "warning" | "assert") {
                        let args: Vec<String> = p["args"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|a| {
                                a["value"]
                                    .as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| a["description"].to_string())
                            })
                            .collect();
                        load.console
                            .push(format!("console.{ty}: {}", args.join(" ")));
                    }
                }
                "Runtime.exceptionThrown" => load.console.push(format!(
                    "exception: {}",
                    p["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .or(p["exceptionDetails"]["text"].as_str())
                        .unwrap_or_default()
                )),
                "Log.entryAdded" => {
                    let level = p["entry"]["level"].as_str().unwrap_or_default();
                    if matches!(level, "error" | "warning") {
                        load.console.push(format!(
                            "log {level}: {} {}",
                            p["entry"]["text"].as_str().unwrap_or_default(),
                            p["entry"]["url"].as_str().unwrap_or_default()
                        ));
                    }
                }
                "Network.requestWillBeSent" => {
                    let u = p["request"]["url"].as_str().unwrap_or_default();
                    if u != url {
                        load.requests.push(u.to_string());
                    }
                }
                "Page.javascriptDialogOpening" => load
                    .dialogs
                    .push(p["message"].as_str().unwrap_or_default().to_string()),
                _ => {}
            }
        }
        Ok(load)
    }

    /// Evaluate `js` in the page (promises awaited) and return its value as JSON.
    pub fn eval(&mut self, js: &str) -> Result<Value, String> {
        let r = self.page(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("evaluating a script: {ex}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// A PNG of the page's top `width` × `height` CSS pixels.
    pub fn screenshot(&mut self, width: u32, height: u32) -> Result<Vec<u8>, String> {
        let r = self.page(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}}),
        )?;
        let data = r["data"].as_str().ok_or("captureScreenshot gave no data")?;
        data_encoding::BASE64
            .decode(data.as_bytes())
            .map_err(|e| format!("screenshot data: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.send(None, "Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `file://` URL for a local path.
pub fn file_url(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut s = String::from("file://");
    for b in abs.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness sees what it is meant to catch: a console error, an exception, a
    /// network request and a dialog; and a clean page shows none.
    #[test]
    fn sees_console_errors_requests_and_dialogs() {
        let Some(chromium) = chromium_or_skip() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.html");
        std::fs::write(
            &bad,
            "<!DOCTYPE html><html><body><p id=x>hi</p>\
             <img src=\"http://127.0.0.1:9/nothing.png\">\
             <script>console.error('boom'); alert('hello'); undefinedFunction();</script>\
             </body></html>",
        )
        .unwrap();
        let good = dir.path().join("good.html");
        std::fs::write(
            &good,
            "<!DOCTYPE html><html><head><link rel=icon href=\"data:,\"></head><body><p>fine</p></body></html>",
        )
        .unwrap();
        let mut b = Browser::launch(&chromium).unwrap();
        let load = b.open(&file_url(&bad)).unwrap();
        assert!(load.console.iter().any(|c| c.contains("boom")), "{load:?}");
        assert!(
            load.console.iter().any(|c| c.contains("undefinedFunction")),
            "{load:?}"
        );
        assert_eq!(
            load.requests,
            vec!["http://127.0.0.1:9/nothing.png"],
            "{load:?}"
        );
        assert_eq!(load.dialogs, vec!["hello"]);
        assert!(
            load.load_ms >= 0.0 && load.painted_ms >= load.load_ms,
            "{load:?}"
        );
        assert_eq!(
            b.eval("document.getElementById('x').textContent").unwrap(),
            "hi"
        );
        let load = b.open(&file_url(&good)).unwrap();
        assert!(
            load.console.is_empty() && load.requests.is_empty() && load.dialogs.is_empty(),
            "{load:?}"
        );
        let png = b.screenshot(200, 100).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
