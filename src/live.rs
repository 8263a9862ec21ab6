//! Following the world while serving: the registry API is polled in the
//! background, and the config file and a local registry file are watched. Each
//! change is resolved into a new server list and handed to
//! [`Bridge::reconfigure`], which connects, drops or reconnects only the servers
//! that changed. Anything that fails here (a registry down or answering
//! garbage, an edit that does not parse) keeps the last good state and is said
//! once, not at every poll. [`Live::run`] ends when the root token is
//! cancelled, also mid-poll or mid-debounce; the registry cache it keeps is
//! written on a blocking thread.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::Watcher;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bridge::{Bridge, Settings};
use crate::config::{Config, Paths, secs};
use crate::registry::sync::{Fetched, Mirror};
use crate::registry::{self, AdHoc, Resolved};
use crate::util::Locked;

/// How quiet the watched files must be before a change is applied: editors
/// write a file in several steps (truncate, write, rename over).
const DEBOUNCE: Duration = Duration::from_millis(300);
/// A registry that only ever answers in full is re-read whole this often, in
/// polls, to notice entries it deleted outright.
const FULL_EVERY: u32 = 24;

/// The registry as the bridge last knew it, and how that knowledge stands.
#[derive(Debug, Clone, Default)]
pub struct RegistryCopy {
    /// The API base URL or the file; `None` when no registry is configured.
    pub source: Option<String>,
    pub mirror: Mirror,
    /// When the registry last answered well (unix seconds).
    pub last_success: Option<u64>,
    pub last_error: Option<String>,
    /// Started from the disk cache: poll at once.
    pub from_cache: bool,
    /// An API with no cached copy: the first read is still to come (in the
    /// background while serving), and list requests wait for it.
    pub pending: bool,
}

impl RegistryCopy {
    /// Whether the API should be asked at once rather than after the interval.
    fn poll_now(&self) -> bool {
        self.from_cache || self.pending || self.last_error.is_some()
    }
}

/// The registry as far as it is known without the network: the file; or the
/// API's disk cache, or, with none, nothing yet and `pending` set. Never waits
/// on a registry, so that the IDE never does.
pub fn load_local(cfg: &Config, paths: &Paths) -> RegistryCopy {
    let mut copy = RegistryCopy::default();
    let Some(rc) = &cfg.registry else { return copy };
    if let Some(file) = &rc.file {
        copy.source = Some(file.display().to_string());
        match registry::read_file(file) {
            Ok(servers) => {
                copy.mirror = Mirror::new(servers);
                copy.last_success = Some(crate::util::now_unix());
            }
            Err(e) => {
                tracing::error!("{e}");
                copy.last_error = Some(e.to_string());
            }
        }
        cap(&mut copy, rc.max_servers);
        return copy;
    }
    let Some(url) = &rc.url else { return copy };
    copy.source = Some(url.clone());
    let largest = rc.max_page_bytes.saturating_mul(registry::sync::MAX_TOTAL_PAGES_BYTES) as u64;
    match registry::load_mirror(&paths.cache_dir, url, largest) {
        Ok(Some((mirror, at))) => {
            tracing::debug!(
                "starting from the registry cached {} s ago",
                crate::util::now_unix().saturating_sub(at)
            );
            copy.mirror = mirror;
            copy.last_success = Some(at);
            copy.from_cache = true;
            cap(&mut copy, rc.max_servers);
        }
        Ok(None) => copy.pending = true,
        Err(e) => {
            tracing::warn!("{e}; reading the registry afresh");
            copy.pending = true;
        }
    }
    copy
}

/// Keep at most `max` entries of the copy, saying so.
fn cap(copy: &mut RegistryCopy, max: usize) {
    if copy.mirror.servers.len() > max {
        copy.mirror.servers.truncate(max);
        warn_capped(copy.source.as_deref().unwrap_or("registry"), max);
    }
}

