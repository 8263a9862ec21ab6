//! `serve`: the startup story. Load the config, resolve the servers (config,
//! registry, command line), seed the catalog from disk, answer the IDE on stdio,
//! connect upstreams once the IDE has said who it is, and shut down cleanly on
//! stdin EOF or a signal.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use crate::bridge::{Bridge, Settings};
use crate::catalog::PrefixMode;
use crate::config::{Config, Paths, secs};
use crate::downstream::Downstream;
use crate::downstream::stdio::{DEFAULT_MAX_MESSAGE, StdioTransport};
use crate::registry::{AdHoc, Resolved};
use crate::util::Locked;

/// How long stopping may take once the IDE has gone or a signal came: session
/// DELETEs and in-flight work get this long, so the process exits within a second.
pub const STOP_BOUND: Duration = Duration::from_millis(600);

/// What the `serve` command was given.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub config: Option<PathBuf>,
    pub adhoc: AdHoc,
    pub prefix: Option<PrefixMode>,
}

/// Load the config file named by the options and the environment.
pub fn load_config(opts: &ServeOptions) -> Result<(Paths, Config), crate::config::ConfigError> {
    let paths = Paths::resolve(opts.config.as_deref());
    if paths.config_explicit && !paths.config_file.exists() {
        return Err(crate::config::ConfigError::Missing {
            path: paths.config_file,
        });
    }
    let mut cfg = Config::load(&paths.config_file)?;
    if let Some(p) = opts.prefix {
        cfg.naming.prefix = p;
    }
    Ok((paths, cfg))
}

/// Resolve every server to bridge, once (for the one-shot commands; `serve`
/// keeps following changes through [`crate::live`]).
pub async fn resolve_servers(cfg: &Config, paths: &Paths, adhoc: &AdHoc) -> Resolved {
    let registry = crate::live::load_registry(cfg, paths).await;
    crate::live::resolve(cfg, &registry, adhoc, &mut Default::default())
}

/// The credential store named by `[auth] store` (or `MCP_BRIDGE_CREDENTIAL_STORE`),
/// opened on first use.
pub fn open_store(cfg: &Config, paths: &Paths) -> crate::auth::oauth::Store {
    let mut store = crate::auth::LazyStore::new(cfg.auth.store, &paths.state_dir);
    store.auto_login = cfg.auth.auto_login.then(|| secs(cfg.auth.login_timeout));
    std::sync::Arc::new(store)
}

/// Serve `bridge` to one MCP client over newline-delimited JSON-RPC on `read` and
/// `write` (stdin/stdout for `serve`, non-blocking when they are pipes so a pending
/// read never holds up shutdown; an in-memory pipe for `tools` and `call`), until
/// the client goes away or `shutdown` fires. Upstreams connect once the client has
/// said who it is, so that its capabilities can be mirrored.
pub async fn run_session<R, W>(
    bridge: std::sync::Arc<Bridge>,
    read: R,
    write: W,
    shutdown: CancellationToken,
) -> anyhow::Result<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    run_transport(bridge, StdioTransport::new(read, write, DEFAULT_MAX_MESSAGE), shutdown).await
}

/// [`run_session`] on a transport already made.
async fn run_transport<R, W>(
    bridge: std::sync::Arc<Bridge>,
    transport: StdioTransport<R, W>,
    shutdown: CancellationToken,
) -> anyhow::Result<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // The IDE closing its end stops everything at once: rmcp would drain
    // in-flight handlers for up to 5 s first, and the IDE needs no answers.
    let ide_eof = transport.eof();
    let running = tokio::select! {
        r = Downstream::new(bridge.clone()).serve(transport) => r?,
        _ = shutdown.cancelled() => return Ok(()),
        _ = ide_eof.cancelled() => return Ok(()),
    };
    let peer = running.peer().clone();
    let caps = peer.peer_info().map(|i| i.capabilities.clone()).unwrap_or_default();
    bridge.ide.set(peer, caps);
    bridge.start();

    let ide_gone = running.cancellation_token();
    let waiting = running.waiting();
    tokio::select! {
        r = waiting => tracing::info!("IDE disconnected: {r:?}"),
        _ = ide_eof.cancelled() => {
            tracing::info!("IDE closed its input");
            ide_gone.cancel();
        }
        _ = shutdown.cancelled() => ide_gone.cancel(),
    }
    // Sessions are closed (HTTP DELETE) within this bound; what is still in
    // flight after it is dropped with the process.
    let _ = tokio::time::timeout(STOP_BOUND, bridge.stop()).await;
    Ok(())
}

