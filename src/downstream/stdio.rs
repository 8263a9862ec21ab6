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

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::RoleServer;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

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
        }
    }
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
        async move {
            let mut line = serde_json::to_vec(&item)?;
            line.push(b'\n');
            write_line(&writer, &line).await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            match self.read_line().await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(e) => {
                    tracing::error!("cannot read stdin: {e}");
                    return None;
                }
            }
            if std::mem::take(&mut self.discarding) {
                self.line.clear();
                let msg = format!("Invalid Request: message larger than the {} byte limit", self.max_len);
                tracing::warn!("{msg}");
                if self.reply_error(Value::Null, -32600, &msg).await.is_err() {
                    return None;
                }
                continue;
            }
            let line = classify(&self.line);
            self.line.clear();
            match line {
                Line::Message(m) => return Some(*m),
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
}