fn warn_capped(source: &str, max: usize) {
    tracing::warn!(
        "registry {source} lists more than {max} servers: the bridge takes the first {max} \
         (raise [registry] max_servers to take more)"
    );
}

/// The files touched from `first` on, once the watched files have been quiet
/// for [`DEBOUNCE`] (at most about two seconds of a steady stream of events).
async fn debounce(first: PathBuf, rx: &mut mpsc::UnboundedReceiver<PathBuf>) -> HashSet<PathBuf> {
    let mut touched = HashSet::from([first]);
    let until = Instant::now() + Duration::from_secs(2);
    while let Ok(Some(p)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
        touched.insert(p);
        if Instant::now() > until {
            break;
        }
    }
    touched
}

/// Run a file read on a blocking thread: the runtime is one thread, and a read
/// of a slow disk (a network home, a registry copy of megabytes) would stall
/// every server and the IDE. `None` only when the runtime is shutting down.
async fn off_thread<T: Send + 'static>(read: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(read).await.ok()
}

/// Keep `mirror` as the registry cache for `url`, off the runtime thread: the
/// copy is serialised here, and the durable write (up to megabytes, synced)
/// runs on a blocking thread. Awaited, so writes land in the order of polls.
async fn store_cache(cache_dir: &Path, url: &str, mirror: &Mirror) {
    let bytes = match registry::mirror_bytes(url, mirror) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("cannot write the registry cache: {e}");
            return;
        }
    };
    let path = registry::mirror_path(cache_dir);
    let written = tokio::task::spawn_blocking(move || crate::cache::write_atomic(&path, &bytes))
        .await
        .map_err(std::io::Error::other)
        .and_then(|w| w);
    if let Err(e) = written {
        tracing::warn!("cannot write the registry cache: {e}");
    }
}

/// Read the configured registry: the file; or the API, starting from its disk
/// cache when there is one, else asking it, bounded by the connect timeout
/// (for the one-shot commands; `serve` reads with [`load_local`] and asks the
/// API in the background).
pub async fn load_registry(cfg: &Config, paths: &Paths) -> RegistryCopy {
    let mut copy = load_local(cfg, paths);
    let (Some(rc), Some(url)) = (&cfg.registry, copy.source.clone()) else {
        return copy;
    };
    if !copy.pending {
        return copy;
    }
    copy.pending = false;
    let client = crate::net::builder().build().unwrap_or_default();
    let fetched = tokio::time::timeout(
        secs(cfg.timeouts.connect),
        registry::sync::fetch_since(&client, &url, rc, None, None),
    )
    .await
    .unwrap_or_else(|_| {
        Err(registry::RegistryError::Http {
            url: url.clone(),
            message: format!("no answer within {} s", cfg.timeouts.connect),
        })
    });
    match fetched {
        Ok(Fetched::Servers {
            servers,
            validators,
            capped,
        }) => {
            if capped {
                warn_capped(&url, rc.max_servers);
            }
            copy.mirror = Mirror::new(servers);
            copy.mirror.validators = validators;
            copy.last_success = Some(crate::util::now_unix());
            store_cache(&paths.cache_dir, &url, &copy.mirror).await;
        }
        Ok(Fetched::NotModified) => {}
        Err(e) => {
            tracing::error!("{e}");
            copy.last_error = Some(e.to_string());
        }
    }
    copy
}

/// New problems logged one by one up to this many; more are summed up in one line.
const PROBLEMS_SAID_EACH: usize = 3;