/// Run the stdio server until the IDE goes away or a signal arrives.
pub async fn serve(opts: ServeOptions, paths: Paths, cfg: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    crate::shutdown::on_signals(shutdown.clone());
    let (r, w) = rmcp::transport::stdio_pipes();
    let transport = StdioTransport::new(r, w, DEFAULT_MAX_MESSAGE);
    // Nothing here waits on the network: the registry comes from its file or
    // its disk cache, and with neither it is read in the background by `live`,
    // its servers joining when it answers (list requests wait for that within
    // `[timeouts] first_list`).
    let (mut live, resolved) = crate::live::Live::start(opts.adhoc, opts.prefix, paths.clone(), cfg.clone());
    if resolved.servers.is_empty() && !live.pending() {
        tracing::warn!(
            "no servers to bridge: configure a registry or [[servers]] in {}, or pass URLs to `serve`",
            paths.config_file.display()
        );
    }
    let settings = Settings::from_config(&cfg, Some(paths.cache_dir.clone()));
    let store = open_store(&cfg, &paths);
    let bridge = Bridge::new(settings, resolved.servers, Some(store), shutdown.clone());
    if live.pending() {
        bridge.await_source();
    }
    let audit = audit_log(&cfg, &paths);
    bridge.set_audit(audit.clone());
    let mut starter = TelemetryStarter {
        cfg: cfg.clone(),
        state_dir: paths.state_dir.clone(),
        shutdown: shutdown.clone(),
        task: Arc::default(),
        started: false,
    };
    starter.try_start(live.collector(), &bridge);
    let exporting = starter.task.clone();
    if !starter.started {
        live.on_collector(Box::new(move |collector, bridge| starter.try_start(collector, bridge)));
    }
    // Taking the lock may wait for a reader holding it for an instant: not on
    // the runtime thread.
    let state_dir = paths.state_dir.clone();
    let opened = tokio::task::spawn_blocking(move || crate::state::Publisher::open(&state_dir))
        .await
        .map_err(std::io::Error::other)
        .and_then(|opened| opened);
    let publisher = match opened {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::warn!(
                "cannot publish the live state in {} (`mcp-bridge status` will not see this bridge): {e}",
                paths.state_dir.display()
            );
            None
        }
    };
    let publishing = publisher.as_ref().map(|p| {
        tokio::spawn(publish(
            bridge.clone(),
            live.state.clone(),
            p.clone(),
            paths.config_file.clone(),
            shutdown.clone(),
        ))
    });
    tokio::spawn(live.run(bridge.clone(), shutdown.clone()));

    let result = run_transport(bridge, transport, shutdown.clone()).await;
    // However the session ended (even before `initialize`), the whole tree ends
    // with it: the sources' task, the publisher, the upstreams.
    shutdown.cancel();
    tokio::join!(
        audit.flush(Duration::from_millis(300)),
        async {
            if let Some(task) = publishing {
                let _ = tokio::time::timeout(Duration::from_millis(300), task).await;
            }
        },
        async {
            // The exporter's last export is bounded by itself (half a second).
            let task = exporting.locked().take();
            if let Some(task) = task {
                let _ = tokio::time::timeout(Duration::from_millis(700), task).await;
            }
        }
    );
    // Dropping the last handle removes the published state (two unlinks, off
    // the runtime thread like every other file change while serving).
    if let Some(p) = publisher {
        let _ = tokio::task::spawn_blocking(move || drop(p)).await;
    }
    result
}

/// `serve` with a config it cannot use: answer the IDE with `error` (see
/// [`crate::downstream::unconfigured`]) until it goes away.
pub async fn serve_unconfigured(error: &crate::config::ConfigError) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    crate::shutdown::on_signals(shutdown.clone());
    let (r, w) = rmcp::transport::stdio_pipes();
    let message = format!("mcp-bridge cannot start: {error}. Fix it, then restart mcp-bridge in your IDE.");
    crate::downstream::unconfigured::serve(message, r, w, shutdown).await
}

