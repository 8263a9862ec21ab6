//! A fault-injecting TCP proxy on 127.0.0.1:0, between the bridge and one real
//! upstream. Bytes are forwarded both ways; a shared [`Fault`], set by the test at
//! any time, decides what happens to requests that start from then on and to the
//! responses still flowing on live connections.
//!
//! Only enough HTTP/1.1 is parsed to know where a request starts (its head and
//! `Content-Length` body), so the proxy makes each connection carry one request:
//! it adds `Connection: close` to the request it forwards, the upstream closes
//! after answering, and the bridge does not reuse the connection. A fault is
//! so decided per request, as a load balancer's would be. Connection reuse has
//! its own tests (tests/network.rs).

use mcp_bridge::util::Locked;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the traffic.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Forward faithfully.
    None,
    /// After `after_bytes` response bytes on a connection, reset both sides (RST).
    ResetMidResponse { after_bytes: usize },
    /// Stop forwarding responses; keep every socket open.
    Stall,
    /// After `after_bytes` response bytes, close both sides cleanly (FIN).
    Truncate { after_bytes: usize },
    /// Forward responses `bytes_per_write` bytes at a time, `delay` apart.
    Trickle { bytes_per_write: usize, delay: Duration },
    /// Answer the next `count` requests with 503 without contacting the upstream.
    Http5xx { count: usize },
    /// Answer every request with 429 and `Retry-After`, without the upstream.
    TooMany { retry_after_secs: u64 },
}

/// Counters a test waits on or asserts.
#[derive(Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: AtomicUsize,
    /// Requests whose start was seen.
    pub requests: AtomicUsize,
    /// Requests (or responses) a fault acted on.
    pub faulted: AtomicUsize,
    /// Requests answered by the proxy itself (503/429).
    pub answered: AtomicUsize,
    /// Length of the last response head forwarded (status line and headers),
    /// for faults meant to hit the body.
    pub last_head_len: AtomicUsize,
}

impl Stats {
    /// The counters in one line, for a wait that timed out.
    fn summary(&self) -> String {
        let n = |c: &AtomicUsize| c.load(Ordering::SeqCst);
        format!(
            "{} connections, {} requests, {} faulted, {} answered by the proxy",
            n(&self.connections),
            n(&self.requests),
            n(&self.faulted),
            n(&self.answered)
        )
    }
}

struct Shared {
    fault: watch::Sender<Fault>,
    /// Faults apply only to requests whose head or body contains this text
    /// (e.g. `"tools/call"`); `None` = to every request.
    only: Mutex<Option<String>>,
    upstream: SocketAddr,
    stats: Stats,
    /// Woken whenever a counter moves.
    moved: tokio::sync::Notify,
}

/// The proxy; dropping it stops accepting (live connections run to their end).
pub struct FaultProxy {
    pub addr: SocketAddr,
    /// The upstream's MCP URL through the proxy.
    pub url: String,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FaultProxy {
    /// A proxy in front of `upstream` (an `Upstream::addr`), forwarding faithfully.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            fault: watch::Sender::new(Fault::None),
            only: Mutex::new(None),
            upstream,
            stats: Stats::default(),
            moved: tokio::sync::Notify::new(),
        });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                s.stats.connections.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = connection(s, sock).await;
                });
            }
        });
        FaultProxy {
            addr,
            url: format!("http://{addr}/mcp"),
            shared,
            accept,
        }
    }

    /// Set the fault; it applies to new requests and to live responses at once.
    pub fn set(&self, fault: Fault) {
        self.shared.fault.send_replace(fault);
    }

    /// Apply faults only to requests containing `text` (`None`: all requests).
    pub fn only_matching(&self, text: Option<&str>) {
        *self.shared.only.locked() = text.map(str::to_owned);
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Wait (bounded) until `pred` holds for the counters, checking again whenever
    /// one moves.
    pub async fn wait_until(&self, what: &str, within: Duration, pred: impl Fn(&Stats) -> bool) {
        let stats = &self.shared.stats;
        super::eventually_woken(&format!("the proxy: {what}"), within, &self.shared.moved, async || {
            if pred(stats) { Ok(()) } else { Err(stats.summary()) }
        })
        .await
    }
}

impl Shared {
    fn bump(&self, c: &AtomicUsize) {
        c.fetch_add(1, Ordering::SeqCst);
        self.moved.notify_waiters();
    }
}

