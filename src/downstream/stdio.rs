//! The stdio transport to the IDE: newline-delimited JSON-RPC on stdin/stdout.
//!
//! rmcp's own async-rw transport silently drops input that is not JSON and answers
//! malformed messages without an `id` (rmcp.md: the SDKs ignore unparsable input to
//! avoid error storms). JSON-RPC 2.0 asks for `-32700 Parse error` and
//! `-32600 Invalid Request` with `"id": null` (or the request's id when it can be
//! read), so this transport frames the stream itself: it answers bad input
//! precisely, rate-limits those answers so a peer that echoes errors cannot start
//! a storm, bounds the size of one message, and hands everything else to rmcp.
//! It is the only writer of stdout: one lock per whole line, so lines never
//! interleave.
//!
//! Two more duties sit here because only the framing sees them in time:
//! - **Before the lifecycle starts** (an `initialize`, or a 2026-07-28 request
//!   with complete `_meta`), rmcp ends the whole session on any message that is
//!   not a request. IDEs send such chatter (`$/…` notifications, an early
//!   `notifications/initialized` or `notifications/cancelled`, a stray
//!   response), so it is dropped here, logged at debug.
//! - **End of input** fires [`StdioTransport::eof`] at once. rmcp drains
//!   in-flight handlers for up to 5 s after its transport closes; the IDE that
//!   went away needs no answers, so `serve` stops on this token instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::RoleServer;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Default bound on one incoming message.
pub const DEFAULT_MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// At most this many error answers to bad input per second.
const ERROR_REPLIES_PER_SEC: u32 = 20;

pub struct StdioTransport<R, W> {
    reader: BufReader<R>,
    line: Vec<u8>,
    /// Set while skipping the rest of an oversized line.
    discarding: bool,
    max_len: usize,
    writer: Arc<Mutex<W>>,
    replies: (Instant, u32),
    /// Set once rmcp has a lifecycle (see the module docs).
    started: bool,
    /// The IDE speaks 2026-07-28 (known once the lifecycle started): what it
    /// is sent is shaped for that generation ([`super::era`]).
    modern: bool,
    eof: CancellationToken,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> StdioTransport<R, W> {
    pub fn new(read: R, write: W, max_len: usize) -> Self {
        StdioTransport {
            reader: BufReader::with_capacity(64 * 1024, read),
            line: Vec::new(),
            discarding: false,
            max_len,
            writer: Arc::new(Mutex::new(write)),
            replies: (Instant::now(), 0),
            started: false,
            modern: false,
            eof: CancellationToken::new(),
        }
    }

    /// Cancelled when the input ends (or cannot be read): the IDE has gone.
    pub fn eof(&self) -> CancellationToken {
        self.eof.clone()
    }
}

fn is_initialize(m: &RxJsonRpcMessage<RoleServer>) -> bool {
    matches!(m, rmcp::model::JsonRpcMessage::Request(r) if matches!(r.request, rmcp::model::ClientRequest::InitializeRequest(_)))
}

/// Whether rmcp's handshake loop would take `m` (a message before any
/// lifecycle), and whether it starts the lifecycle. rmcp ends the session on a
/// notification or response here; requests it answers itself (ping,
/// `server/discover`, or an error for a request without 2026-07-28 metadata).
pub fn before_lifecycle(m: &RxJsonRpcMessage<RoleServer>) -> (bool, bool) {
    use rmcp::model::{ClientRequest, GetMeta, JsonRpcMessage, ProtocolVersion};
    let JsonRpcMessage::Request(r) = m else {
        return (false, false);
    };
    let starts = match &r.request {
        ClientRequest::InitializeRequest(_) => true,
        ClientRequest::PingRequest(_) | ClientRequest::DiscoverRequest(_) => false,
        other => {
            let meta = other.get_meta();
            meta.missing_required_keys(&ProtocolVersion::V_2026_07_28).is_empty()
                && meta
                    .protocol_version()
                    .is_some_and(|v| ProtocolVersion::KNOWN_VERSIONS.contains(&v))
        }
    };
    (true, starts)
}

/// What one complete input line is.
#[derive(Debug)]
pub enum Line {
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// Nothing to do (blank line, or a notification rmcp would ignore anyway).
    Skip,
    /// Answer with this error object for this id.
    Error {
        id: Value,
        code: i32,
        message: String,
    },
}

/// Classify one input line (without its newline). Pure, for tests and fuzzing.
pub fn classify(raw: &[u8]) -> Line {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Line::Skip;
    }
    match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(raw) {
        Ok(m) => Line::Message(Box::new(m)),
        Err(e) if matches!(e.classify(), serde_json::error::Category::Data) => {
            let v: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
            let id = match v.get("id") {
                Some(id @ (Value::Number(_) | Value::String(_))) => id.clone(),
                _ => Value::Null,
            };
            // A notification we do not understand gets no answer (JSON-RPC: never
            // answer a notification); LSP-style chatter is common on shared pipes.
            if v.get("id").is_none() && v.get("method").is_some_and(Value::is_string) {
                return Line::Skip;
            }
            Line::Error {
                id,
                code: -32600,
                message: format!("Invalid Request: {e}"),
            }
        }
        Err(e) => Line::Error {
            id: Value::Null,
            code: -32700,
            message: format!("Parse error: {e}"),
        },
    }
}