/// Resolve config, registry and command line into servers, logging each
/// problem the first time it is seen (`said` remembers them across reloads):
/// one line each for a few, one line with the count and examples for more (a
/// registry of thousands of entries must not log thousands of lines).
pub fn resolve(cfg: &Config, registry: &RegistryCopy, adhoc: &AdHoc, said: &mut HashSet<String>) -> Resolved {
    let resolved = registry::resolve(cfg, &registry.mirror.servers, adhoc);
    let fresh: Vec<&registry::Problem> = resolved
        .problems
        .iter()
        .filter(|p| said.insert(format!("{}: {}", p.server, p.reason)))
        .collect();
    if fresh.len() <= PROBLEMS_SAID_EACH {
        for p in fresh {
            tracing::warn!(server = %p.server, "not bridged: {}", p.reason);
        }
    } else {
        let examples: Vec<String> = fresh
            .iter()
            .take(PROBLEMS_SAID_EACH)
            .map(|p| format!("{}: {}", p.server, p.reason))
            .collect();
        tracing::warn!(
            "{} servers not bridged, for example {}; `mcp-bridge status` lists them all",
            fresh.len(),
            examples.join("; ")
        );
    }
    resolved
}

/// The registry as `mcp-bridge status` shows it: how the copy stands, not the
/// copy (which can be megabytes, and is published on every poll).
#[derive(Debug, Clone, Default)]
pub struct RegistrySummary {
    pub source: Option<String>,
    pub last_success: Option<u64>,
    pub last_error: Option<String>,
    /// Entries in the copy.
    pub entries: usize,
}

impl RegistryCopy {
    pub fn summary(&self) -> RegistrySummary {
        RegistrySummary {
            source: self.source.clone(),
            last_success: self.last_success,
            last_error: self.last_error.clone(),
            entries: self.mirror.servers.len(),
        }
    }
}

/// What `mcp-bridge status` can learn of the live sources.
#[derive(Debug, Clone, Default)]
pub struct SourcesState {
    pub registry: RegistrySummary,
    /// Why the last edit of the config file was refused, if it was.
    pub config_error: Option<String>,
    /// Servers the registry or config named that could not be bridged.
    pub problems: Vec<registry::Problem>,
}

/// The background task that keeps the bridge's server list current.
pub struct Live {
    /// Servers named on the command line, bridged beside the config's.
    adhoc: AdHoc,
    /// `serve --prefix`, which wins over the config's on every reload.
    prefix: Option<crate::catalog::PrefixMode>,
    paths: Paths,
    cfg: Config,
    registry: RegistryCopy,
    client: reqwest::Client,
    said: HashSet<String>,
    /// Consecutive failed polls.
    failures: u32,
    /// The last read stopped at `[registry] max_servers` (said once, not per poll).
    capped: bool,
    polls_since_full: u32,
    /// Shared with the state publisher.
    pub state: Arc<Mutex<SourcesState>>,
    /// The registry's OTLP collector as last handed to `on_collector`.
    collector: Option<String>,
    /// Told when the registry names another collector (see [`Live::on_collector`]).
    on_collector: Option<CollectorHook>,
}

/// Called with the registry's collector when it changes, and the bridge.
pub type CollectorHook = Box<dyn FnMut(Option<String>, &Arc<Bridge>) + Send>;

impl Live {
    /// Load what is known of the registry without the network (its file or
    /// cache) and resolve the first server list. When there is nothing cached,
    /// [`Live::pending`] is set and [`Live::run`] asks the API at once.
    pub fn start(
        adhoc: AdHoc,
        prefix: Option<crate::catalog::PrefixMode>,
        paths: Paths,
        cfg: Config,
    ) -> (Live, Resolved) {
        let registry = load_local(&cfg, &paths);
        let mut said = HashSet::new();
        let resolved = resolve(&cfg, &registry, &adhoc, &mut said);
        let state = SourcesState {
            registry: registry.summary(),
            config_error: None,
            problems: resolved.problems.clone(),
        };
        let live = Live {
            adhoc,
            prefix,
            paths,
            cfg,
            registry,
            client: crate::net::builder().build().unwrap_or_default(),
            said,
            failures: 0,
            capped: false,
            polls_since_full: 0,
            state: Arc::new(Mutex::new(state)),
            collector: None,
            on_collector: None,
        };
        (live, resolved)
    }