/// Read one request's head and `Content-Length` body from `sock`.
async fn read_request(sock: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(buf))
}

/// `request` with `Connection: close` after its request line (see the module doc).
fn one_request(request: Vec<u8>) -> Vec<u8> {
    let Some(line) = request.windows(2).position(|w| w == b"\r\n") else {
        return request;
    };
    let mut out = Vec::with_capacity(request.len() + 20);
    out.extend_from_slice(&request[..line + 2]);
    out.extend_from_slice(b"connection: close\r\n");
    out.extend_from_slice(&request[line + 2..]);
    out
}

fn canned(status: &str, extra: &str) -> Vec<u8> {
    let body = format!("proxy says {status}");
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{extra}connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[allow(deprecated)] // SO_LINGER 0 is the point: an immediate RST, nothing blocks.
fn reset(a: &TcpStream, b: &TcpStream) {
    let _ = a.set_linger(Some(Duration::ZERO));
    let _ = b.set_linger(Some(Duration::ZERO));
}

async fn connection(s: Arc<Shared>, mut client: TcpStream) -> std::io::Result<()> {
    let Some(first) = read_request(&mut client).await? else {
        return Ok(());
    };
    s.bump(&s.stats.requests);
    let matches = match &*s.only.locked() {
        None => true,
        Some(t) => first.windows(t.len()).any(|w| w == t.as_bytes()),
    };
    // Decided when the request starts.
    let mut answer = None;
    if matches {
        s.fault.send_modify(|f| match f {
            Fault::Http5xx { count } if *count > 0 => {
                *count -= 1;
                answer = Some(canned("503 Service Unavailable", ""));
            }
            Fault::TooMany { retry_after_secs } => {
                answer = Some(canned(
                    "429 Too Many Requests",
                    &format!("retry-after: {retry_after_secs}\r\n"),
                ));
            }
            _ => {}
        });
    }
    if let Some(a) = answer {
        s.bump(&s.stats.faulted);
        s.bump(&s.stats.answered);
        client.write_all(&a).await?;
        let _ = client.shutdown().await;
        return Ok(());
    }
    let mut upstream = TcpStream::connect(s.upstream).await?;
    upstream.set_nodelay(true)?;
    client.set_nodelay(true)?;
    upstream.write_all(&one_request(first)).await?;
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    // Requests: faithful (a later request on this connection rides along).
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut uw).await;
        let _ = uw.shutdown().await;
    });
    let mut fault = s.fault.subscribe();
    let mut sent = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    let mut counted = false;
    let mut hit = |s: &Shared| {
        if !counted {
            counted = true;
            s.bump(&s.stats.faulted);
        }
    };
    'pump: loop {
        // A stall holds the response until the fault changes.
        loop {
            let f = fault.borrow_and_update().clone();
            if !(matches && f == Fault::Stall) {
                break;
            }
            hit(&s);
            if fault.changed().await.is_err() {
                break 'pump;
            }
        }
        let n = tokio::select! {
            n = ur.read(&mut buf) => n?,
            // Re-check a stall that starts while waiting for bytes.
            _ = fault.changed() => continue,
        };
        if n == 0 {
            break;
        }
        let f = fault.borrow().clone();
        let data = &buf[..n];
        if sent == 0
            && let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n")
        {
            s.stats.last_head_len.store(i + 4, Ordering::SeqCst);
        }
        match (matches, f) {
            (true, Fault::ResetMidResponse { after_bytes }) if sent + n > after_bytes => {
                cw.write_all(&data[..after_bytes.saturating_sub(sent)]).await?;
                hit(&s);
                // Abortive close of both sockets: SO_LINGER 0, then drop every half.
                reset(cw.as_ref(), ur.as_ref());
                up.abort();
                return Ok(());
            }
            (true, Fault::Truncate { after_bytes }) if sent + n > after_bytes => {
                cw.write_all(&data[..after_bytes.saturating_sub(sent)]).await?;
                hit(&s);
                let _ = cw.shutdown().await;
                up.abort();
                return Ok(());
            }
            (true, Fault::Trickle { bytes_per_write, delay }) => {
                hit(&s);
                for piece in data.chunks(bytes_per_write.max(1)) {
                    cw.write_all(piece).await?;
                    tokio::time::sleep(delay).await;
                }
            }
            _ => cw.write_all(data).await?,
        }
        sent += n;
    }
    let _ = cw.shutdown().await;
    Ok(())
}
