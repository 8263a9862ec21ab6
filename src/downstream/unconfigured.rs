//! `serve` with a config it cannot use.
//!
//! An IDE shows a server that exits at start as "connection closed" and keeps
//! its stderr out of sight, so the precise message (file, line, key) would never
//! reach the user. Instead `serve` still answers `initialize`: the error is in
//! the instructions, in a log notification once the IDE has initialised, and in
//! the error answer to every request but `ping`, where IDEs show it beside the
//! entry. Nothing is bridged until the file is fixed and the server restarted.
#![allow(deprecated)] // logging is deprecated in 2026-07-28 but 2025 IDEs show it

use rmcp::model::*;
use rmcp::service::{NotificationContext, RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::stdio::StdioTransport;

/// The handler that answers every request with the start-up error.
struct Unconfigured {
    message: String,
}

impl Unconfigured {
    fn error(&self) -> McpError {
        McpError::new(ErrorCode::INTERNAL_ERROR, self.message.clone(), None)
    }
}

macro_rules! refuse {
    ($($name:ident($params:ty) -> $out:ty;)*) => {
        $(
            async fn $name(&self, _: $params, _: RequestContext<RoleServer>) -> Result<$out, McpError> {
                Err(self.error())
            }
        )*
    };
}

impl ServerHandler for Unconfigured {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_logging()
            .build();
        ServerConfig::new(caps)
            .with_server_info(Implementation::new("mcp-bridge", env!("CARGO_PKG_VERSION")))
            .with_instructions(self.message.clone())
    }

    refuse! {
        list_tools(Option<PaginatedRequestParams>) -> ListToolsResult;
        call_tool(CallToolRequestParams) -> CallToolResponse;
        list_prompts(Option<PaginatedRequestParams>) -> ListPromptsResult;
        get_prompt(GetPromptRequestParams) -> GetPromptResponse;
        list_resources(Option<PaginatedRequestParams>) -> ListResourcesResult;
        list_resource_templates(Option<PaginatedRequestParams>) -> ListResourceTemplatesResult;
        read_resource(ReadResourceRequestParams) -> ReadResourceResponse;
        subscribe(SubscribeRequestParams) -> ();
        unsubscribe(UnsubscribeRequestParams) -> ();
        complete(CompleteRequestParams) -> CompleteResult;
        set_level(SetLevelRequestParams) -> ();
    }

    async fn on_custom_request(
        &self,
        _: CustomRequest,
        _: RequestContext<RoleServer>,
    ) -> Result<CustomResult, McpError> {
        Err(self.error())
    }

    async fn on_initialized(&self, ctx: NotificationContext<RoleServer>) {
        let note = LoggingMessageNotificationParam::new(LoggingLevel::Error, serde_json::json!(self.message))
            .with_logger("mcp-bridge");
        let _ = ctx.peer.notify_logging_message(note).await;
    }
}

/// Serve `message` (what is wrong and what to do) to the IDE on `read`/`write`
/// until it goes away or `shutdown` fires.
pub async fn serve<R, W>(message: String, read: R, write: W, shutdown: CancellationToken) -> anyhow::Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let transport = StdioTransport::new(read, write, super::stdio::DEFAULT_MAX_MESSAGE);
    let eof = transport.eof();
    let running = tokio::select! {
        r = Unconfigured { message }.serve(transport) => r?,
        _ = shutdown.cancelled() => return Ok(()),
        _ = eof.cancelled() => return Ok(()),
    };
    let gone = running.cancellation_token();
    tokio::select! {
        _ = running.waiting() => {}
        _ = eof.cancelled() => gone.cancel(),
        _ = shutdown.cancelled() => gone.cancel(),
    }
    Ok(())
}
