//! The bridge's shared state between the IDE side and the upstreams: the set of
//! upstream handles, each server's latest lists, and the merged [`Catalog`] built
//! from them. One event task owns every catalog rebuild, so rebuilds are serialised
//! and the IDE hears about a change once, only when the merged lists really differ.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use rmcp::model::{
    PromptListChangedNotification, ResourceListChangedNotification, ResourceUpdatedNotification,
    ResourceUpdatedNotificationParam, ServerNotification, ToolListChangedNotification,
};
use rmcp::service::SubscriptionSink;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cache::{CachedServer, CatalogCache};
use crate::catalog::{Catalog, Changes, Naming, ServerLists};
use crate::config::{Config, Timeouts};
use crate::registry::ServerSpec;
use crate::upstream::{IdeLink, UpstreamEvent, UpstreamHandle};

/// Settings the bridge reads on every request.
#[derive(Debug, Clone)]
pub struct Settings {
    pub naming: Naming,
    pub page_size: usize,
    pub timeouts: Timeouts,
    /// Where the catalog cache lives; `None` disables it.
    pub cache_dir: Option<PathBuf>,
}

impl Settings {
    pub fn from_config(cfg: &Config, cache_dir: Option<PathBuf>) -> Settings {
        Settings {
            naming: cfg.naming.naming(),
            page_size: cfg.naming.page_size,
            timeouts: cfg.timeouts.clone(),
            cache_dir: if cfg.cache.catalog { cache_dir } else { None },
        }
    }
}

pub struct Bridge {
    pub settings: Settings,
    pub ide: Arc<IdeLink>,
    upstreams: RwLock<BTreeMap<Arc<str>, Arc<UpstreamHandle>>>,
    /// Each server's latest lists: live, or from the disk cache until it connects.
    lists: Mutex<BTreeMap<Arc<str>, Arc<ServerLists>>>,
    catalog: RwLock<Arc<Catalog>>,
    cache: Mutex<CatalogCache>,
    events: mpsc::UnboundedSender<UpstreamEvent>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<UpstreamEvent>>>,
    specs: Vec<ServerSpec>,
    /// Set once the upstreams are spawned.
    started: tokio::sync::watch::Sender<bool>,
    /// Where OAuth credentials live (`None`: no store could be opened).
    store: Option<crate::auth::oauth::Store>,
    /// `subscriptions/listen` streams a 2026-07-28 IDE has open.
    listeners: Mutex<Vec<SubscriptionSink>>,
    pub shutdown: CancellationToken,
}

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
        let catalog = Catalog::build(&lists, specs.len(), &settings.naming);
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Bridge {
            settings,
            ide: Arc::new(IdeLink::default()),
            upstreams: RwLock::new(BTreeMap::new()),
            lists: Mutex::new(lists),
            catalog: RwLock::new(Arc::new(catalog)),
            cache: Mutex::new(cache),
            events: tx,
            events_rx: Mutex::new(Some(rx)),
            specs,
            listeners: Mutex::new(Vec::new()),
            started: tokio::sync::watch::Sender::new(false),
            store,
            shutdown,
        })
    }

    /// Connect every server (each in its own task) and start the event task.
    pub fn start(self: &Arc<Self>) {
        let Some(rx) = self.events_rx.lock().expect("events").take() else {
            return;
        };
        let mut ups = self.upstreams.write().expect("upstreams");
        for spec in &self.specs {
            let h = UpstreamHandle::spawn(
                spec.clone(),
                self.ide.clone(),
                self.events.clone(),
                self.settings.timeouts.clone(),
                self.store.clone(),
                &self.shutdown,
            );
            ups.insert(h.id.clone(), h);
        }
        drop(ups);
        self.started.send_replace(true);
        tokio::spawn(self.clone().event_loop(rx));
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("catalog").clone()
    }

    pub fn upstream(&self, id: &str) -> Option<Arc<UpstreamHandle>> {
        self.upstreams.read().expect("upstreams").get(id).cloned()
    }

    /// The handle of `id`, waiting up to `wait` for [`Bridge::start`]: the IDE can
    /// send a call right after `initialize`, before the upstreams are spawned.
    pub async fn upstream_when_started(&self, id: &str, wait: std::time::Duration) -> Option<Arc<UpstreamHandle>> {
        if let Some(u) = self.upstream(id) {
            return Some(u);
        }
        if !self.specs.iter().any(|s| s.id == id) {
            return None;
        }
        let mut started = self.started.subscribe();
        let _ = tokio::time::timeout(wait, started.wait_for(|s| *s)).await;
        self.upstream(id)
    }

    pub fn upstreams(&self) -> Vec<Arc<UpstreamHandle>> {
        self.upstreams.read().expect("upstreams").values().cloned().collect()
    }

    /// Wait until every server's first connection attempt has an outcome and its
    /// lists are in the catalog (for one-shot commands such as `tools`).
    pub async fn settle(&self, wait: std::time::Duration) {
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
                UpstreamEvent::Lists { server, url, lists } => {
                    let changes = self.apply_lists(server, url, lists);
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
                UpstreamEvent::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Record a server's new lists, rebuild the catalog, persist the cache, and
    /// say which merged lists changed.
    pub fn apply_lists(&self, server: Arc<str>, url: String, lists: ServerLists) -> Changes {
        let changes = {
            let mut all = self.lists.lock().expect("lists");
            if all.get(&server).is_some_and(|l| **l == lists) {
                return Changes::default();
            }
            all.insert(server.clone(), Arc::new(lists.clone()));
            let next = Catalog::build(&all, self.specs.len(), &self.settings.naming);
            let mut cur = self.catalog.write().expect("catalog");
            let changes = next.changes_from(&cur);
            *cur = Arc::new(next);
            changes
        };
        if let Some(dir) = &self.settings.cache_dir {
            let mut cache = self.cache.lock().expect("cache");
            cache.servers.insert(server.to_string(), CachedServer { url, lists });
            if let Err(e) = cache.store(dir) {
                tracing::warn!("cannot write the catalog cache in {}: {e}", dir.display());
            }
        }
        changes
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
        self.listeners.lock().expect("listeners").push(sink);
    }

    pub fn remove_listener(&self, id: &rmcp::model::RequestId) {
        self.listeners.lock().expect("listeners").retain(|s| s.id() != id);
    }

    /// Send to every listen stream that accepted the notification; the sink
    /// filters by what each stream asked for.
    async fn send_to_listeners(&self, notifications: &[ServerNotification]) {
        let sinks = self.listeners.lock().expect("listeners").clone();
        for sink in sinks {
            for n in notifications {
                let _ = sink.send(n.clone()).await;
            }
        }
    }
}
