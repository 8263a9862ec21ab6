//! The registry API as the network really is: one that hangs, one that
//! trickles, one that refuses connections, one that sends a page far larger
//! than any registry page, one with 100,000 entries. The bridge is spawned as
//! a binary with an empty home and driven over raw JSON-RPC lines; the
//! registry is a real HTTP server on loopback whose behaviour the test
//! switches, and whose every request the test hears of.

mod common;

use mcp_bridge::util::Locked;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

/// How the registry answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// Pages of its entries, 100 (or `limit`) at a time.
    Serve,
    /// Accepts the request and answers nothing until the gate opens.
    Hang,
    /// Answers its page a few bytes at a time, 25 ms apart.
    Trickle,
    /// A 100 MB page announced by its Content-Length.
    HugeDeclared,
    /// A page that never ends, streamed without a Content-Length.
    HugeStreamed,
}

struct RegistryState {
    mode: Mode,
    /// Entries `0..count`, made by `make`.
    count: usize,
    make: Arc<dyn Fn(usize) -> Value + Send + Sync>,
    /// Largest page it sends (the request's `limit` may ask for fewer).
    page: usize,
    /// Bytes of the oversized pages it managed to send.
    huge_sent: usize,
}

#[derive(Clone)]
struct Registry {
    base: String,
    state: Arc<Mutex<RegistryState>>,
    gate: watch::Sender<bool>,
}

