//! The bridge's shared state between the IDE side and the upstreams: the set of
//! upstream handles, each server's latest lists, and the merged [`Catalog`] built
//! from them. The catalog is rebuilt by the event task (a server's new lists) and
//! by [`Bridge::reconfigure`] (from `live`), both under the lists lock, so rebuilds
//! are serialised and the IDE hears about a change once, only when the merged
//! lists really differ. The catalog cache is written through `spawn_blocking`,
//! numbered so an older write never lands after a newer one. The event task
//! ends with the root token.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use rmcp::model::{
    PromptListChangedNotification, ResourceListChangedNotification, ResourceUpdatedNotification,
    ResourceUpdatedNotificationParam, ServerNotification, ToolListChangedNotification,
};
use rmcp::service::SubscriptionSink;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::cache::{CachedServer, CatalogCache};
use crate::catalog::{Catalog, Changes, Naming, ServerLists};
use crate::config::{Config, Timeouts, secs};
use crate::policy::Policy;
use crate::registry::ServerSpec;
use crate::upstream::{ConnState, IdeLink, Links, UpstreamEvent, UpstreamHandle};
use crate::util::{Locked, RwLocked};

/// Settings the bridge reads on every request.
#[derive(Debug, Clone)]
pub struct Settings {
    pub naming: Naming,
    pub page_size: usize,
    pub timeouts: Timeouts,
    /// Where the catalog cache lives; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    pub policy: crate::policy::PolicyConfig,
    /// `[audit.minutes_saved]`, for the telemetry's minutes saved.
    pub minutes_saved: Vec<(String, f64)>,
}

impl Settings {
    pub fn from_config(cfg: &Config, cache_dir: Option<PathBuf>) -> Settings {
        Settings {
            naming: cfg.naming.naming(),
            page_size: cfg.naming.page_size,
            timeouts: cfg.timeouts.clone(),
            cache_dir: if cfg.cache.catalog { cache_dir } else { None },
            policy: cfg.policy.clone(),
            minutes_saved: cfg.audit.minutes_saved.clone(),
        }
    }

    /// The policy for `specs`: the user's rules and each server's registry rules.
    fn policy(&self, specs: &[ServerSpec]) -> Arc<Policy> {
        Arc::new(Policy::new(
            self.policy.clone(),
            specs.iter().map(|s| (s.id.clone(), s.rules.clone())),
        ))
    }
}

pub struct Bridge {
    /// Replaced whole by a config reload; readers take the current `Arc`.
    settings: RwLock<Arc<Settings>>,
    /// The timeouts owner tasks read at each (re)connect.
    timeouts: watch::Sender<Timeouts>,
    pub ide: Arc<IdeLink>,
    upstreams: RwLock<BTreeMap<Arc<str>, Arc<UpstreamHandle>>>,
    /// Each server's latest lists: live, or from the disk cache until it connects.
    lists: Mutex<BTreeMap<Arc<str>, Arc<ServerLists>>>,
    catalog: RwLock<Arc<Catalog>>,
    cache: Mutex<CatalogCache>,
    /// Numbers the catalog cache writes; the newest written one is kept in
    /// `cache_written` ([`Bridge::store_cache`]).
    cache_generation: std::sync::atomic::AtomicU64,
    cache_written: Arc<Mutex<u64>>,
    events: mpsc::UnboundedSender<UpstreamEvent>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<UpstreamEvent>>>,
    /// The servers bridged now; replaced by [`Bridge::reconfigure`].
    specs: RwLock<Vec<ServerSpec>>,
    /// When each server's lists were last fetched (unix seconds).
    refreshed: Mutex<BTreeMap<Arc<str>, u64>>,
    /// Woken whenever something `mcp-bridge status` shows may have changed.
    pub changed: Arc<Notify>,
    /// Set once the upstreams are spawned.
    started: tokio::sync::watch::Sender<bool>,
    /// Where OAuth credentials live (`None`: no store could be opened).
    store: Option<crate::auth::oauth::Store>,
    /// Servers with no lists yet (no cache, first connection under way), and a
    /// source whose first answer may bring more ([`SOURCE_PENDING`]), with until
    /// when a list request waits for them (`None`: not spawned yet).
    first: watch::Sender<BTreeMap<Arc<str>, Option<tokio::time::Instant>>>,
    /// `subscriptions/listen` streams a 2026-07-28 IDE has open.
    listeners: Mutex<Vec<SubscriptionSink>>,
    /// Where every forwarded tool call is recorded (unset: nowhere).
    audit: std::sync::OnceLock<crate::audit::AuditLog>,
    /// Whether the IDE has been sent a tool list (a rename after that is news).
    tools_listed: std::sync::atomic::AtomicBool,
    pub shutdown: CancellationToken,
}

