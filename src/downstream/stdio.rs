//! The stdio transport to the IDE: newline-delimited JSON-RPC on stdin/stdout.
//!
//! rmcp's own async-rw transport silently drops input that is not JSON and answers
//! malformed messages without an `id` (the SDKs ignore unparsable input to avoid
//! error storms). JSON-RPC 2.0 asks for `-32700 Parse error` and
//! `-32600 Invalid Request` with `"id": null` (or the request's id when it can be
//! read), so this transport frames the stream itself: it answers bad input
//! precisely (`-32602` for a known method whose params do not fit), bounds the
//! size of one message, and hands everything else to rmcp. Every request with
//! an id gets exactly one answer; only answers to input whose id cannot be read
//! are rate-limited, so a peer that echoes errors cannot start a storm, and a
//! malformed response is never answered. [`super::ids`] keeps each request's id
//! as written while it is in flight: a duplicate is refused, and an id rmcp
//! cannot carry exactly (an integer past `i64`, a float form) goes out as it came.
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
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::ids::{InFlight, Key};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Default bound on one incoming message.
pub const DEFAULT_MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// At most this many answers per second to bad input whose id cannot be read
/// (`"id": null`: nothing waits for them). Input with an id is always answered.
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
    /// The IDE's requests not answered yet, by the exact text of their ids.
    in_flight: InFlight,
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
            in_flight: InFlight::default(),
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
    /// A request whose id rmcp cannot carry exactly (an integer past `i64`, a
    /// float form): `id` is its wire text, the message holds a placeholder.
    WideRequest {
        message: Box<RxJsonRpcMessage<RoleServer>>,
        id: Box<str>,
    },
    /// `notifications/cancelled` for the request whose id is written `request`
    /// on the wire; `message` is the whole notification, its `requestId` to be
    /// replaced by the internal one.
    Cancel {
        request: Key,
        message: Box<Value>,
    },
    /// Nothing to do (blank line, or a notification rmcp would ignore anyway).
    Skip,
    /// Answer with this error object for the id written `id` on the wire
    /// (`null` when it cannot be read).
    Error {
        id: Box<str>,
        code: i32,
        message: String,
    },
}

/// The id of a message, as its exact text: all that is read before the whole
/// message on the way of a well-formed request (each member read as text costs
/// a pass over it).
#[derive(serde::Deserialize)]
struct Brief<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
}

/// The members that explain a message rmcp did not take, as their exact text.
#[derive(serde::Deserialize, Default)]
struct Head<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

impl<'a> Head<'a> {
    fn of(raw: &'a [u8]) -> Head<'a> {
        serde_json::from_slice(raw).unwrap_or_default()
    }

    fn method(&self) -> Option<std::borrow::Cow<'a, str>> {
        self.method.and_then(|m| serde_json::from_str(m.get()).ok())
    }
}

/// `Some` for a member that is there, even when it is `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue as serde::Deserialize>::deserialize(d).map(Some)
}

/// How a request id is written.
enum IdForm {
    /// An `i64` or a string: rmcp carries it exactly.
    Natural,
    /// Any other number: carried as its text.
    Wide,
    /// Not a number nor a string.
    Invalid,
}

fn id_form(text: &str) -> IdForm {
    match text.as_bytes().first() {
        Some(b'"') => IdForm::Natural,
        Some(b'-' | b'0'..=b'9') => match Key::from_wire(text) {
            Key::Id(_) => IdForm::Natural,
            Key::Wide(_) => IdForm::Wide,
        },
        _ => IdForm::Invalid,
    }
}

/// MCP's client-to-server request methods. A request for one of them whose
/// params do not fit is `-32602 Invalid params`, not an unknown method.
const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "resources/directory/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
    "skills/list",
    "skills/get",
];