    /// The OTLP collector the registry read at start names, if any
    /// ([`registry::collector`]).
    pub fn collector(&self) -> Option<String> {
        registry::collector(&self.registry.mirror.servers)
    }

    /// Call `hook` whenever the registry comes to name another collector than
    /// [`Live::collector`] did, before its servers are handed to the bridge: a
    /// first run with nothing cached learns of it only from the API's first
    /// answer, and its first calls are then traced too.
    pub fn on_collector(&mut self, hook: CollectorHook) {
        self.collector = self.collector();
        self.on_collector = Some(hook);
    }

    /// Whether the registry's first answer is still to come (nothing cached).
    pub fn pending(&self) -> bool {
        self.registry.pending
    }

    fn api_url(&self) -> Option<String> {
        let rc = self.cfg.registry.as_ref()?;
        if rc.file.is_some() { None } else { rc.url.clone() }
    }

    fn registry_file(&self) -> Option<PathBuf> {
        self.cfg.registry.as_ref()?.file.clone()
    }

    fn refresh_interval(&self) -> Duration {
        secs(self.cfg.registry.as_ref().map_or(3600.0, |r| r.refresh)).max(Duration::from_millis(100))
    }

    /// When to poll next: the configured interval, jittered; after failures,
    /// sooner at first and backing off up to that interval.
    fn next_poll(&self) -> Instant {
        let interval = self.refresh_interval();
        let wait = if self.failures == 0 {
            interval
        } else {
            Duration::from_secs(15)
                .saturating_mul(1 << (self.failures - 1).min(10))
                .min(interval)
        };
        Instant::now() + wait.mul_f64(rand::Rng::random_range(&mut rand::rng(), 0.9..=1.1))
    }