fn error_line(id: Value, code: i32, message: &str) -> Vec<u8> {
    let mut v =
        serde_json::to_vec(&json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }))
            .unwrap_or_default();
    v.push(b'\n');
    v
}

async fn write_line<W: AsyncWrite + Unpin>(w: &Mutex<W>, line: &[u8]) -> std::io::Result<()> {
    let mut w = w.lock().await;
    w.write_all(line).await?;
    w.flush().await
}

impl<R, W> StdioTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    async fn reply_error(&mut self, id: Value, code: i32, message: &str) -> std::io::Result<()> {
        let now = Instant::now();
        if now.duration_since(self.replies.0) >= Duration::from_secs(1) {
            self.replies = (now, 0);
        }
        self.replies.1 += 1;
        if self.replies.1 > ERROR_REPLIES_PER_SEC {
            if self.replies.1 == ERROR_REPLIES_PER_SEC + 1 {
                tracing::warn!("too much bad input from the IDE; not answering it for the rest of this second");
            }
            return Ok(());
        }
        write_line(&self.writer, &error_line(id, code, message)).await
    }

    /// Read one complete line into `self.line`. Cancel-safe: rmcp polls
    /// `receive` inside `select!`, so bytes are only consumed from the buffer
    /// once they are in `self.line`. Returns false on EOF.
    async fn read_line(&mut self) -> std::io::Result<bool> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(false);
            }
            let (chunk, complete) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (&available[..i], true),
                None => (available, false),
            };
            let used = chunk.len() + usize::from(complete);
            if !self.discarding {
                if self.line.len() + chunk.len() > self.max_len {
                    self.discarding = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            self.reader.consume(used);
            if complete {
                return Ok(true);
            }
        }
    }
}

impl<R, W> StdioTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    /// The next complete line (`Some(None)`: one over the size limit), or
    /// `None` at the end of input, which also fires [`Self::eof`].
    async fn next_line(&mut self) -> Option<Option<Vec<u8>>> {
        match self.read_line().await {
            Ok(true) => {}
            Ok(false) => {
                self.eof.cancel();
                return None;
            }
            Err(e) => {
                tracing::error!("cannot read stdin: {e}");
                self.eof.cancel();
                return None;
            }
        }
        let line = std::mem::take(&mut self.line);
        Some((!std::mem::take(&mut self.discarding)).then_some(line))
    }
}