impl Registry {
    /// Start it; the receiver hears of every request as it arrives.
    async fn start(
        count: usize,
        make: impl Fn(usize) -> Value + Send + Sync + 'static,
    ) -> (Registry, mpsc::UnboundedReceiver<String>) {
        let state = Arc::new(Mutex::new(RegistryState {
            mode: Mode::Serve,
            count,
            make: Arc::new(make),
            page: 100,
            huge_sent: 0,
        }));
        let (gate, _) = watch::channel(false);
        let (tx, rx) = mpsc::unbounded_channel();
        let (st, g) = (state.clone(), gate.clone());
        let app = axum::Router::new().route(
            "/v0.1/servers",
            axum::routing::get(move |q: axum::extract::RawQuery| {
                let (st, mut gate, tx) = (st.clone(), g.subscribe(), tx.clone());
                async move { answer(st, &mut gate, tx, q.0.unwrap_or_default()).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (Registry { base, state, gate }, rx)
    }

    fn set_mode(&self, mode: Mode) {
        self.state.locked().mode = mode;
    }

    /// Let hung requests be answered (as `Serve`).
    fn release(&self) {
        self.set_mode(Mode::Serve);
        self.gate.send_replace(true);
    }
}

async fn answer(
    st: Arc<Mutex<RegistryState>>,
    gate: &mut watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<String>,
    query: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let _ = tx.send(query.clone());
    let mode = st.locked().mode;
    if mode == Mode::Hang {
        let _ = gate.wait_for(|open| *open).await;
    }
    let arg = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let body = {
        let s = st.locked();
        let from = arg("cursor").unwrap_or(0).min(s.count);
        let to = (from + arg("limit").unwrap_or(100).min(s.page)).min(s.count);
        let servers: Vec<Value> = (from..to).map(|i| (s.make)(i)).collect();
        let next = (to < s.count).then(|| to.to_string());
        json!({ "servers": servers, "metadata": { "nextCursor": next, "count": servers.len() } }).to_string()
    };
    let json_type = [("content-type", "application/json")];
    match mode {
        Mode::Serve | Mode::Hang => (json_type, body).into_response(),
        Mode::Trickle => {
            let chunks: Vec<Vec<u8>> = body.as_bytes().chunks(4).map(<[u8]>::to_vec).collect();
            let stream = futures::stream::unfold(chunks.into_iter(), |mut rest| async move {
                let chunk = rest.next()?;
                tokio::time::sleep(Duration::from_millis(25)).await;
                Some((Ok::<_, std::io::Error>(chunk), rest))
            });
            (json_type, axum::body::Body::from_stream(stream)).into_response()
        }
        Mode::HugeDeclared | Mode::HugeStreamed => {
            // `{"servers":[` then filler entries, forever (or up to 100 MB).
            let limit = if mode == Mode::HugeDeclared {
                100_000_000
            } else {
                usize::MAX
            };
            let filler = format!(
                "{},",
                json!({ "server": { "name": "x/filler", "description": "y".repeat(4000) } })
            );
            let stream = futures::stream::unfold(0usize, move |sent| {
                let (st, filler) = (st.clone(), filler.clone());
                async move {
                    let chunk = if sent == 0 {
                        b"{\"servers\":[".to_vec()
                    } else {
                        filler.into_bytes()
                    };
                    let chunk = chunk[..chunk.len().min(limit - sent)].to_vec();
                    if chunk.is_empty() {
                        return None;
                    }
                    st.locked().huge_sent += chunk.len();
                    Some((Ok::<_, std::io::Error>(chunk.clone()), sent + chunk.len()))
                }
            });
            let mut r = (json_type, axum::body::Body::from_stream(stream)).into_response();
            if mode == Mode::HugeDeclared {
                r.headers_mut().insert("content-length", limit.into());
            }
            r
        }
    }
}

/// A registry entry for a server at `url`, tools prefixed with `ns`.
fn entry(name: &str, ns: &str, url: &str) -> Value {
    json!({
        "server": { "name": name, "description": "test", "version": "1.0.0",
            "remotes": [{ "type": "streamable-http", "url": url }] },
        "_meta": {
            "io.modelcontextprotocol.registry/official": { "status": "active", "isLatest": true,
                "updatedAt": "2026-11-01T00:00:00Z" },
            "dev.mcp-bridge/config": { "namespace": ns }
        }
    })
}

/// The bridge as the IDE sees it: raw lines on stdin/stdout, stderr kept.
struct Bridge {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    out: mpsc::UnboundedReceiver<Value>,
    err: mpsc::UnboundedReceiver<String>,
    log: Arc<Mutex<Vec<String>>>,
    /// Notifications that arrived while an answer was awaited.
    notes: std::collections::VecDeque<Value>,
}

impl Bridge {
    fn spawn(home: &Home) -> Bridge {
        let mut child = bridge_command(home, &[])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let (otx, out) = mpsc::unbounded_channel();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(l)) = lines.next_line().await {
                let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("stdout is not JSON: {l:?}: {e}"));
                let _ = otx.send(v);
            }
        });
        let (etx, err) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (l, mut lines) = (log.clone(), BufReader::new(child.stderr.take().unwrap()).lines());
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                l.locked().push(line.clone());
                let _ = etx.send(line);
            }
        });
        Bridge {
            child,
            stdin,
            out,
            err,
            log,
            notes: Default::default(),
        }
    }

    async fn send(&mut self, v: Value) {
        let w = self.stdin.as_mut().unwrap();
        w.write_all(format!("{v}\n").as_bytes()).await.unwrap();
        w.flush().await.unwrap();
    }

    async fn request(&mut self, id: u64, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
    }

    /// The next message on stdout, within 20 s.
    async fn recv(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(20), self.out.recv())
            .await
            .unwrap_or_else(|_| panic!("no message on stdout; stderr:\n{}", self.stderr()))
            .expect("stdout open")
    }

    /// The answer to request `id`; notifications meanwhile are kept for
    /// [`Bridge::wait_tools`].
    async fn answer(&mut self, id: u64) -> Value {
        loop {
            let m = self.recv().await;
            if m["id"] == json!(id) {
                return m;
            }
            self.notes.push_back(m);
        }
    }

    /// List tools until `pred` holds, re-listing on each
    /// `notifications/tools/list_changed` (bounded by `recv`).
    async fn wait_tools(&mut self, mut id: u64, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        loop {
            let now = self.tools(id).await;
            id += 1;
            if pred(&now) {
                return now;
            }
            loop {
                let m = match self.notes.pop_front() {
                    Some(m) => m,
                    None => self.recv().await,
                };
                if m["method"] == json!("notifications/tools/list_changed") {
                    break;
                }
            }
        }
    }

    /// `initialize` and `notifications/initialized`; how long the answer took.
    async fn initialize(&mut self) -> Duration {
        let start = Instant::now();
        self.request(
            1,
            "initialize",
            json!({ "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": { "name": "registry-net", "version": "1" } }),
        )
        .await;
        let r = self.answer(1).await;
        let took = start.elapsed();
        assert!(r["result"]["serverInfo"].is_object(), "{r}");
        self.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
            .await;
        took
    }

    /// The tool names of a `tools/list` answer.
    async fn tools(&mut self, id: u64) -> Vec<String> {
        self.request(id, "tools/list", json!({})).await;
        names(&self.answer(id).await)
    }

    /// Wait (bounded) for a stderr line containing `text`.
    async fn wait_log(&mut self, text: &str) -> String {
        let what = format!("a log line with {text:?}");
        eventually_woken(&what, Duration::from_secs(30), Now, async || {
            match self.err.recv().await {
                Some(l) if l.contains(text) => Ok(l),
                Some(_) => Err(Text(format!("stderr:\n{}", self.stderr()))),
                None => panic!("no log line with {text:?}; stderr:\n{}", self.stderr()),
            }
        })
        .await
    }

    fn stderr(&self) -> String {
        self.log.locked().join("\n")
    }

    /// Wait for the process to end; how long it took.
    async fn exits(&mut self) -> Duration {
        let start = Instant::now();
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the bridge did not exit; stderr:\n{}", self.stderr()))
            .unwrap();
        assert!(status.success(), "{status:?}");
        start.elapsed()
    }

    fn sigterm(&self) {
        let pid = self.child.id().unwrap().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

fn names(answer: &Value) -> Vec<String> {
    let mut v: Vec<String> = answer["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("not a tools/list answer: {answer}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// A config with `[[servers]] alpha` and the registry, prefixes always on.
fn config(home: &Home, alpha: &str, registry: &str, extra: &str) {
    home.write_config(&format!(
        "[registry]\nurl = \"{registry}\"\n{extra}\n[naming]\nprefix = \"always\"\n\n[[servers]]\nname = \"alpha\"\nurl = \"{alpha}\"\n"
    ));
}

/// A registry that accepts the request and never answers, on a first start
/// (empty home): `initialize` is answered at once, the first `tools/list`
/// waits for the registry no longer than `[timeouts] first_list` and lists the
/// config's server, and once the registry answers its server joins with
/// `list_changed`. Stdin EOF ends the process promptly while it still hangs.
#[tokio::test]
async fn a_hanging_registry_delays_nothing_and_its_servers_join_when_it_answers() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let beta_url = beta.url.clone();
    let (reg, mut asked) = Registry::start(1, move |_| entry("dev.test/beta", "beta", &beta_url)).await;
    reg.set_mode(Mode::Hang);
    let home = Home::new();
    config(&home, &alpha.url, &reg.base, "[timeouts]\nfirst_list = 2\ncall = 60");
    let mut b = Bridge::spawn(&home);
    let took = b.initialize().await;
    eprintln!("initialize answered in {took:?} while the registry hangs");
    assert!(took < Duration::from_secs(2), "{took:?}");
    asked.recv().await.expect("the registry is asked");

    // The first list waits for the registry, within first_list, then lists alpha.
    let start = Instant::now();
    let first = b.tools(2).await;
    let waited = start.elapsed();
    eprintln!("first tools/list answered in {waited:?} (first_list = 2 s)");
    assert!(first.contains(&"alpha__echo".to_owned()), "{first:?}");
    assert!(!first.iter().any(|n| n.starts_with("beta__")), "{first:?}");
    assert!(waited < Duration::from_secs(6), "waited past the bound: {waited:?}");

    // The registry answers: beta joins and the IDE is told.
    reg.release();
    b.wait_tools(3, |n| {
        n.contains(&"beta__echo".to_owned()) && n.contains(&"alpha__echo".to_owned())
    })
    .await;

    // The next start serves the registry's copy from the cache at once, even
    // with the registry hanging again.
    drop(b.stdin.take());
    b.exits().await;
    reg.set_mode(Mode::Hang);
    reg.gate.send_replace(false);
    let mut b = Bridge::spawn(&home);
    b.initialize().await;
    let start = Instant::now();
    let cached = b.tools(2).await;
    assert!(cached.contains(&"beta__echo".to_owned()), "{cached:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());

    // Stdin EOF while the registry hangs: the process ends promptly.
    drop(b.stdin.take());
    let took = b.exits().await;
    eprintln!("exit after stdin EOF with the registry hanging took {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// The first `tools/list` of a first start waits for the registry's answer
/// (within first_list) instead of answering an empty list at once: it is held
/// while a later request is answered, and when the registry answers it lists
/// the registry's server.
#[tokio::test]
async fn the_first_list_waits_for_a_registry_that_answers_late() {
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let beta_url = beta.url.clone();
    let (reg, mut asked) = Registry::start(1, move |_| entry("dev.test/beta", "beta", &beta_url)).await;
    reg.set_mode(Mode::Hang);
    let home = Home::new();
    home.write_config(&format!(
        "[registry]\nurl = \"{}\"\n[timeouts]\nfirst_list = 15\ncall = 60\n",
        reg.base
    ));
    let mut b = Bridge::spawn(&home);
    b.initialize().await;
    asked.recv().await.expect("the registry is asked");
    b.request(2, "tools/list", json!({})).await;
    b.request(3, "ping", json!({})).await;
    let m = b.recv().await;
    assert_eq!(m["id"], json!(3), "the list was not held for the registry: {m}");
    reg.release();
    let names = names(&b.answer(2).await);
    assert!(names.contains(&"echo".to_owned()), "{names:?}");
    drop(b.stdin.take());
    b.exits().await;
}

/// SIGTERM while the registry hangs, before and after `initialize`: the
/// process ends promptly either way.
#[tokio::test]
async fn sigterm_acts_at_once_while_the_registry_hangs() {
    let (reg, mut asked) = Registry::start(0, |_| json!({})).await;
    reg.set_mode(Mode::Hang);
    let home = Home::new();
    home.write_config(&format!("[registry]\nurl = \"{}\"\n", reg.base));
    for initialize in [false, true] {
        let mut b = Bridge::spawn(&home);
        if initialize {
            b.initialize().await;
        }
        asked.recv().await.expect("the registry is asked");
        b.sigterm();
        let took = b.exits().await;
        eprintln!("exit after SIGTERM (initialized: {initialize}) with the registry hanging took {took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}

/// A registry that trickles its page: the IDE is answered at once, and the
/// server arrives when the page is complete.
#[tokio::test]
async fn a_trickling_registry_delays_nothing() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let beta_url = beta.url.clone();
    let (reg, mut asked) = Registry::start(1, move |_| entry("dev.test/beta", "beta", &beta_url)).await;
    reg.set_mode(Mode::Trickle);
    let home = Home::new();
    config(&home, &alpha.url, &reg.base, "[timeouts]\nfirst_list = 0.5\ncall = 60");
    let mut b = Bridge::spawn(&home);
    let took = b.initialize().await;
    eprintln!("initialize answered in {took:?} while the registry trickles");
    assert!(took < Duration::from_secs(2), "{took:?}");
    asked.recv().await.expect("the registry is asked");
    let first = b.tools(2).await;
    assert!(first.contains(&"alpha__echo".to_owned()), "{first:?}");
    // The page (about 350 bytes, 4 every 25 ms) completes; beta joins.
    b.wait_tools(3, |n| n.contains(&"beta__echo".to_owned())).await;
    b.sigterm();
    b.exits().await;
}

/// A registry that refuses connections, on a first start: answered at once,
/// the first list does not wait for it, and the error names it once.
#[tokio::test]
async fn a_refused_registry_delays_nothing() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let home = Home::new();
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    config(&home, &alpha.url, &refused, "[timeouts]\nfirst_list = 15");
    let mut b = Bridge::spawn(&home);
    let took = b.initialize().await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    let line = b.wait_log("no cached copy").await;
    assert!(line.contains(&refused) && line.contains("refused"), "{line}");
    let start = Instant::now();
    let first = b.tools(2).await;
    assert!(first.contains(&"alpha__echo".to_owned()), "{first:?}");
    // The registry's failure released the list; alpha's first listing is all it waited for.
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    drop(b.stdin.take());
    b.exits().await;
}

/// A page over `[registry] max_page_bytes`, announced by its Content-Length
/// or streamed without end, is refused with the URL and the limit, without
/// reading it whole; the last good copy keeps serving, also at the next start.
#[tokio::test]
async fn an_oversized_page_is_refused_and_the_last_good_copy_kept() {
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let beta_url = beta.url.clone();
    let (reg, _asked) = Registry::start(1, move |_| entry("dev.test/beta", "beta", &beta_url)).await;
    let home = Home::new();
    home.write_config(&format!(
        "[registry]\nurl = \"{}\"\nrefresh = 0.2\nmax_page_bytes = 65536\n[timeouts]\ncall = 60\n",
        reg.base
    ));
    let mut b = Bridge::spawn(&home);
    b.initialize().await;
    let first = b.tools(2).await;
    assert!(first.contains(&"echo".to_owned()), "{first:?}");

    reg.set_mode(Mode::HugeDeclared);
    let line = b.wait_log("max_page_bytes").await;
    assert!(
        line.contains(&format!("{}/v0.1/servers", reg.base))
            && line.contains("100000000 bytes, over the limit of 65536 bytes")
            && line.contains("keeping the last good list of 1 servers"),
        "{line}"
    );
    reg.set_mode(Mode::HugeStreamed);
    let line = b.wait_log("larger than the limit").await;
    assert!(line.contains("65536 bytes ([registry] max_page_bytes)"), "{line}");
    // Streamed: refused after about the limit, not after the page (which never ends).
    let sent = reg.state.locked().huge_sent;
    assert!(sent < 100_000_000, "{sent}");
    assert_eq!(b.tools(3).await, first);
    drop(b.stdin.take());
    b.exits().await;

    // The next start, the registry still oversized: the cached copy serves.
    let mut b = Bridge::spawn(&home);
    b.initialize().await;
    assert_eq!(b.tools(2).await, first);
    drop(b.stdin.take());
    b.exits().await;
}

/// A registry of 100,000 entries: the bridge takes `[registry] max_servers` of
/// them (saying so once), bridges the usable ones, and sums the unusable ones
/// up in one line instead of a line each.
#[tokio::test]
async fn a_registry_of_100000_entries_is_capped_and_logged_in_a_few_lines() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let url = alpha.url.clone();
    // Every 500th entry is a usable server; the others offer only SSE.
    let (reg, mut asked) = Registry::start(100_000, move |i| {
        let mut e = entry(&format!("dev.test/s{i:06}"), &format!("s{i}"), &url);
        if i % 500 != 0 {
            e["server"]["remotes"][0]["type"] = json!("sse");
        }
        e
    })
    .await;
    let home = Home::new();
    home.write_config(&format!("[registry]\nurl = \"{}\"\nmax_servers = 1500\n", reg.base));
    let mut b = Bridge::spawn(&home);
    b.initialize().await;
    let names = b.tools(2).await;
    assert!(
        ["s0__echo", "s500__echo", "s1000__echo"]
            .iter()
            .all(|n| names.contains(&n.to_string())),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("s1500__")), "{names:?}");
    // 15 pages of 100 were read, not 1000.
    let mut pages = 0;
    while asked.try_recv().is_ok() {
        pages += 1;
    }
    assert_eq!(pages, 15);
    let cap = b.wait_log("max_servers").await;
    assert!(
        cap.contains("more than 1500 servers") && cap.contains(&reg.base),
        "{cap}"
    );
    let summary = b.wait_log("servers not bridged").await;
    assert!(
        summary.contains("1497 servers not bridged") && summary.contains("dev.test/s000001: no streamable-http"),
        "{summary}"
    );
    drop(b.stdin.take());
    b.exits().await;
    let log = b.stderr();
    let lines = log.lines().count();
    eprintln!("{lines} stderr lines for a registry of 100,000 entries");
    assert!(lines < 60, "{lines} lines:\n{log}");

    // The next start begins from the cache and polls at once; the answer is
    // merged into the copy without holding up the IDE closing its input.
    let mut b = Bridge::spawn(&home);
    b.initialize().await;
    for _ in 0..15 {
        tokio::time::timeout(Duration::from_secs(20), asked.recv())
            .await
            .expect("the registry is polled")
            .unwrap();
    }
    drop(b.stdin.take());
    let took = b.exits().await;
    eprintln!("exit after stdin EOF while a poll of 1500 entries lands took {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

/// The config is edited to another registry while serving (polled hourly):
/// the new one is read at once and its server replaces the old one's.
#[tokio::test]
async fn a_new_registry_url_is_read_at_once() {
    let alpha = Upstream::start(TestServer::new(Era::Legacy, "alpha"));
    let beta = Upstream::start(TestServer::new(Era::Modern, "beta"));
    let (alpha_url, beta_url) = (alpha.url.clone(), beta.url.clone());
    let (one, _) = Registry::start(1, move |_| entry("dev.test/alpha", "alpha", &alpha_url)).await;
    let (two, mut asked) = Registry::start(1, move |_| entry("dev.test/beta", "beta", &beta_url)).await;
    let home = Home::new();
    let write = |base: &str| {
        home.write_config(&format!(
            "[registry]\nurl = \"{base}\"\nrefresh = 3600\n[naming]\nprefix = \"always\"\n"
        ))
    };
    write(&one.base);
    let mut b = Bridge::spawn(&home);
    b.initialize().await;
    let first = b.tools(2).await;
    assert!(first.contains(&"alpha__echo".to_owned()), "{first:?}");
    write(&two.base);
    tokio::time::timeout(Duration::from_secs(20), asked.recv())
        .await
        .expect("the new registry is asked at once");
    let now = b
        .wait_tools(3, |n| {
            n.contains(&"beta__echo".to_owned()) && !n.contains(&"alpha__echo".to_owned())
        })
        .await;
    assert!(!now.is_empty());
    drop(b.stdin.take());
    b.exits().await;
}