    /// Run until `shutdown`.
    pub async fn run(mut self, bridge: Arc<Bridge>, shutdown: CancellationToken) {
        let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
        let mut _watcher = self.watch(tx.clone());
        let mut next_poll = if self.registry.poll_now() {
            Instant::now()
        } else {
            self.next_poll()
        };
        loop {
            let api = self.api_url().is_some();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(first) = rx.recv() => {
                    let touched = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        touched = debounce(first, &mut rx) => touched,
                    };
                    let before = (self.registry_file(), self.api_url());
                    let refetch = touched.contains(&self.paths.config_file) && self.reload_config(&bridge).await;
                    if self.registry_file().is_some_and(|f| touched.contains(&f)) {
                        self.reload_registry_file().await;
                        self.apply(&bridge).await;
                    }
                    let moved = (self.registry_file(), self.api_url()) != before;
                    if moved {
                        _watcher = self.watch(tx.clone());
                    }
                    if moved || refetch {
                        next_poll = if self.registry.poll_now() { Instant::now() } else { self.next_poll() };
                    }
                }
                _ = tokio::time::sleep_until(next_poll), if api => {
                    // A registry that hangs or trickles must not hold up shutdown.
                    let changed = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        changed = self.poll() => changed,
                    };
                    if changed {
                        self.apply(&bridge).await;
                    }
                    if std::mem::take(&mut self.registry.pending) {
                        // The first answer (or failure) of a registry with no
                        // cached copy: list requests stop waiting for it.
                        bridge.source_settled();
                    }
                    next_poll = self.next_poll();
                }
            }
            self.publish(&bridge);
        }
    }

    fn publish(&self, bridge: &Bridge) {
        let mut st = self.state.locked();
        st.registry = self.registry.summary();
        drop(st);
        bridge.changed.notify_one();
    }

    /// Watch the directories of the config file and the registry file (not the
    /// files: editors replace them). Events carry the canonical path of the
    /// file they touch; only those two names are sent on.
    fn watch(&self, tx: mpsc::UnboundedSender<PathBuf>) -> Option<notify::RecommendedWatcher> {
        let mut targets: Vec<PathBuf> = vec![self.paths.config_file.clone()];
        targets.extend(self.registry_file());
        // Watch by canonical directory; report the path as the rest of the
        // bridge knows it.
        let mut by_canonical = Vec::new();
        for t in &targets {
            let (Some(dir), Some(name)) = (t.parent(), t.file_name()) else {
                continue;
            };
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            match dir.canonicalize() {
                Ok(d) => by_canonical.push((d.join(name), t.clone())),
                Err(e) => tracing::debug!("not watching {}: {e}", t.display()),
            }
        }
        let map = by_canonical.clone();
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else { return };
            // Reads (ours included) are not changes.
            if matches!(ev.kind, notify::EventKind::Access(a) if !matches!(a, notify::event::AccessKind::Close(notify::event::AccessMode::Write)))
            {
                return;
            }
            for p in &ev.paths {
                if let Some((_, target)) = map.iter().find(|(c, _)| c == p) {
                    let _ = tx.send(target.clone());
                }
            }
        })
        .map_err(|e| tracing::warn!("cannot watch the config for changes: {e}"))
        .ok()?;
        let mut dirs: Vec<PathBuf> = by_canonical
            .iter()
            .filter_map(|(c, _)| c.parent().map(Path::to_path_buf))
            .collect();
        dirs.dedup();
        for d in dirs {
            if let Err(e) = watcher.watch(&d, notify::RecursiveMode::NonRecursive) {
                tracing::warn!("cannot watch {} for changes: {e}", d.display());
            }
        }
        Some(watcher)
    }

    /// Re-read the config file. A file that does not load is refused with the
    /// reason (its line and key) and everything stays as it was. Returns whether
    /// the registry source changed (it is then to be asked at once).
    async fn reload_config(&mut self, bridge: &Arc<Bridge>) -> bool {
        let file = self.paths.config_file.clone();
        let mut next = match off_thread(move || Config::load(&file)).await {
            Some(Ok(c)) => c,
            None => return false,
            Some(Err(e)) => {
                tracing::error!("{e}\nThe change was not applied; the bridge keeps the previous configuration.");
                self.state.locked().config_error = Some(e.to_string());
                bridge.changed.notify_one();
                return false;
            }
        };
        if let Some(p) = self.prefix {
            next.naming.prefix = p;
        }
        self.state.locked().config_error = None;
        if next == self.cfg {
            return false;
        }
        if next.log != self.cfg.log
            || next.auth != self.cfg.auth
            || next.cache != self.cfg.cache
            || next.telemetry != self.cfg.telemetry
        {
            tracing::warn!("changes to [log], [auth], [cache] and [telemetry] apply when the bridge next starts");
        }
        let source = |c: &Config| {
            c.registry
                .as_ref()
                .map(|r| (r.url.clone(), r.file.clone(), r.headers.clone()))
        };
        let refetch = source(&next) != source(&self.cfg);
        self.cfg = next;
        if refetch {
            // A new source is asked at once (`pending` with nothing cached for
            // it: no list request waits, only the first start's do); until it
            // answers, nothing of the old one is kept.
            let (cfg, paths) = (self.cfg.clone(), self.paths.clone());
            let Some(copy) = off_thread(move || load_local(&cfg, &paths)).await else {
                return false;
            };
            self.registry = copy;
            self.failures = 0;
            self.capped = false;
            self.polls_since_full = 0;
        }
        tracing::info!("configuration reloaded from {}", self.paths.config_file.display());
        self.apply(bridge).await;
        refetch
    }

    async fn reload_registry_file(&mut self) {
        let Some(file) = self.registry_file() else { return };
        let path = file.clone();
        let Some(read) = off_thread(move || registry::read_file(&path)).await else {
            return;
        };
        match read {
            Ok(servers) => {
                if self.registry.last_error.take().is_some() {
                    tracing::info!("registry file {} reads again", file.display());
                }
                self.registry.mirror.replace(servers);
                self.registry.last_success = Some(crate::util::now_unix());
                if let Some(rc) = &self.cfg.registry {
                    cap(&mut self.registry, rc.max_servers);
                }
            }
            Err(e) => {
                tracing::error!("{e}\nThe change was not applied; the bridge keeps the previous registry.");
                self.registry.last_error = Some(e.to_string());
            }
        }
    }

    /// Ask the registry API what changed. Returns whether the copy changed.
    async fn poll(&mut self) -> bool {
        let (Some(url), Some(rc)) = (self.api_url(), self.cfg.registry.clone()) else {
            return false;
        };
        let full = self.polls_since_full >= FULL_EVERY;
        let since = if full { None } else { self.registry.mirror.since() };
        let fetch = async {
            tokio::time::timeout(
                secs(self.cfg.timeouts.call),
                registry::sync::fetch_since(
                    &self.client,
                    &url,
                    &rc,
                    since.as_deref(),
                    Some(&self.registry.mirror.validators),
                ),
            )
            .await
            .unwrap_or_else(|_| {
                Err(registry::RegistryError::Http {
                    url: url.clone(),
                    message: format!("no answer within {} s", self.cfg.timeouts.call),
                })
            })
        };
        // Its own trace; the error's text (a URL) stays out of it.
        let fetched = crate::telemetry::global()
            .traced("mcp_bridge.registry.fetch", "", |_| "unavailable", fetch)
            .await;
        let (servers, validators) = match fetched {
            Ok(Fetched::NotModified) => {
                self.succeeded();
                return false;
            }
            Ok(Fetched::Servers {
                servers,
                validators,
                capped,
            }) => {
                if capped && !self.capped {
                    warn_capped(&url, rc.max_servers);
                }
                self.capped |= capped;
                (servers, validators)
            }
            Err(e) => {
                // Said once per outage; the last good list keeps serving.
                if self.failures == 0 && self.registry.pending {
                    tracing::error!(
                        "{e}; no cached copy to serve meanwhile: the registry's servers join when it answers \
                         (retrying in the background)"
                    );
                } else if self.failures == 0 {
                    tracing::warn!(
                        "{e}; keeping the last good list of {} servers and retrying in the background",
                        self.registry.mirror.servers.len()
                    );
                } else {
                    tracing::debug!("registry still failing: {e}");
                }
                self.failures += 1;
                self.registry.last_error = Some(e.to_string());
                return false;
            }
        };
        self.succeeded();
        self.polls_since_full = if since.is_none() { 0 } else { self.polls_since_full + 1 };
        let changed = match &since {
            Some(s) => self.registry.mirror.merge(servers, s),
            None => self.registry.mirror.replace(servers),
        };
        self.registry.mirror.validators = validators;
        if self.registry.mirror.servers.len() > rc.max_servers {
            // Incremental answers added to a full copy.
            self.registry.mirror.servers.truncate(rc.max_servers);
            if !self.capped {
                warn_capped(&url, rc.max_servers);
                self.capped = true;
            }
        }
        store_cache(&self.paths.cache_dir, &url, &self.registry.mirror).await;
        if changed {
            tracing::info!("the registry changed: {} entries", self.registry.mirror.servers.len());
        }
        changed
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::info!("the registry answers again");
        }
        self.failures = 0;
        self.registry.last_error = None;
        self.registry.last_success = Some(crate::util::now_unix());
        self.registry.from_cache = false;
    }

    /// Resolve the current sources and hand the result to the bridge.
    async fn apply(&mut self, bridge: &Arc<Bridge>) {
        if let Some(hook) = self.on_collector.as_mut() {
            let named = registry::collector(&self.registry.mirror.servers);
            if named != self.collector {
                self.collector = named.clone();
                hook(named, bridge);
            }
        }
        let resolved = resolve(&self.cfg, &self.registry, &self.adhoc, &mut self.said);
        self.state.locked().problems = resolved.problems.clone();
        let settings = Settings::from_config(&self.cfg, Some(self.paths.cache_dir.clone()));
        bridge.reconfigure(resolved.servers, settings).await;
    }
}
