//! A bridge in this process with an MCP client on an in-memory pipe: the same
//! handler, framing and routing as `serve`, for the commands that talk to the
//! servers (`tools`, `call`, `doctor`).

use std::sync::Arc;
use std::time::Duration;

use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use tokio_util::sync::CancellationToken;

use crate::app::{self, ServeOptions};
use crate::bridge::{Bridge, Settings};
use crate::config::{Config, Paths, secs};
use crate::registry::ServerSpec;
use crate::util::printable_lines;

/// The client end of a bridge in this process, and the bridge.
pub(super) type Local = (RunningService<RoleClient, ()>, Arc<Bridge>);

/// A bridge for the configured servers (and the options' ad-hoc ones), once
/// every server has had its first connection attempt; the servers that failed
/// are named on stderr.
pub(super) async fn client(opts: &ServeOptions) -> anyhow::Result<Local> {
    let (paths, cfg) = app::load_config(opts)?;
    let resolved = app::resolve_servers(&cfg, &paths, &opts.adhoc).await;
    let (client, bridge) = bridge(&paths, &cfg, resolved.servers).await?;
    for u in bridge.upstreams() {
        if let crate::upstream::ConnState::Failed { error, .. } = u.state() {
            eprintln!("{}: {}", u.spec.id, printable_lines(&error));
        }
    }
    Ok((client, bridge))
}

/// A bridge for `servers` in this process, with a client on an in-memory pipe,
/// once every server has had its first connection attempt.
pub(super) async fn bridge(paths: &Paths, cfg: &Config, servers: Vec<ServerSpec>) -> anyhow::Result<Local> {
    let settings = Settings::from_config(cfg, Some(paths.cache_dir.clone()));
    let shutdown = CancellationToken::new();
    let bridge = Bridge::new(settings, servers, Some(app::open_store(cfg, paths)), shutdown.clone());
    // `mcp-bridge call` makes real calls: they are recorded like the IDE's.
    bridge.set_audit(app::audit_log(cfg, paths));
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (r, w) = tokio::io::split(theirs);
    let b = bridge.clone();
    tokio::spawn(async move { app::run_session(b, r, w, shutdown).await });
    let client = ().serve(ours).await?;
    bridge.settle(secs(cfg.timeouts.connect) + Duration::from_secs(1)).await;
    Ok((client, bridge))
}