/// The key in [`Bridge::first`] of a source whose first answer is awaited (no
/// server id contains a colon).
const SOURCE_PENDING: &str = ":registry";

/// Servers started or stopped together that are logged a line each; more get one line.
const SAID_EACH: usize = 3;

impl Bridge {
    /// Build the bridge for `specs` and seed the catalog from the disk cache. Nothing
    /// connects until [`Bridge::start`].
    pub fn new(
        settings: Settings,
        specs: Vec<ServerSpec>,
        store: Option<crate::auth::oauth::Store>,
        shutdown: CancellationToken,
    ) -> Arc<Bridge> {
        let mut cache = settings
            .cache_dir
            .as_deref()
            .map(CatalogCache::load)
            .unwrap_or_default();
        // Servers no longer configured leave the cache with its next write.
        cache.servers.retain(|id, _| specs.iter().any(|s| s.id == *id));
        let mut lists = BTreeMap::new();
        for spec in &specs {
            if let Some(c) = cache.servers.get(&spec.id)
                && c.url == spec.url
            {
                lists.insert(Arc::from(spec.id.as_str()), Arc::new(c.lists.clone()));
            }
        }
        let catalog = Catalog::build_with(&lists, specs.len(), &settings.naming, &settings.policy(&specs));
        let first = specs
            .iter()
            .filter(|s| !lists.contains_key(s.id.as_str()))
            .map(|s| (Arc::from(s.id.as_str()), None))
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Bridge {
            timeouts: watch::Sender::new(settings.timeouts.clone()),
            settings: RwLock::new(Arc::new(settings)),
            ide: Arc::new(IdeLink::default()),
            upstreams: RwLock::new(BTreeMap::new()),
            lists: Mutex::new(lists),
            catalog: RwLock::new(Arc::new(catalog)),
            cache: Mutex::new(cache),
            cache_generation: Default::default(),
            cache_written: Default::default(),
            events: tx,
            events_rx: Mutex::new(Some(rx)),
            specs: RwLock::new(specs),
            refreshed: Mutex::new(BTreeMap::new()),
            changed: Arc::new(Notify::new()),
            listeners: Mutex::new(Vec::new()),
            first: watch::Sender::new(first),
            audit: std::sync::OnceLock::new(),
            tools_listed: Default::default(),
            started: tokio::sync::watch::Sender::new(false),
            store,
            shutdown,
        })
    }

    /// Hold list requests (and lookups of unknown names) for a source's first
    /// answer, as for a server's first listing and within the same `[timeouts]
    /// first_list`: a registry read with no cached copy, in the background.
    pub fn await_source(&self) {
        let until = tokio::time::Instant::now() + secs(self.settings().timeouts.first_list);
        let started = *self.started.borrow();
        self.first.send_modify(|f| {
            f.insert(Arc::from(SOURCE_PENDING), started.then_some(until));
        });
    }

    /// The source answered or failed: list requests stop waiting for it. The
    /// servers it brought (added by [`Bridge::reconfigure`] before this) are
    /// awaited within the bound it had.
    pub fn source_settled(&self) {
        self.first.send_if_modified(|f| f.remove(SOURCE_PENDING).is_some());
    }

    /// Connect every server (each in its own task) and start the event task.
    pub fn start(self: &Arc<Self>) {
        let Some(rx) = self.events_rx.locked().take() else {
            return;
        };
        let _ = self.name_for_ide(); // nothing listed yet: nothing to announce
        {
            // Hold the spec list while spawning, so a concurrent reconfigure
            // sees either no handles or all of them.
            let specs = self.specs.read_locked();
            let mut ups = self.upstreams.write_locked();
            for spec in specs.iter() {
                let h = self.spawn_upstream(spec.clone());
                ups.insert(h.id.clone(), h);
            }
            let until = tokio::time::Instant::now() + secs(self.settings().timeouts.first_list);
            self.first
                .send_modify(|f| f.values_mut().for_each(|d| *d = Some(until)));
            self.started.send_replace(true);
        }
        tokio::spawn(self.clone().event_loop(rx));
    }

    /// The names the IDE gets: the settings', fitted to what the IDE does to
    /// tool names (`Naming::for_client`), once it has said who it is.
    fn naming(&self, settings: &Settings) -> Naming {
        settings.naming.for_client(self.ide.client_name().as_deref())
    }

    /// Rebuild the catalog (seeded from the disk cache under the settings'
    /// naming) with the names for the IDE that has just said who it is; what
    /// changed. Called from [`Bridge::start`], before the IDE can list.
    fn name_for_ide(&self) -> Changes {
        let settings = self.settings();
        let naming = self.naming(&settings);
        if naming == settings.naming {
            return Changes::default();
        }
        if let Some(p) = crate::ide::profile(self.ide.client_name().as_deref()) {
            tracing::debug!(
                client = p.client,
                max_len = naming.max_len,
                "tool names fitted to the IDE"
            );
        }
        let specs = self.specs.read_locked();
        let lists = self.lists.locked();
        let next = Catalog::build_with(&lists, specs.len(), &naming, &settings.policy(&specs));
        let mut cat = self.catalog.write_locked();
        let changes = next.changes_from(&cat);
        *cat = Arc::new(next);
        changes
    }

    /// A 2026-07-28 IDE names itself in each request's `_meta`, not in an
    /// `initialize`: the first name heard renames the catalog for it. The
    /// rename is announced only if the IDE had already listed tools under the
    /// old names (it normally names itself in that very first request).
    ///
    /// `name` reads it from the request: only called while the IDE is unnamed,
    /// so a named one (every IDE after its first request) pays nothing per call.
    pub async fn learn_client(&self, name: impl FnOnce() -> Option<String>) {
        if self.ide.has_name() {
            return;
        }
        let Some(name) = name() else { return };
        if !self.ide.learn_name(&name) {
            return;
        }
        let changes = self.name_for_ide();
        if self.tools_listed.load(std::sync::atomic::Ordering::SeqCst) {
            self.announce(changes).await;
        }
    }

    /// The IDE has been sent a tool list.
    pub fn note_tools_listed(&self) {
        self.tools_listed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn spawn_upstream(&self, spec: ServerSpec) -> Arc<UpstreamHandle> {
        let links = Links {
            ide: self.ide.clone(),
            events: self.events.clone(),
            timeouts: self.timeouts.subscribe(),
            store: self.store.clone(),
            changed: self.changed.clone(),
            legacy_hint: self.cached_era(&spec),
        };
        UpstreamHandle::spawn(spec, links, &self.shutdown)
    }

    /// Record tool calls in `log` from now on.
    pub fn set_audit(&self, log: crate::audit::AuditLog) {
        let _ = self.audit.set(log);
    }

    /// Give the telemetry the minutes-saved table of `specs` (the same table
    /// `stats` reads).
    pub fn publish_minutes(&self, specs: &[ServerSpec]) {
        let t = crate::telemetry::global();
        if t.is_on() {
            let servers = specs.iter().map(|s| (s.id.as_str(), &s.rules));
            t.set_minutes(crate::policy::minutes_table(&self.settings().minutes_saved, servers));
        }
    }

    /// The audit log, when calls are recorded.
    pub fn audit(&self) -> Option<&crate::audit::AuditLog> {
        self.audit.get()
    }

    /// The settings in force now.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.read_locked().clone()
    }

    /// The servers bridged now.
    pub fn specs(&self) -> Vec<ServerSpec> {
        self.specs.read_locked().clone()
    }

    /// Each server as `mcp-bridge status` shows it: connection, counts, last
    /// refresh and last error.
    pub fn server_states(&self) -> Vec<crate::state::ServerState> {
        let lists = self.lists.locked().clone();
        self.specs()
            .iter()
            .map(|spec| {
                let mut s = crate::state::ServerState::new(spec);
                if let Some(l) = lists.get(spec.id.as_str()) {
                    s.tools = l.tools.len();
                    s.resources = l.resources.len();
                    s.resource_templates = l.resource_templates.len();
                    s.prompts = l.prompts.len();
                }
                s.last_refresh = self.refreshed_at(&spec.id);
                let Some(u) = self.upstream(&spec.id) else { return s };
                let state = u.state();
                if let ConnState::Ready { protocol, .. } = &state {
                    s.protocol = Some(protocol.to_string());
                }
                s.state = state_label(&state).into();
                if let Some(f) = u.last_failure() {
                    s.last_error = Some(f.error);
                    s.last_error_at = Some(f.at);
                }
                s.needs_login = u.needs_login().is_some();
                s
            })
            .collect()
    }

    /// When `id`'s lists were last fetched (unix seconds).
    /// Each server's id and connection state label (no lists: cheap).
    pub fn connection_states(&self) -> Vec<(String, String)> {
        self.specs()
            .iter()
            .map(|spec| {
                let state = self.upstream(&spec.id).map(|u| state_label(&u.state()));
                (spec.id.clone(), state.unwrap_or("connecting").to_owned())
            })
            .collect()
    }

    pub fn refreshed_at(&self, id: &str) -> Option<u64> {
        self.refreshed.locked().get(id).copied()
    }

    /// Apply a new set of servers and settings while serving: servers that are
    /// gone are stopped and leave the catalog, new ones connect, and changed
    /// ones (URL, headers, auth, timeouts of their own) reconnect; the others are
    /// untouched. The IDE hears once, and only if the merged lists changed.
    pub async fn reconfigure(self: &Arc<Self>, specs: Vec<ServerSpec>, settings: Settings) {
        self.timeouts.send_if_modified(|t| {
            let differs = *t != settings.timeouts;
            if differs {
                *t = settings.timeouts.clone();
            }
            differs
        });
        let cache_dir = settings.cache_dir.clone();
        *self.settings.write_locked() = Arc::new(settings);
        let (retired, changes) = {
            let mut current = self.specs.write_locked();
            let plan = Plan::new(&current, &specs);
            *current = specs;
            self.publish_minutes(&current);
            let mut lists = self.lists.locked();
            for id in &plan.forget {
                lists.remove(id.as_str());
            }
            let settings = self.settings();
            let next = Catalog::build_with(
                &lists,
                current.len(),
                &self.naming(&settings),
                &settings.policy(&current),
            );
            let mut cat = self.catalog.write_locked();
            let changes = next.changes_from(&cat);
            *cat = Arc::new(next);
            drop(cat);
            drop(lists);
            if let Some(dir) = &cache_dir {
                let mut cache = self.cache.locked();
                cache.servers.retain(|id, _| current.iter().any(|s| s.id == *id));
                self.store_cache(&cache, dir);
            }
            let mut retired = Vec::new();
            if *self.started.borrow() {
                let mut ups = self.upstreams.write_locked();
                for id in plan.stop.iter().chain(&plan.restart) {
                    retired.extend(ups.remove(id.as_str()));
                }
                let connecting = plan.restart.len() + plan.start.len();
                for id in plan.restart.iter().chain(&plan.start) {
                    if let Some(spec) = current.iter().find(|s| s.id == *id) {
                        // A line each for a few; a registry bringing thousands gets one.
                        if connecting <= SAID_EACH {
                            tracing::info!(server = %id, url = %spec.url, "connecting (configuration changed)");
                        }
                        let h = self.spawn_upstream(spec.clone());
                        ups.insert(h.id.clone(), h);
                    }
                }
                if connecting > SAID_EACH {
                    let some: Vec<&str> = plan
                        .restart
                        .iter()
                        .chain(&plan.start)
                        .take(SAID_EACH)
                        .map(String::as_str)
                        .collect();
                    tracing::info!(
                        "connecting {connecting} servers (configuration changed): {}, …",
                        some.join(", ")
                    );
                }
            }
            if plan.stop.len() <= SAID_EACH {
                for id in &plan.stop {
                    tracing::info!(server = %id, "removed from the configuration");
                }
            } else {
                let some: Vec<&str> = plan.stop.iter().take(SAID_EACH).map(String::as_str).collect();
                tracing::info!(
                    "{} servers removed from the configuration: {}, …",
                    plan.stop.len(),
                    some.join(", ")
                );
            }
            // Servers that have no lists now are awaited like at start-up; while
            // a source's first answer is awaited, within that source's bound.
            let now = tokio::time::Instant::now();
            let mut until = now + secs(self.settings().timeouts.first_list);
            let started = *self.started.borrow();
            let listed = self.lists.locked();
            self.first.send_modify(|f| {
                if let Some(Some(source)) = f.get(SOURCE_PENDING)
                    && *source > now
                {
                    until = until.min(*source);
                }
                f.retain(|id, _| **id == *SOURCE_PENDING || current.iter().any(|s| *s.id == **id));
                for id in plan.start.iter().chain(&plan.forget) {
                    if current.iter().any(|s| s.id == *id) && !listed.contains_key(id.as_str()) {
                        f.insert(Arc::from(id.as_str()), started.then_some(until));
                    }
                }
            });
            drop(listed);
            (retired, changes)
        };
        self.changed.notify_one();
        self.announce(changes).await;
        // Close the old sessions without holding up the IDE. Each stop is
        // bounded; on shutdown this stops waiting (the retired owner tasks,
        // already cancelled, close their sessions themselves).
        if !retired.is_empty() {
            let shutdown = self.shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = futures::future::join_all(retired.iter().map(|u| u.stop())) => {}
                    _ = shutdown.cancelled() => {}
                }
            });
        }
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read_locked().clone()
    }

    pub fn upstream(&self, id: &str) -> Option<Arc<UpstreamHandle>> {
        self.upstreams.read_locked().get(id).cloned()
    }

    /// The handle of `id`, waiting up to `wait` for [`Bridge::start`]: the IDE can
    /// send a call right after `initialize`, before the upstreams are spawned.
    pub async fn upstream_when_started(&self, id: &str, wait: std::time::Duration) -> Option<Arc<UpstreamHandle>> {
        if let Some(u) = self.upstream(id) {
            return Some(u);
        }
        if !self.specs.read_locked().iter().any(|s| s.id == id) {
            return None;
        }
        let mut started = self.started.subscribe();
        let _ = tokio::time::timeout(wait, started.wait_for(|s| *s)).await;
        self.upstream(id)
    }

    /// Wait until no server's first listing is awaited any more: each has
    /// listed, failed, or run out of its `[timeouts] first_list` (counted from
    /// when it was started). Returns at once when every server has lists,
    /// from the cache or live.
    pub async fn first_lists(&self) {
        let mut rx = self.first.subscribe();
        let wait = secs(self.settings().timeouts.first_list);
        loop {
            let now = tokio::time::Instant::now();
            let until = rx
                .borrow_and_update()
                .values()
                .map(|d| d.unwrap_or(now + wait))
                .filter(|d| *d > now)
                .max();
            let Some(until) = until else { return };
            match tokio::time::timeout_at(until, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return,
            }
        }
    }

    /// The servers that have no lists (none cached, none listed), with the
    /// URL and the last error of each: why a name may be unknown.
    pub fn unlisted(&self) -> Vec<(String, String, Option<String>)> {
        // Specs before lists, the order every other path takes them in.
        let specs = self.specs();
        let lists = self.lists.locked();
        specs
            .into_iter()
            .filter(|s| !lists.contains_key(s.id.as_str()))
            .map(|s| {
                let error = self.upstream(&s.id).and_then(|u| match u.state() {
                    ConnState::Failed { error, .. }
                    | ConnState::Connecting {
                        last_error: Some(error),
                        ..
                    } => Some(error),
                    _ => None,
                });
                (s.id, s.url, error)
            })
            .collect()
    }

    /// Whether some server's first listing is still awaited.
    pub fn awaiting_first_lists(&self) -> bool {
        !self.first.borrow().is_empty()
    }

    pub fn upstreams(&self) -> Vec<Arc<UpstreamHandle>> {
        self.upstreams.read_locked().values().cloned().collect()
    }

    /// Wait until every server's first connection attempt has an outcome and its
    /// lists are in the catalog (for one-shot commands such as `tools`).
    pub async fn settle(&self, wait: std::time::Duration) {
        // The session starts the upstreams once the client's `initialized`
        // arrives, which can be after the client returned from its handshake.
        let mut started = self.started.subscribe();
        let _ = tokio::time::timeout(wait, started.wait_for(|s| *s)).await;
        let all = self.upstreams();
        futures::future::join_all(all.iter().map(|u| u.settled(wait))).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.events.send(UpstreamEvent::Flush(tx)).is_ok() {
            let _ = tokio::time::timeout(wait, rx).await;
        }
    }

    /// Stop every upstream, closing their sessions, within about a second.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        let all = self.upstreams();
        futures::future::join_all(all.iter().map(|u| u.stop())).await;
    }

    async fn event_loop(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<UpstreamEvent>) {
        loop {
            let ev = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                ev = rx.recv() => match ev { Some(ev) => ev, None => return },
            };
            match ev {
                UpstreamEvent::Lists {
                    server,
                    url,
                    legacy,
                    lists,
                } => {
                    let changes = self.apply_lists(server, url, lists, Some(legacy));
                    self.announce(changes).await;
                }
                UpstreamEvent::ResourceUpdated { server, uri } => {
                    let ide_uri = self.catalog().ide_uri(&server, &uri);
                    let p = ResourceUpdatedNotificationParam::new(ide_uri);
                    if self.ide.is_modern() {
                        let n = ServerNotification::ResourceUpdatedNotification(ResourceUpdatedNotification::new(p));
                        self.send_to_listeners(&[n]).await;
                    } else if let Some(ide) = self.ide.peer() {
                        let _ = ide.notify_resource_updated(p).await;
                    }
                }
                UpstreamEvent::Settled { server } => {
                    self.first.send_if_modified(|f| f.remove(&server).is_some());
                }
                UpstreamEvent::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Record a server's new lists, rebuild the catalog, persist the cache, and
    /// say which merged lists changed.
    pub fn apply_lists(&self, server: Arc<str>, url: String, lists: ServerLists, legacy: Option<bool>) -> Changes {
        let settings = self.settings();
        let changes = {
            let specs = self.specs.read_locked();
            // A late report from a server that was removed or moved meanwhile.
            if !specs.iter().any(|s| *s.id == *server && s.url == url) {
                return Changes::default();
            }
            self.refreshed.locked().insert(server.clone(), crate::util::now_unix());
            self.changed.notify_one();
            let mut all = self.lists.locked();
            if all.get(&server).is_some_and(|l| **l == lists) {
                drop(all);
                drop(specs);
                // Same lists: only a newly learnt protocol generation is worth a write.
                self.remember_era(&settings, &server, &url, legacy);
                return Changes::default();
            }
            all.insert(server.clone(), Arc::new(lists.clone()));
            let next = Catalog::build_with(&all, specs.len(), &self.naming(&settings), &settings.policy(&specs));
            let mut cur = self.catalog.write_locked();
            let changes = next.changes_from(&cur);
            *cur = Arc::new(next);
            changes
        };
        if let Some(dir) = &settings.cache_dir {
            let mut cache = self.cache.locked();
            cache
                .servers
                .insert(server.to_string(), CachedServer { url, lists, legacy });
            self.store_cache(&cache, dir);
        }
        changes
    }

    /// Keep a server's protocol generation in the catalog cache when it differs
    /// from what is there.
    fn remember_era(&self, settings: &Settings, server: &str, url: &str, legacy: Option<bool>) {
        let Some(dir) = &settings.cache_dir else { return };
        let mut cache = self.cache.locked();
        match cache.servers.get_mut(server) {
            Some(c) if c.url == url && c.legacy != legacy && legacy.is_some() => c.legacy = legacy,
            _ => return,
        }
        self.store_cache(&cache, dir);
    }

    /// Write the catalog cache off the runtime thread (a durable write takes
    /// about half a millisecond, and the IDE's first answer may be waiting on
    /// the lists it was written with). Writes are numbered: one that comes
    /// after a newer one has been written is dropped, so the file always ends
    /// with the newest cache. Without a runtime (tests), it is written at once.
    fn store_cache(&self, cache: &CatalogCache, dir: &std::path::Path) {
        let bytes = match cache.to_bytes() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("cannot serialise the catalog cache: {e}");
                return;
            }
        };
        let generation = self.cache_generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let (written, path) = (self.cache_written.clone(), crate::cache::catalog_path(dir));
        let write = move || {
            let mut last = written.locked();
            if *last >= generation {
                return;
            }
            *last = generation;
            if let Err(e) = crate::cache::write_atomic(&path, &bytes) {
                tracing::warn!("cannot write the catalog cache {}: {e}", path.display());
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(write)),
            Err(_) => write(),
        }
    }

    /// The protocol generation `spec`'s server spoke when it was last listed.
    fn cached_era(&self, spec: &ServerSpec) -> Option<bool> {
        let cache = self.cache.locked();
        cache
            .servers
            .get(&spec.id)
            .filter(|c| c.url == spec.url)
            .and_then(|c| c.legacy)
    }

    async fn announce(&self, changes: Changes) {
        if !changes.any() {
            return;
        }
        if self.ide.is_modern() {
            let mut ns = Vec::new();
            if changes.tools {
                ns.push(ServerNotification::ToolListChangedNotification(
                    ToolListChangedNotification::default(),
                ));
            }
            if changes.prompts {
                ns.push(ServerNotification::PromptListChangedNotification(
                    PromptListChangedNotification::default(),
                ));
            }
            if changes.resources {
                ns.push(ServerNotification::ResourceListChangedNotification(
                    ResourceListChangedNotification::default(),
                ));
            }
            self.send_to_listeners(&ns).await;
            return;
        }
        let Some(ide) = self.ide.peer() else { return };
        if changes.tools {
            let _ = ide.notify_tool_list_changed().await;
        }
        if changes.prompts {
            let _ = ide.notify_prompt_list_changed().await;
        }
        if changes.resources {
            let _ = ide.notify_resource_list_changed().await;
        }
    }

    /// Register a modern IDE's `subscriptions/listen` stream.
    pub fn add_listener(&self, sink: SubscriptionSink) {
        self.listeners.locked().push(sink);
    }

    pub fn remove_listener(&self, id: &rmcp::model::RequestId) {
        self.listeners.locked().retain(|s| s.id() != id);
    }

    /// Send to every listen stream that accepted the notification; the sink
    /// filters by what each stream asked for.
    async fn send_to_listeners(&self, notifications: &[ServerNotification]) {
        let sinks = self.listeners.locked().clone();
        for sink in sinks {
            for n in notifications {
                let _ = sink.send(n.clone()).await;
            }
        }
    }
}