/// Why the params of a request for a known `method` do not fit, or `None` for
/// a method MCP does not define.
fn params_error(method: &str, params: Option<&RawValue>) -> Option<String> {
    use rmcp::model as m;
    if !METHODS.contains(&method) {
        return None;
    }
    let text = params.map_or("{}", RawValue::get);
    let why = match method {
        "initialize" => serde_json::from_str::<m::InitializeRequestParams>(text).err(),
        "tools/call" => serde_json::from_str::<m::CallToolRequestParams>(text).err(),
        "resources/read" => serde_json::from_str::<m::ReadResourceRequestParams>(text).err(),
        "resources/subscribe" => serde_json::from_str::<m::SubscribeRequestParams>(text).err(),
        "resources/unsubscribe" => serde_json::from_str::<m::UnsubscribeRequestParams>(text).err(),
        "prompts/get" => serde_json::from_str::<m::GetPromptRequestParams>(text).err(),
        "completion/complete" => serde_json::from_str::<m::CompleteRequestParams>(text).err(),
        "logging/setLevel" => serde_json::from_str::<m::SetLevelRequestParams>(text).err(),
        _ => None,
    };
    Some(match why {
        Some(e) => format!("Invalid params for {method}: {e}"),
        None if !text.starts_with('{') => format!("Invalid params for {method}: params must be an object"),
        None => format!("Invalid params for {method}"),
    })
}

/// Classify one input line (without its newline). Pure, for tests and fuzzing.
pub fn classify(raw: &[u8]) -> Line {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Line::Skip;
    }
    let parse_error = |e: serde_json::Error| Line::Error {
        id: "null".into(),
        code: -32700,
        message: format!("Parse error: {e}"),
    };
    // serde reads a struct from an array too; a message is an object.
    if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(raw) {
            Ok(_) => invalid("null", "Invalid Request: a message is a JSON object".into()),
            Err(e) => parse_error(e),
        };
    }
    let brief = match serde_json::from_slice::<Brief>(raw) {
        Ok(brief) => brief,
        Err(e) if matches!(e.classify(), serde_json::error::Category::Data) => {
            return invalid("null", format!("Invalid Request: {e}"));
        }
        Err(e) => return parse_error(e),
    };
    let Some(id) = brief.id else {
        let head = Head::of(raw);
        return notification(raw, head.method().as_deref(), head.params);
    };
    let id_text = id.get();
    let form = id_form(id_text);
    let parsed = match form {
        IdForm::Wide => serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(&splice(raw, id, "0")),
        _ => serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(raw),
    };
    match parsed {
        Ok(rmcp::model::JsonRpcMessage::Request(r)) if matches!(&r.request, rmcp::model::ClientRequest::CustomRequest(c) if METHODS.contains(&c.method.as_str())) =>
        {
            let head = Head::of(raw);
            let message = params_error(&head.method().unwrap_or_default(), head.params).unwrap_or_default();
            Line::Error {
                id: id_text.into(),
                code: -32602,
                message,
            }
        }
        Ok(m) if matches!(form, IdForm::Wide) => match m {
            rmcp::model::JsonRpcMessage::Request(_) => Line::WideRequest {
                message: Box::new(m),
                id: id_text.into(),
            },
            // An answer to nothing the bridge asked (its own ids fit in i64).
            _ => Line::Skip,
        },
        Ok(m) => Line::Message(Box::new(m)),
        Err(e) => {
            let head = Head::of(raw);
            // A response is never answered, even a malformed one: two peers
            // that answer each other's bad answers would never stop.
            if head.method.is_none() && (head.result.is_some() || head.error.is_some()) {
                tracing::debug!("ignored a malformed response from the IDE: {e}");
                return Line::Skip;
            }
            if matches!(form, IdForm::Invalid) {
                return invalid("null", "Invalid Request: an id must be a number or a string".into());
            }
            // Not JSON after all (reading the id alone does not check the
            // strings it skips are UTF-8): a parse error, for the id read.
            if !matches!(e.classify(), serde_json::error::Category::Data) {
                return Line::Error {
                    id: id_text.into(),
                    code: -32700,
                    message: format!("Parse error: {e}"),
                };
            }
            match head.method().as_deref().and_then(|m| params_error(m, head.params)) {
                Some(message) => Line::Error {
                    id: id_text.into(),
                    code: -32602,
                    message,
                },
                None => invalid(id_text, format!("Invalid Request: {e}")),
            }
        }
    }
}

