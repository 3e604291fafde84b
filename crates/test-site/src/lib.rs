//! A web site on 127.0.0.1 for crawler tests: the files of a directory (a real
//! documentation site), plus, from its [`Config`], a `robots.txt` and a `/faults/` area.
//! Every request is logged ([`Site::log`]) with its time, path, `Host` header and user
//! agent, so a test can prove what a crawler asked for, how often and how fast.
//!
//! | path | the server… |
//! |---|---|
//! | `/robots.txt` | answers [`Config::robots`] (404 when empty), `{base}` replaced by `http://127.0.0.1:PORT` |
//! | `/sitemap.xml` | a sitemap listing `/faults/orphan.html`, a page no other page links to |
//! | `/start.html` | a page linking to `/index.html`, to every fault below and to two other hosts |
//! | `/faults/redirect-1` | 301 to `/faults/redirect-2`, which 302s to `/faults/landing.html` |
//! | `/faults/loop-a` | 302 to `/faults/loop-b`, which 302s back |
//! | `/faults/busy.html` | 429 with `Retry-After: 1` the first time, then a page |
//! | `/faults/flaky.html` | 500 the first time, then a page |
//! | `/faults/stall.html` | waits [`Config::stall`] before a page, every time |
//! | `/faults/big.html` | a page of [`Config::big_bytes`] bytes |
//! | `/faults/data.bin` | `application/octet-stream` bytes |
//! | `/gen/N.html` | a generated page linking to pages `N·F+1` … `N·F+F` ([`Config::gen_fanout`] F; none when 0) |
//! | anything else | the file under the root, by extension's type, or 404 |

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

/// What the site serves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory served at `/`.
    pub root: PathBuf,
    /// The text of `/robots.txt`; empty for a 404.
    pub robots: String,
    /// How long `/faults/stall.html` waits.
    pub stall: Duration,
    /// The size of `/faults/big.html`.
    pub big_bytes: usize,
    /// Links on each generated page under `/gen/` (0: no `/gen/` pages): an endless site
    /// for crawl benchmarks, its frontier growing F-fold per level.
    pub gen_fanout: u64,
}

/// One request, as the server saw it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Since the server started.
    pub at: Duration,
    pub path: String,
    pub host: String,
    pub user_agent: String,
    pub status: u16,
}

struct State {
    cfg: Config,
    started: Instant,
    log: Mutex<Vec<Entry>>,
    seen: Mutex<HashMap<String, u32>>,
    addr: SocketAddr,
}

/// A running site; stops when dropped.
pub struct Site {
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Reply = Result<Response<Full<Bytes>>, std::io::Error>;

impl Site {
    /// Serve on a free port of 127.0.0.1, on a runtime thread of its own.
    pub fn start(cfg: Config) -> Site {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("an address");
        let state = Arc::new(State {
            cfg,
            started: Instant::now(),
            log: Mutex::new(Vec::new()),
            seen: Mutex::new(HashMap::new()),
            addr,
        });
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("test-site".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                let Ok((stream, _)) = accepted else { continue };
                                let st = st.clone();
                                tokio::spawn(async move {
                                    let svc = hyper::service::service_fn(move |req| {
                                        let st = st.clone();
                                        async move { handle(&st, req).await }
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                        .await;
                                });
                            }
                        }
                    }
                });
            })
            .expect("a thread");
        Site {
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.state.addr)
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<Entry> {
        self.state.log.lock().unwrap().clone()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reply(status: u16, content_type: &str, headers: &[(&str, String)], body: Vec<u8>) -> Reply {
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).expect("a status"))
        .header("Content-Type", content_type);
    for (k, v) in headers {
        b = b.header(*k, v);
    }
    Ok(b.body(Full::new(Bytes::from(body))).expect("a response"))
}

fn page(title: &str, body: &str) -> Vec<u8> {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><title>{title}</title></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>"
    )
    .into_bytes()
}