/// Starts the OpenTelemetry export once a collector is named (`[telemetry]`,
/// `OTEL_*`, or the registry's `collector`) and makes it the process's: at
/// start, or when the registry's first answer names one (a first run with
/// nothing cached). The export task ends with one last export after `shutdown`.
struct TelemetryStarter {
    cfg: Config,
    state_dir: PathBuf,
    shutdown: CancellationToken,
    /// The export task, awaited (bounded) when `serve` ends.
    task: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
    started: bool,
}

impl TelemetryStarter {
    fn try_start(&mut self, collector: Option<String>, bridge: &Arc<Bridge>) {
        use crate::telemetry::{Observed, Observer, Plan, Telemetry};
        if self.started {
            if collector.is_some() {
                tracing::info!(
                    "telemetry: the registry names another collector; it is used when the bridge next starts"
                );
            }
            return;
        }
        let env = |k: &str| std::env::var(k).ok();
        let plan = match Plan::resolve(&self.cfg.telemetry, &env, collector) {
            Ok(Some(plan)) => plan,
            Ok(None) => return,
            Err(why) => {
                tracing::warn!("telemetry: {why}");
                return;
            }
        };
        tracing::info!("telemetry: exporting to {}", plan.destination());
        let weak = Arc::downgrade(bridge);
        let observe: Observer = Arc::new(move || {
            weak.upgrade()
                .map(|b| Observed {
                    client_name: b.ide.client_name(),
                    session: b.ide.peer().is_some(),
                    servers: b.connection_states(),
                })
                .unwrap_or_default()
        });
        let id_file = self.state_dir.join("telemetry-id");
        let (telemetry, task) = Telemetry::start(plan, Some(id_file), observe, self.shutdown.clone());
        telemetry.notify_on_change(bridge.changed.clone());
        crate::telemetry::install(telemetry);
        bridge.publish_minutes(&bridge.specs());
        *self.task.locked() = Some(task);
        self.started = true;
    }
}

/// The audit log `[audit]` asks for (in the state dir), or one that records nothing.
pub fn audit_log(cfg: &Config, paths: &Paths) -> crate::audit::AuditLog {
    if cfg.audit.enabled {
        crate::audit::AuditLog::start(&paths.state_dir, &cfg.audit)
    } else {
        crate::audit::AuditLog::disabled()
    }
}

/// Keep `<state_dir>/run/<pid>.json` current for `mcp-bridge status`: rewritten
/// when something it shows changed, at most a few times a second (each write
/// is a durable atomic replace).
async fn publish(
    bridge: Arc<Bridge>,
    sources: Arc<std::sync::Mutex<crate::live::SourcesState>>,
    publisher: Arc<crate::state::Publisher>,
    config: PathBuf,
    shutdown: CancellationToken,
) {
    let mut snapshot = crate::state::Snapshot::new(&config);
    let mut written: Option<crate::state::Snapshot> = None;
    loop {
        {
            let src = sources.locked();
            snapshot.registry = src.registry.source.as_ref().map(|source| crate::state::RegistryState {
                source: source.clone(),
                last_success: src.registry.last_success,
                last_error: src.registry.last_error.clone(),
                servers: src.registry.entries,
            });
            snapshot.config_error = src.config_error.clone();
        }
        snapshot.servers = bridge.server_states();
        snapshot.telemetry = crate::telemetry::global().state();
        if written.as_ref() != Some(&snapshot) {
            let mut stamped = snapshot.clone();
            stamped.updated_at = crate::util::now_unix();
            // A durable write (fsync) must not hold up the runtime thread: the
            // first one would otherwise come before the IDE's `initialize` answer.
            let p = publisher.clone();
            match tokio::task::spawn_blocking(move || p.write(&stamped)).await {
                Ok(Err(e)) => tracing::debug!("cannot write the live state: {e}"),
                Err(e) => tracing::debug!("cannot write the live state: {e}"),
                Ok(Ok(())) => {}
            }
            written = Some(snapshot.clone());
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = bridge.changed.notified() => {}
        }
        // Coalesce a burst of changes (a reconnect storm, a registry update)
        // into one write.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}