/// `raw` with `part` (a value read from it, borrowed) replaced by `with`.
fn splice(raw: &[u8], part: &RawValue, with: &str) -> Vec<u8> {
    let start = (part.get().as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
    let end = start + part.get().len();
    if end > raw.len() {
        return raw.to_vec();
    }
    [&raw[..start], with.as_bytes(), &raw[end..]].concat()
}

fn invalid(id: &str, message: String) -> Line {
    Line::Error {
        id: id.into(),
        code: -32600,
        message,
    }
}

/// A line without an id: a notification (or a response the IDE could not
/// correlate, which rmcp ignores).
fn notification(raw: &[u8], method: Option<&str>, params: Option<&RawValue>) -> Line {
    if method == Some("notifications/cancelled") {
        #[derive(serde::Deserialize)]
        struct Cancelled<'a> {
            #[serde(borrow, rename = "requestId")]
            request_id: Option<&'a RawValue>,
        }
        let request = params
            .and_then(|p| serde_json::from_str::<Cancelled>(p.get()).ok())
            .and_then(|c| c.request_id);
        // With a placeholder id: a float form out of f64's range is still an id.
        let message = request.and_then(|r| serde_json::from_slice::<Value>(&splice(raw, r, "0")).ok());
        return match (request, message) {
            (Some(request), Some(message)) => Line::Cancel {
                request: Key::from_wire(request.get()),
                message: Box::new(message),
            },
            _ => Line::Skip,
        };
    }
    match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(raw) {
        Ok(m) => Line::Message(Box::new(m)),
        // Not JSON after all (the members read first skip strings unchecked).
        Err(e) if !matches!(e.classify(), serde_json::error::Category::Data) => Line::Error {
            id: "null".into(),
            code: -32700,
            message: format!("Parse error: {e}"),
        },
        // A notification we do not understand gets no answer (JSON-RPC: never
        // answer a notification); LSP-style chatter is common on shared pipes.
        Err(_) if method.is_some() => Line::Skip,
        Err(e) => invalid("null", format!("Invalid Request: {e}")),
    }
}

fn error_line(id: &str, code: i32, message: &str) -> Vec<u8> {
    let error = json!({ "code": code, "message": message });
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{error}}}\n").into_bytes()
}