async fn handle(st: &State, req: Request<hyper::body::Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let user_agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let at = st.started.elapsed();
    let nth = {
        let mut seen = st.seen.lock().unwrap();
        let n = seen.entry(path.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let r = route(st, &path, nth).await;
    let status = r.as_ref().map_or(0, |r| r.status().as_u16());
    st.log.lock().unwrap().push(Entry {
        at,
        path,
        host,
        user_agent,
        status,
    });
    r
}

async fn route(st: &State, path: &str, nth: u32) -> Reply {
    let para = "<p>Text of a page made for the crawler's tests, long enough to be a page.</p>";
    match path {
        "/robots.txt" if st.cfg.robots.is_empty() => reply(404, "text/plain", &[], vec![]),
        "/robots.txt" => {
            let text = st
                .cfg
                .robots
                .replace("{base}", &format!("http://{}", st.addr));
            reply(200, "text/plain", &[], text.into_bytes())
        }
        "/sitemap.xml" => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                 <url><loc>http://{}/faults/orphan.html</loc></url></urlset>",
                st.addr
            );
            reply(200, "application/xml", &[], xml.into_bytes())
        }
        "/faults/orphan.html" => reply(200, "text/html", &[], page("Orphan", para)),
        "/start.html" => {
            let port = st.addr.port();
            let links = [
                "/index.html".to_string(),
                "/faults/redirect-1".into(),
                "/faults/loop-a".into(),
                "/faults/busy.html".into(),
                "/faults/flaky.html".into(),
                "/faults/stall.html".into(),
                "/faults/big.html".into(),
                "/faults/data.bin".into(),
                format!("http://localhost:{port}/index.html"),
                "http://other.invalid/page.html".into(),
                "mailto:someone@example.org".into(),
                "/index.html#section".into(),
            ];
            let list: String = links
                .iter()
                .map(|l| format!("<li><a href=\"{l}\">{l}</a></li>"))
                .collect();
            reply(
                200,
                "text/html; charset=utf-8",
                &[],
                page("Start", &format!("{para}<ul>{list}</ul>")),
            )
        }
        "/faults/redirect-1" => reply(
            301,
            "text/html",
            &[("Location", "/faults/redirect-2".into())],
            vec![],
        ),
        "/faults/redirect-2" => reply(
            302,
            "text/html",
            &[("Location", "landing.html".into())],
            vec![],
        ),
        "/faults/landing.html" => reply(200, "text/html", &[], page("Landing", para)),
        "/faults/loop-a" => reply(
            302,
            "text/html",
            &[("Location", "/faults/loop-b".into())],
            vec![],
        ),
        "/faults/loop-b" => reply(
            302,
            "text/html",
            &[("Location", "/faults/loop-a".into())],
            vec![],
        ),
        "/faults/busy.html" if nth == 1 => reply(
            429,
            "text/plain",
            &[("Retry-After", "1".into())],
            b"slow down".to_vec(),
        ),
        "/faults/busy.html" => reply(200, "text/html", &[], page("Busy", para)),
        "/faults/flaky.html" if nth == 1 => reply(500, "text/plain", &[], b"oops".to_vec()),
        "/faults/flaky.html" => reply(200, "text/html", &[], page("Flaky", para)),
        "/faults/stall.html" => {
            tokio::time::sleep(st.cfg.stall).await;
            reply(200, "text/html", &[], page("Stalled", para))
        }
        "/faults/big.html" => {
            let mut body = page("Big", para);
            body.resize(st.cfg.big_bytes.max(body.len()), b' ');
            reply(200, "text/html", &[], body)
        }
        "/faults/data.bin" => reply(200, "application/octet-stream", &[], vec![0u8; 4096]),
        p if p.starts_with("/gen/") && st.cfg.gen_fanout > 0 => {
            let Some(n) = p[5..]
                .strip_suffix(".html")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                return reply(404, "text/html", &[], page("Not found", ""));
            };
            let f = st.cfg.gen_fanout;
            let links: String = (n * f + 1..=n * f + f)
                .map(|k| format!("<li><a href=\"/gen/{k}.html\">Page {k}</a></li>"))
                .collect();
            reply(
                200,
                "text/html",
                &[],
                page(&format!("Page {n}"), &format!("{para}<ul>{links}</ul>")),
            )
        }
        _ => {
            let rel = path.trim_start_matches('/');
            if rel.split('/').any(|c| c == "..") {
                return reply(404, "text/plain", &[], vec![]);
            }
            let file = st
                .cfg
                .root
                .join(if rel.is_empty() { "index.html" } else { rel });
            match std::fs::read(&file) {
                Ok(bytes) => {
                    let ct = match file.extension().and_then(|e| e.to_str()) {
                        Some("html") => "text/html",
                        Some("txt") => "text/plain",
                        Some("css") => "text/css",
                        Some("js") => "text/javascript",
                        Some("png") => "image/png",
                        Some("svg") => "image/svg+xml",
                        _ => "application/octet-stream",
                    };
                    reply(200, ct, &[], bytes)
                }
                Err(_) => reply(404, "text/html", &[], page("Not found", "")),
            }
        }
    }
}