/// What a reconfiguration does to each server, by id.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    /// Gone: stop.
    stop: Vec<String>,
    /// Changed: stop the old connection and start a new one.
    restart: Vec<String>,
    /// New: start.
    start: Vec<String>,
    /// Lists to drop now: gone, or now at another URL (another server).
    forget: Vec<String>,
}

impl Plan {
    fn new(old: &[ServerSpec], new: &[ServerSpec]) -> Plan {
        let mut plan = Plan::default();
        for o in old {
            match new.iter().find(|n| n.id == o.id) {
                None => {
                    plan.stop.push(o.id.clone());
                    plan.forget.push(o.id.clone());
                }
                Some(n) if n != o => {
                    plan.restart.push(o.id.clone());
                    if n.url != o.url {
                        plan.forget.push(o.id.clone());
                    }
                }
                Some(_) => {}
            }
        }
        for n in new {
            if !old.iter().any(|o| o.id == n.id) {
                plan.start.push(n.id.clone());
            }
        }
        plan
    }
}

/// The label `status` and the telemetry give a connection state.
fn state_label(s: &ConnState) -> &'static str {
    match s {
        ConnState::Connecting { .. } => "connecting",
        ConnState::Ready { .. } => "ready",
        ConnState::Failed { .. } => "failed",
        ConnState::Stopped => "stopped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, url: &str) -> ServerSpec {
        let mut s = crate::registry::resolve(
            &Config::default(),
            &[],
            &crate::registry::AdHoc {
                urls: vec![url.into()],
                ..Default::default()
            },
        )
        .servers
        .remove(0);
        s.id = id.into();
        s
    }

    #[test]
    fn plan_stops_starts_and_restarts_only_what_changed() {
        let old = [
            spec("a", "http://a/mcp"),
            spec("b", "http://b/mcp"),
            spec("c", "http://c/mcp"),
        ];
        let mut b2 = spec("b", "http://b/mcp");
        b2.headers.push((
            "X-Team".into(),
            crate::registry::HeaderValue {
                value: "x".into(),
                secret: false,
            },
        ));
        let new = [
            spec("a", "http://a/mcp"),
            b2,
            spec("c", "http://c2/mcp"),
            spec("d", "http://d/mcp"),
        ];
        let plan = Plan::new(&old, &new);
        assert_eq!(plan.stop, Vec::<String>::new());
        assert_eq!(plan.restart, ["b", "c"]);
        assert_eq!(plan.start, ["d"]);
        // Same URL keeps its lists until the new connection lists again.
        assert_eq!(plan.forget, ["c"]);
        let plan = Plan::new(&new, &old[..1]);
        assert_eq!(plan.stop, ["b", "c", "d"]);
        assert_eq!(plan.forget, ["b", "c", "d"]);
        assert!(Plan::new(&old, &old).start.is_empty());
    }
}
