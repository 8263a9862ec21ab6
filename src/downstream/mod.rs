//! The IDE side: the `ServerHandler` an IDE talks to over stdio. Each method
//! looks its name up in the merged catalog, hands the request to the call path
//! ([`route`], and [`call`] for `tools/call`), and answers with the result or an
//! error in the IDE's words ([`errors`]); list requests are answered from the
//! catalog itself. This is the only module that builds `ErrorData` for the IDE,
//! and [`stdio`] is the only code that touches stdout.

#![allow(deprecated)] // sampling and roots are deprecated in 2026-07-28 but still relayed

pub mod approval;
mod call;
pub mod era;
mod errors;
pub mod ids;
mod login;
mod route;
pub mod stdio;
mod trace;
pub mod unconfigured;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientRequest, CompleteRequestParams, CompleteResult, Cursor,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    Reference, Request, ServerCapabilities, ServerConfig, ServerResult, SetLevelRequestParams, SubscribeRequestParams,
    UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use crate::bridge::Bridge;
use errors::{refused, unexpected, unknown};

#[derive(Clone)]
pub struct Downstream {
    bridge: Arc<Bridge>,
    /// What the user allowed for this IDE session.
    approvals: Arc<approval::Approvals>,
    /// Login links out to a 2026-07-28 IDE.
    logins: Arc<login::Logins>,
}

impl Downstream {
    pub fn new(bridge: Arc<Bridge>) -> Self {
        Downstream {
            bridge,
            approvals: Arc::default(),
            logins: Arc::default(),
        }
    }
}

/// One page of a merged list, as the IDE asked for it.
macro_rules! list_page {
    ($self:ident, $p:ident, $field:ident, $result:ident) => {{
        $self.bridge.first_lists().await;
        let cat = $self.bridge.catalog();
        let cursor = $p.as_ref().and_then(|p| p.cursor.as_ref());
        let (items, next) = page(&cat.$field, $self.bridge.settings().page_size, cursor)?;
        let mut r = $result::with_all_items(items);
        r.next_cursor = next;
        Ok(r)
    }};
}

/// An opaque cursor over the merged list: the offset of the next page.
fn page<T: Clone>(items: &[T], size: usize, cursor: Option<&Cursor>) -> Result<(Vec<T>, Option<Cursor>), McpError> {
    let start = match cursor {
        None => 0,
        Some(c) => c
            .strip_prefix("o:")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| McpError::invalid_params(format!("unknown cursor {c:?}"), None))?,
    };
    if size == 0 {
        return Ok((items[start..].to_vec(), None));
    }
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| format!("o:{end}"));
    Ok((items[start..end].to_vec(), next))
}

impl ServerHandler for Downstream {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_completions()
            .enable_logging()
            .build();
        ServerConfig::new(caps)
            .with_server_info(Implementation::new("mcp-bridge", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "mcp-bridge: tools of several remote MCP servers, named <server>__<tool> when more than one server is bridged.",
            )
    }

    async fn list_tools(
        &self,
        p: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.bridge
            .learn_client(|| ctx.meta.client_info().map(|i| i.name))
            .await;
        self.bridge.first_lists().await;
        self.bridge.note_tools_listed();
        let cat = self.bridge.catalog();
        let budget = cat.policy().max_tools(self.bridge.ide.client_name().as_deref());
        let Some(tools) = cat.listed_tools(budget) else {
            return list_page!(self, p, tools, ListToolsResult);
        };
        let cursor = p.as_ref().and_then(|p| p.cursor.as_ref());
        let (items, next) = page(&tools, self.bridge.settings().page_size, cursor)?;
        let mut r = ListToolsResult::with_all_items(items);
        r.next_cursor = next;
        Ok(r)
    }

    async fn call_tool(
        &self,
        params: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.bridge
            .learn_client(|| ctx.meta.client_info().map(|i| i.name))
            .await;
        self.call(params, ctx).await
    }

    async fn list_prompts(
        &self,
        p: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        list_page!(self, p, prompts, ListPromptsResult)
    }

    async fn get_prompt(
        &self,
        mut params: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.lookup(|c| c.prompt(&params.name).map(drop)).await;
        let route = {
            let cat = self.bridge.catalog();
            match cat.prompt(&params.name) {
                Some(r) => r.clone(),
                None => {
                    return Err(match cat.hidden(&params.name) {
                        Some(why) => refused("prompt", &params.name, why),
                        None => self.unknown_name("prompt", &params.name),
                    });
                }
            }
        };
        let up = self.upstream(&route).await?;
        params.name = route.name.clone();
        match self
            .forward(&up, ClientRequest::GetPromptRequest(Request::new(params)), &ctx)
            .await?
        {
            ServerResult::GetPromptResult(mut r) => {
                for m in r.messages.iter_mut() {
                    self.ide_uris(&route.server, std::slice::from_mut(&mut m.content));
                }
                Ok(GetPromptResponse::Complete(r))
            }
            ServerResult::InputRequiredResult(ir) if self.bridge.ide.is_modern() => {
                Ok(GetPromptResponse::InputRequired(ir))
            }
            other => Err(unexpected("prompts/get", &other)),
        }
    }