/// `item` written with `id` (wire text) in place of the internal id.
fn with_wire_id(item: &TxJsonRpcMessage<RoleServer>, id: &str) -> serde_json::Result<Vec<u8>> {
    let Value::Object(mut fields) = serde_json::to_value(item)? else {
        return serde_json::to_vec(item);
    };
    fields.remove("jsonrpc");
    fields.remove("id");
    let rest = serde_json::to_string(&Value::Object(fields))?;
    let rest = rest.strip_prefix('{').unwrap_or(&rest);
    let sep = if rest == "}" { "" } else { "," };
    let mut line = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id}{sep}{rest}").into_bytes();
    line.push(b'\n');
    Ok(line)
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
    /// Answer bad input. Answers to input whose id could not be read are
    /// rate-limited (a peer that echoes them cannot start a storm); every
    /// request with an id gets its answer.
    async fn reply_error(&mut self, id: &str, code: i32, message: &str) -> std::io::Result<()> {
        if id == "null" {
            let now = Instant::now();
            if now.duration_since(self.replies.0) >= Duration::from_secs(1) {
                self.replies = (now, 0);
            }
            self.replies.1 += 1;
            if self.replies.1 > ERROR_REPLIES_PER_SEC {
                if self.replies.1 == ERROR_REPLIES_PER_SEC + 1 {
                    tracing::warn!(
                        "too much unreadable input from the IDE; not answering it for the rest of this second"
                    );
                }
                return Ok(());
            }
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

impl<R, W> StdioTransport<R, W> {
    /// `notifications/cancelled` for the request written `request` on the
    /// wire, with its internal id put in; `None` when no such request is in
    /// flight (nothing to cancel) or the lifecycle has not started.
    fn cancelled(&mut self, request: &Key, mut message: Value) -> Option<RxJsonRpcMessage<RoleServer>> {
        if !self.started {
            tracing::debug!("ignored a cancellation before initialize");
            return None;
        }
        // rmcp drops the answer to a request the IDE cancelled (a server
        // never answers after a cancellation, in either generation), so its id
        // is free again.
        let id = self.in_flight.forget(request);
        let Some(id) = id else {
            tracing::debug!("ignored a cancellation of {}, which is not in flight", request.wire());
            return None;
        };
        message["params"]["requestId"] = serde_json::to_value(&id).ok()?;
        serde_json::from_value(message)
            .inspect_err(|e| tracing::debug!("ignored a malformed cancellation: {e}"))
            .ok()
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
        let answered = match &item {
            rmcp::model::JsonRpcMessage::Response(r) => Some(&r.id),
            rmcp::model::JsonRpcMessage::Error(e) => e.id.as_ref(),
            _ => None,
        };
        let wire_id = answered.and_then(|id| self.in_flight.answered(id));
        if self.started {
            match &mut item {
                rmcp::model::JsonRpcMessage::Response(r) => super::era::fit_result(&mut r.result, self.modern),
                rmcp::model::JsonRpcMessage::Error(e) => super::era::fit_error(&mut e.error, self.modern),
                _ => {}
            }
        }
        async move {
            let line = match wire_id {
                Some(id) => with_wire_id(&item, &id)?,
                None => {
                    let mut line = serde_json::to_vec(&item)?;
                    line.push(b'\n');
                    line
                }
            };
            write_line(&writer, &line).await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            let line = self.next_line().await?;
            let Some(line) = line else {
                let msg = format!("Invalid Request: message larger than the {} byte limit", self.max_len);
                tracing::warn!("{msg}");
                if self.reply_error("null", -32600, &msg).await.is_err() {
                    return None;
                }
                continue;
            };
            let (mut m, wide) = match classify(&line) {
                Line::Message(m) => (*m, None),
                Line::WideRequest { message, id } => (*message, Some(id)),
                Line::Cancel { request, message } => match self.cancelled(&request, *message) {
                    Some(m) => return Some(m),
                    None => continue,
                },
                Line::Skip => continue,
                Line::Error { id, code, message } => {
                    tracing::debug!("bad input from the IDE: {message}");
                    if self.reply_error(&id, code, &message).await.is_err() {
                        return None;
                    }
                    continue;
                }
            };
            if !self.started {
                let (passes, starts) = before_lifecycle(&m);
                if !passes {
                    tracing::debug!(
                        "ignored before initialize: {}",
                        serde_json::to_string(&m).unwrap_or_default()
                    );
                    continue;
                }
                self.started = starts;
                self.modern = starts && !is_initialize(&m);
            }
            if let rmcp::model::JsonRpcMessage::Request(r) = &mut m {
                let key = match wide {
                    Some(text) => Key::Wide(text),
                    None => Key::Id(r.id.clone()),
                };
                match self.in_flight.admit(key.clone()) {
                    Some(id) => r.id = id,
                    None => {
                        let key = key.wire();
                        let msg = format!(
                            "Invalid Request: id {key} is already used by a request in flight; \
                             each request needs an id of its own"
                        );
                        tracing::warn!("{msg}");
                        if self.reply_error(&key, -32600, &msg).await.is_err() {
                            return None;
                        }
                        continue;
                    }
                }
            }
            return Some(m);
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
            Line::Error { id, code, .. } => (serde_json::from_str(&id).unwrap(), code),
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
        // Bytes that are not UTF-8 inside a string the id is read past.
        assert_eq!(
            code(classify(
                b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"params\":{\"\xff\":1}}"
            )),
            (json!(3), -32700)
        );
        assert_eq!(
            code(classify(b"{\"method\":\"tools/list\",\"x\":{\"\xa1ethod\":1}}")),
            (Value::Null, -32700)
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