impl<R, W> Transport<RoleServer> for StdioTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        let mut item = item;
        if self.started {
            match &mut item {
                rmcp::model::JsonRpcMessage::Response(r) => super::era::fit_result(&mut r.result, self.modern),
                rmcp::model::JsonRpcMessage::Error(e) => super::era::fit_error(&mut e.error, self.modern),
                _ => {}
            }
        }
        async move {
            let mut line = serde_json::to_vec(&item)?;
            line.push(b'\n');
            write_line(&writer, &line).await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            let line = self.next_line().await?;
            let Some(line) = line else {
                let msg = format!("Invalid Request: message larger than the {} byte limit", self.max_len);
                tracing::warn!("{msg}");
                if self.reply_error(Value::Null, -32600, &msg).await.is_err() {
                    return None;
                }
                continue;
            };
            match classify(&line) {
                Line::Message(m) if self.started => return Some(*m),
                Line::Message(m) => match before_lifecycle(&m) {
                    (true, starts) => {
                        self.started = starts;
                        self.modern = starts && !is_initialize(&m);
                        return Some(*m);
                    }
                    (false, _) => tracing::debug!(
                        "ignored before initialize: {}",
                        serde_json::to_string(&m).unwrap_or_default()
                    ),
                },
                Line::Skip => {}
                Line::Error { id, code, message } => {
                    tracing::debug!("bad input from the IDE: {message}");
                    if self.reply_error(id, code, &message).await.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.lock().await.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(l: Line) -> (Value, i32) {
        match l {
            Line::Error { id, code, .. } => (id, code),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn classification() {
        assert_eq!(code(classify(b"{not json")), (Value::Null, -32700));
        assert_eq!(code(classify(b"\xff\xfe")), (Value::Null, -32700));
        assert_eq!(code(classify(br#"{"jsonrpc":"2.0","id":7}"#)), (json!(7), -32600));
        assert_eq!(code(classify(br#"[1,2]"#)), (Value::Null, -32600));
        assert_eq!(
            code(classify(br#"{"jsonrpc":"2.0","id":{"x":1},"method":5}"#)),
            (Value::Null, -32600)
        );
        assert!(matches!(classify(b"   \r"), Line::Skip));
        assert!(matches!(
            classify(br#"{"jsonrpc":"2.0","method":"$/lsp/thing","params":[]}"#),
            Line::Skip
        ));
        assert!(matches!(
            classify(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            Line::Message(_)
        ));
        assert!(matches!(
            classify(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r"),
            Line::Message(_)
        ));
    }

    /// Bad lines are answered in order, oversized lines are refused whole, and the
    /// next good message still arrives.
    #[tokio::test]
    async fn framing_answers_and_recovers() {
        let big = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"x\":\"{}\"}}}}\n",
            "a".repeat(300)
        );
        let input = format!("{{bad\n{big}\n{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}}\n");
        let (mut out_r, out_w) = tokio::io::duplex(1 << 16);
        let mut t = StdioTransport::new(input.as_bytes(), out_w, 200);
        let m = t.receive().await.expect("the good message");
        assert!(serde_json::to_string(&m).unwrap().contains("\"id\":2"));
        assert!(t.receive().await.is_none());
        drop(t);
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut out_r, &mut out)
            .await
            .unwrap();
        let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["error"]["code"], json!(-32700));
        assert_eq!(lines[0]["id"], Value::Null);
        assert_eq!(lines[1]["error"]["code"], json!(-32600));
        assert!(
            lines[1]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("200 byte limit")
        );
    }

    /// Before the lifecycle starts, notifications and responses (which make
    /// rmcp end the session) are dropped and requests pass; after `initialize`,
    /// everything passes.
    #[tokio::test]
    async fn chatter_before_initialize_is_dropped() {
        let input = [
            r#"{"jsonrpc":"2.0","method":"$/lsp/hello"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
            r#"{"jsonrpc":"2.0","id":77,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ]
        .join("\n")
            + "\n";
        let (_out_r, out_w) = tokio::io::duplex(1 << 16);
        let mut t = StdioTransport::new(input.as_bytes(), out_w, 1 << 20);
        let mut got = Vec::new();
        while let Some(m) = t.receive().await {
            got.push(serde_json::to_value(&m).unwrap());
        }
        let shapes: Vec<(Value, Value)> = got.iter().map(|m| (m["id"].clone(), m["method"].clone())).collect();
        assert_eq!(
            shapes,
            [
                (json!(1), json!("ping")),
                (json!(2), json!("initialize")),
                (Value::Null, json!("notifications/initialized")),
            ]
        );
        assert!(t.eof().is_cancelled());
    }

    /// A 2026-07-28 request with complete metadata starts the lifecycle too.
    #[test]
    fn modern_request_starts_the_lifecycle() {
        let line = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
        let Line::Message(m) = classify(line) else { panic!() };
        assert_eq!(before_lifecycle(&m), (true, true));
        let Line::Message(m) = classify(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#) else {
            panic!()
        };
        assert_eq!(before_lifecycle(&m), (true, false));
    }
}