    async fn list_resources(
        &self,
        p: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        list_page!(self, p, resources, ListResourcesResult)
    }

    async fn list_resource_templates(
        &self,
        p: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        list_page!(self, p, resource_templates, ListResourceTemplatesResult)
    }

    async fn read_resource(
        &self,
        mut params: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let candidates = self
            .lookup(|c| Some(c.resource_candidates(&params.uri)).filter(|c| !c.is_empty()))
            .await;
        if let Some(routes) = candidates.filter(|c| c.len() > 1) {
            return self.read_from_any(params, routes, &ctx).await;
        }
        let (up, upstream_uri) = self.resource_upstream(&params.uri).await?;
        let ide_uri = std::mem::replace(&mut params.uri, upstream_uri);
        self.read_from(&up, params, ide_uri, &ctx).await
    }

    async fn subscribe(
        &self,
        mut params: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let (up, upstream_uri) = self.resource_upstream(&params.uri).await?;
        params.uri = upstream_uri;
        self.forward(&up, ClientRequest::SubscribeRequest(Request::new(params)), &ctx)
            .await?;
        Ok(())
    }

    async fn unsubscribe(
        &self,
        mut params: UnsubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let (up, upstream_uri) = self.resource_upstream(&params.uri).await?;
        params.uri = upstream_uri;
        self.forward(&up, ClientRequest::UnsubscribeRequest(Request::new(params)), &ctx)
            .await?;
        Ok(())
    }

    async fn complete(
        &self,
        mut params: CompleteRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        match &params.r#ref {
            Reference::Prompt(p) => self.lookup(|c| c.prompt(&p.name).map(drop)).await,
            Reference::Resource(r) => self.lookup(|c| c.template(&r.uri).map(drop)).await,
            _ => None,
        };
        let cat = self.bridge.catalog();
        let route = match &mut params.r#ref {
            Reference::Prompt(p) => {
                let route = cat.prompt(&p.name).cloned().ok_or_else(|| unknown("prompt", &p.name))?;
                p.name = route.name.clone();
                route
            }
            Reference::Resource(r) => {
                let route = cat
                    .template(&r.uri)
                    .ok_or_else(|| unknown("resource template", &r.uri))?;
                r.uri = route.name.clone();
                route
            }
            _ => return Err(McpError::invalid_params("unsupported completion reference", None)),
        };
        let up = self.upstream(&route).await?;
        match self
            .forward(&up, ClientRequest::CompleteRequest(Request::new(params)), &ctx)
            .await?
        {
            ServerResult::CompleteResult(r) => Ok(r),
            other => Err(unexpected("completion/complete", &other)),
        }
    }

    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        // List changes of every kind; rmcp intersects with what was asked and
        // advertised. Per-resource subscriptions are relayed only for legacy IDEs.
        let mut accepted = requested.clone();
        accepted.resource_subscriptions = None;
        Some(accepted)
    }

    async fn listen(&self, ctx: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        let sink = ctx.sink().clone();
        let id = sink.id().clone();
        self.bridge.add_listener(sink);
        tokio::select! {
            _ = ctx.cancelled() => {}
            _ = self.bridge.shutdown.cancelled() => {}
        }
        self.bridge.remove_listener(&id);
        Ok(())
    }

    async fn on_custom_request(
        &self,
        request: rmcp::model::CustomRequest,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CustomResult, McpError> {
        Err(McpError::new(
            rmcp::model::ErrorCode::METHOD_NOT_FOUND,
            format!("Method not found: {}", request.method),
            None,
        ))
    }

    async fn set_level(&self, p: SetLevelRequestParams, _ctx: RequestContext<RoleServer>) -> Result<(), McpError> {
        // Filter what the bridge relays; upstreams keep their own levels.
        self.bridge.ide.set_log_level(p.level);
        Ok(())
    }

    async fn on_roots_list_changed(&self, _ctx: NotificationContext<RoleServer>) {
        for up in self.bridge.upstreams() {
            if let crate::upstream::ConnState::Ready { peer, protocol } = up.state()
                && protocol.has_initialize()
            {
                let _ = peer.notify_roots_list_changed().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging() {
        let items: Vec<u32> = (0..5).collect();
        let (a, n) = page(&items, 2, None).unwrap();
        assert_eq!((a, n.as_deref()), (vec![0, 1], Some("o:2")));
        let (b, n) = page(&items, 2, Some(&"o:4".to_string())).unwrap();
        assert_eq!((b, n), (vec![4], None));
        let (all, n) = page(&items, 0, None).unwrap();
        assert_eq!((all.len(), n), (5, None));
        assert!(page(&items, 2, Some(&"o:9".to_string())).is_err());
        assert!(page(&items, 2, Some(&"zz".to_string())).is_err());
    }
}
