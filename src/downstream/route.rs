//! Routing: from the name or URI the IDE uses to the server that has it and the
//! name that server knows, waiting (bounded) for servers on their first listing;
//! forwarding one request there with the IDE's progress token and cancellation
//! ([`crate::upstream::Caller`]); and the URIs in answers made readable back
//! through the bridge.

use std::sync::Arc;

use rmcp::model::{
    ClientRequest, ContentBlock, ReadResourceRequestParams, ReadResourceResponse, Request, ServerResult,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};

use super::Downstream;
use super::errors::{not_connected, refused, unexpected, unknown, unknown_unlisted};
use crate::catalog::Route;
use crate::config::secs;
use crate::upstream::{Caller, RequestError, UpstreamHandle};

impl Downstream {
    /// Look a name up in the catalog; when it is not there while some server
    /// is still on its first listing, wait for that (bounded) and look again,
    /// so that a call made right after `initialize` on a first launch finds
    /// its tool instead of failing "unknown tool".
    pub(super) async fn lookup<T>(&self, find: impl Fn(&crate::catalog::Catalog) -> Option<T>) -> Option<T> {
        if let Some(found) = find(&self.bridge.catalog()) {
            return Some(found);
        }
        if !self.bridge.awaiting_first_lists() {
            return None;
        }
        self.bridge.first_lists().await;
        find(&self.bridge.catalog())
    }

    /// "unknown tool" (or prompt), naming the servers that have not listed
    /// anything yet and why: the name may well be one of theirs.
    pub(super) fn unknown_name(&self, kind: &str, name: &str) -> McpError {
        unknown_unlisted(kind, name, &self.bridge.unlisted())
    }

    /// The handle of the server a route leads to, waiting up to `ready_wait`
    /// for a server that is just being started.
    pub(super) async fn upstream(&self, route: &Route) -> Result<Arc<UpstreamHandle>, McpError> {
        let wait = secs(self.bridge.settings().timeouts.ready_wait);
        self.bridge
            .upstream_when_started(&route.server, wait)
            .await
            .ok_or_else(|| not_connected(&route.server))
    }

    /// The server owning an IDE-facing resource URI, and the URI it knows.
    pub(super) async fn resource_upstream(&self, ide_uri: &str) -> Result<(Arc<UpstreamHandle>, String), McpError> {
        let route = self
            .lookup(|c| c.resource(ide_uri))
            .await
            .ok_or_else(|| unknown("resource", ide_uri))?;
        if let Some(why) = self.bridge.catalog().resource_refused(&route) {
            return Err(refused("resource", ide_uri, &why));
        }
        Ok((self.upstream(&route).await?, route.name))
    }

    /// Send one request to `up` on behalf of the IDE request `ctx`: its
    /// progress token and its cancellation go with it.
    pub(super) async fn forward(
        &self,
        up: &UpstreamHandle,
        mut request: ClientRequest,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ServerResult, RequestError> {
        let settings = self.bridge.settings();
        let caller = Caller {
            progress: ctx.meta.get_progress_token(),
            ide: &ctx.peer,
            cancelled: &ctx.ct,
        };
        let telemetry = crate::telemetry::global();
        let traced = super::trace::propagate(telemetry, &mut request, &ctx.meta);
        let r = up.request(request, &settings.timeouts, caller).await;
        if let Some(t) = traced {
            t.finish(telemetry, &up.id, &r);
        }
        r
    }

    pub(super) async fn read_from(
        &self,
        up: &UpstreamHandle,
        params: ReadResourceRequestParams,
        ide_uri: String,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        match self
            .forward(up, ClientRequest::ReadResourceRequest(Request::new(params)), ctx)
            .await?
        {
            ServerResult::ReadResourceResult(mut r) => {
                // Contents carry the upstream URI; give the IDE back the one it asked for.
                for c in r.contents.iter_mut() {
                    rewrite_contents_uri(c, &ide_uri);
                }
                Ok(ReadResourceResponse::Complete(r))
            }
            ServerResult::InputRequiredResult(ir) if self.bridge.ide.is_modern() => {
                Ok(ReadResourceResponse::InputRequired(ir))
            }
            other => Err(unexpected("resources/read", &other)),
        }
    }

    /// A URI several servers' templates match (or, with no template, any
    /// resource server may know): ask each in turn, and answer with the first
    /// that has it. Reads change nothing, so asking one too many is harmless.
    pub(super) async fn read_from_any(
        &self,
        params: ReadResourceRequestParams,
        routes: Vec<Route>,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let mut first_error = None;
        for route in routes {
            if let Some(why) = self.bridge.catalog().resource_refused(&route) {
                first_error.get_or_insert(refused("resource", &params.uri, &why));
                continue;
            }
            let up = match self.upstream(&route).await {
                Ok(up) => up,
                Err(e) => {
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            match self.read_from(&up, params.clone(), params.uri.clone(), ctx).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| unknown("resource", &params.uri)))
    }

    /// Give the IDE URIs it can read back through the bridge for the resource
    /// links and embedded resources `server` put in a result (see
    /// [`crate::catalog::Catalog::result_uri`]).
    pub(super) fn ide_uris(&self, server: &str, content: &mut [ContentBlock]) {
        let cat = self.bridge.catalog();
        for block in content {
            let uri = match block {
                ContentBlock::ResourceLink(r) => &mut r.uri,
                ContentBlock::Resource(e) => match &mut e.resource {
                    rmcp::model::ResourceContents::TextResourceContents { uri, .. } => uri,
                    rmcp::model::ResourceContents::BlobResourceContents { uri, .. } => uri,
                    _ => continue,
                },
                _ => continue,
            };
            if let Some(ide) = cat.result_uri(server, uri) {
                *uri = ide;
            }
        }
    }
}

/// Only a read of a rewritten URI changes the contents' URI, and only when it
/// equals the upstream URI that was read.
fn rewrite_contents_uri(c: &mut rmcp::model::ResourceContents, ide_uri: &str) {
    if let Some((_, upstream_uri)) = crate::catalog::unrewrite_uri(ide_uri) {
        let uri = match c {
            rmcp::model::ResourceContents::TextResourceContents { uri, .. } => uri,
            rmcp::model::ResourceContents::BlobResourceContents { uri, .. } => uri,
            _ => return,
        };
        if *uri == upstream_uri {
            *uri = ide_uri.to_owned();
        }
    }
}
