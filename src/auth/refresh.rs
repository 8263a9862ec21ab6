//! Proactive refresh: rmcp refreshes only when a request finds the token about to
//! expire, so a call would pay for the refresh. One task per
//! logged-in server refreshes at about 75 % of the token's lifetime, with jitter,
//! so calls never wait on a refresh they could have avoided.
//!
//! Several bridge processes may share one store. rmcp's refresh takes our
//! cross-process lock and re-reads the store under it, so it always uses the
//! newest refresh token (a rotated one is never presented twice). Before asking,
//! the task also re-reads the store: if another process already refreshed, it
//! only reschedules.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rmcp::transport::auth::{AuthError, AuthorizationManager, StoredCredentials};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::ServerCredentials;

/// Shortest wait between two refreshes, whatever the token says.
const MIN_WAIT: Duration = Duration::from_secs(1);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// (received at, lifetime) of the stored access token, in seconds.
fn lifetime(c: &StoredCredentials) -> Option<(u64, u64)> {
    let received = c.token_received_at?;
    let v = serde_json::to_value(c.token_response.as_ref()?).ok()?;
    let expires_in = v.get("expires_in")?.as_u64()?;
    v.get("refresh_token")?.as_str()?;
    Some((received, expires_in))
}

/// When to refresh a token received at `received` that lives `expires_in`
/// seconds: 75 % of the lifetime, minus up to 10 % jitter, never before `now`.
pub fn due_in(received: u64, expires_in: u64, now: u64, jitter: f64) -> Duration {
    let at = received as f64 + expires_in as f64 * (0.75 - 0.10 * jitter.clamp(0.0, 1.0));
    Duration::from_secs_f64((at - now as f64).max(0.0)).max(MIN_WAIT)
}

/// What the refresh task reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The grant is gone (`invalid_grant`): a new login is needed.
    NeedsLogin(String),
    /// Stopped (shutdown, or no refresh token to use).
    Stopped,
}

fn needs_login(server: &str, why: String) -> Outcome {
    tracing::warn!(
        server,
        "the login has expired or was revoked: run `mcp-bridge login {server}`"
    );
    Outcome::NeedsLogin(why)
}

/// Keep the token of one server fresh until `cancel`.
pub async fn run(
    server: String,
    manager: Arc<Mutex<AuthorizationManager>>,
    creds: ServerCredentials,
    cancel: CancellationToken,
) -> Outcome {
    let mut failures = 0u32;
    loop {
        let Ok(Some(stored)) = creds.load_fresh().await else {
            return Outcome::Stopped;
        };
        let Some((received, expires_in)) = lifetime(&stored) else {
            tracing::debug!(server, "no expiry or refresh token: nothing to refresh ahead of time");
            return Outcome::Stopped;
        };
        let wait = if failures == 0 {
            due_in(received, expires_in, now(), rand::rng().random_range(0.0..1.0))
        } else {
            crate::util::backoff(failures, Duration::from_secs(60)).max(MIN_WAIT)
        };
        tokio::select! {
            _ = cancel.cancelled() => return Outcome::Stopped,
            _ = tokio::time::sleep(wait) => {}
        }
        // Another process may have refreshed meanwhile: then just reschedule.
        if let Ok(Some(fresh)) = creds.load_fresh().await
            && fresh.token_received_at.is_some_and(|t| t > received)
            && failures == 0
        {
            continue;
        }
        let result = tokio::select! {
            _ = cancel.cancelled() => return Outcome::Stopped,
            r = crate::telemetry::global().traced(
                "mcp_bridge.token.refresh",
                &server,
                |_| "refresh_failed",
                async { manager.lock().await.refresh_token().await },
            ) => r,
        };
        crate::telemetry::global().refresh(&server, result.is_ok());
        match result {
            Ok(_) => {
                failures = 0;
                tracing::debug!(server, "refreshed the access token ahead of expiry");
            }
            // `invalid_grant` (rmcp reports it as rejected, or as a failed refresh
            // whose message names it): the grant is gone.
            Err(AuthError::TokenRefreshRejected(e)) => return needs_login(&server, e),
            Err(AuthError::TokenRefreshFailed(e)) if e.contains("invalid_grant") => return needs_login(&server, e),
            Err(AuthError::AuthorizationRequired) => {
                return Outcome::NeedsLogin("authorization required".into());
            }
            Err(e) => {
                // Transient (network, 5xx, temporarily_unavailable): keep the token
                // while it is valid and try again with backoff.
                failures += 1;
                tracing::debug!(server, failures, "refresh failed, will retry: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! `due_in` as arithmetic, and the refresh task itself on tokio's paused
    //! clock: a scripted token endpoint (an [`OAuthHttpClient`] that records
    //! when it is asked) behind a real `AuthorizationManager` and a memory store.
    //! Each test runs in virtual time, so the timings asserted are those of the
    //! scheduler, not of a loaded machine, and no test waits for real.
    //!
    //! The wall clock does not move with the paused one, so a token "received
    //! now" stays fresh for the whole test; only `now()` may cross a second
    //! between the test storing it and the task reading the clock, which moves a
    //! refresh due at 65–75 s (jitter) to 64–75 s.

    use crate::util::Locked;
    use std::collections::VecDeque;
    use std::sync::Mutex as StdMutex;

    use rmcp::transport::auth::{
        AuthorizationMetadata, CredentialStore, OAuthClientConfig, OAuthHttpClient, OAuthHttpClientFuture,
        OAuthHttpRequest,
    };
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use super::*;
    use crate::auth::TokenStore;
    use crate::config::StoreKind;

    #[test]
    fn refresh_is_due_at_about_three_quarters() {
        assert_eq!(due_in(1000, 100, 1000, 0.0), Duration::from_secs(75));
        assert_eq!(due_in(1000, 100, 1000, 1.0), Duration::from_secs(65));
        assert_eq!(due_in(1000, 100, 1050, 0.0), Duration::from_secs(25));
        // Overdue: soon, but never in a tight loop.
        assert_eq!(due_in(1000, 100, 2000, 0.0), MIN_WAIT);
    }

    const URL: &str = "http://127.0.0.1:9/mcp";
    const CLIENT: &str = "client-1";
    const LIFETIME: u64 = 100;

    /// What the token endpoint answers, in order.
    enum Answer {
        /// New tokens living `LIFETIME` seconds, refresh token rotated.
        Tokens,
        /// An OAuth error response with this status.
        Error(u16, &'static str),
        /// No answer at all.
        Hang,
    }

    /// One refresh request: when (virtual time since the start) and with which
    /// refresh token.
    #[derive(Debug, PartialEq)]
    struct Asked {
        at: Duration,
        presented: String,
    }

    /// The token endpoint: answers as scripted and reports each request on `asked`.
    struct Endpoint {
        start: Instant,
        answers: StdMutex<VecDeque<Answer>>,
        issued: StdMutex<u32>,
        asked: mpsc::UnboundedSender<Asked>,
    }

    impl OAuthHttpClient for Endpoint {
        fn execute(&self, request: OAuthHttpRequest) -> OAuthHttpClientFuture<'_> {
            let form: std::collections::HashMap<_, _> = url::form_urlencoded::parse(request.request.body()).collect();
            assert_eq!(form.get("grant_type").map(|g| &**g), Some("refresh_token"), "{form:?}");
            let _ = self.asked.send(Asked {
                at: self.start.elapsed(),
                presented: form.get("refresh_token").map(|t| t.to_string()).unwrap_or_default(),
            });
            let answer = self.answers.locked().pop_front().unwrap_or(Answer::Hang);
            let (status, json) = match answer {
                Answer::Tokens => {
                    let mut n = self.issued.locked();
                    *n += 1;
                    (200, tokens(&format!("r{}", *n + 1), LIFETIME))
                }
                Answer::Error(status, code) => (status, serde_json::json!({ "error": code })),
                Answer::Hang => return Box::pin(std::future::pending()),
            };
            let response = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(json.to_string().into_bytes())
                .unwrap();
            Box::pin(std::future::ready(Ok(response)))
        }
    }

    fn tokens(refresh: &str, expires_in: u64) -> serde_json::Value {
        serde_json::json!({
            "access_token": format!("access-{refresh}"),
            "token_type": "Bearer",
            "expires_in": expires_in,
            "refresh_token": refresh,
        })
    }

    fn stored(token_response: serde_json::Value, received: u64) -> StoredCredentials {
        serde_json::from_value(serde_json::json!({
            "client_id": CLIENT,
            "token_response": token_response,
            "token_received_at": received,
        }))
        .unwrap()
    }

    /// One logged-in server: its store entry, a manager whose token endpoint is
    /// `Endpoint`, and the requests it sees.
    struct Rig {
        creds: ServerCredentials,
        manager: Arc<Mutex<AuthorizationManager>>,
        asked: mpsc::UnboundedReceiver<Asked>,
        start: Instant,
        /// Stops the task `run` starts.
        cancel: CancellationToken,
        _dir: tempfile::TempDir,
    }

    impl Rig {
        /// Stored tokens received at `received` (Unix seconds), and the answers.
        async fn new(received: u64, answers: Vec<Answer>) -> Rig {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(TokenStore::open(StoreKind::Memory, dir.path()).unwrap());
            let creds = ServerCredentials::new(store, URL);
            creds.save(stored(tokens("r1", LIFETIME), received)).await.unwrap();
            let (tx, asked) = mpsc::unbounded_channel();
            let start = Instant::now();
            let endpoint = Endpoint {
                start,
                answers: StdMutex::new(answers.into()),
                issued: StdMutex::new(0),
                asked: tx,
            };
            let mut m = AuthorizationManager::new_with_oauth_http_client(URL, Arc::new(endpoint))
                .await
                .unwrap();
            let metadata = serde_json::json!({
                "authorization_endpoint": "http://127.0.0.1:9/authorize",
                "token_endpoint": "http://127.0.0.1:9/token",
            });
            m.set_metadata(serde_json::from_value::<AuthorizationMetadata>(metadata).unwrap());
            m.configure_client(OAuthClientConfig::new(CLIENT, "http://127.0.0.1:9/callback"))
                .unwrap();
            m.set_credential_store(creds.clone());
            Rig {
                creds,
                manager: Arc::new(Mutex::new(m)),
                asked,
                start,
                cancel: CancellationToken::new(),
                _dir: dir,
            }
        }

        /// The refresh task, started.
        fn run(&self) -> tokio::task::JoinHandle<Outcome> {
            tokio::spawn(run(
                "vault".into(),
                self.manager.clone(),
                self.creds.clone(),
                self.cancel.clone(),
            ))
        }

        /// Cancel the task: it stops at once, having asked nothing more.
        async fn stop(self, task: tokio::task::JoinHandle<Outcome>) {
            let at = self.start.elapsed();
            self.cancel.cancel();
            assert_eq!(task.await.unwrap(), Outcome::Stopped);
            assert_eq!(self.start.elapsed(), at, "stopped without waiting");
            self.no_more_requests().await;
        }

        /// The next request to the token endpoint.
        async fn next_request(&mut self) -> Asked {
            self.asked
                .recv()
                .await
                .expect("the endpoint lives as long as the manager")
        }

        /// The next request, a refresh ahead of the expiry of a token received at
        /// `since` (65–75 s later, or 64 s: see above), presenting `token`.
        async fn refresh_ahead(&mut self, since: Duration, token: &str) -> Asked {
            let asked = self.next_request().await;
            within(asked.at - since, 64.0, 75.0);
            assert_eq!(asked.presented, token);
            asked
        }

        /// The refresh token in the store (read when no save can be under way).
        async fn refresh_token(&self) -> String {
            let c = self.creds.load_fresh().await.unwrap().unwrap();
            let v = serde_json::to_value(c.token_response.unwrap()).unwrap();
            v["refresh_token"].as_str().unwrap().to_owned()
        }

        /// After the task has ended: the requests it made, none left unseen.
        async fn no_more_requests(mut self) {
            drop(self.manager);
            assert_eq!(self.asked.recv().await, None);
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// `at` lies in `[lo, hi]` seconds (plus the millisecond the timer wheel may
    /// round a deadline up by).
    #[track_caller]
    fn within(at: Duration, lo: f64, hi: f64) {
        assert!(
            secs(lo) <= at && at <= secs(hi) + Duration::from_millis(1),
            "{at:?} not in [{lo} s, {hi} s]"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_at_three_quarters_of_the_lifetime_and_again_after() {
        let mut rig = Rig::new(now(), vec![Answer::Tokens, Answer::Tokens]).await;
        let task = rig.run();
        let first = rig.refresh_ahead(Duration::ZERO, "r1").await;
        // The next one is timed from the new token, received at the first
        // refresh, and presents the rotated refresh token.
        rig.refresh_ahead(first.at, "r2").await;
        rig.stop(task).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_overdue_token_is_refreshed_after_the_minimum_wait() {
        let mut rig = Rig::new(now() - 10 * LIFETIME, vec![Answer::Tokens]).await;
        let task = rig.run();
        assert_eq!(rig.next_request().await.at, MIN_WAIT);
        rig.stop(task).await;
    }

    /// Transient failures (503 `temporarily_unavailable`, 500) are retried after
    /// `util::backoff` (0.25 s doubling, jittered down by up to half, capped at
    /// 60 s, never under `MIN_WAIT`) with the same refresh token; a success goes
    /// back to refreshing ahead of expiry.
    #[tokio::test(start_paused = true)]
    async fn transient_failures_back_off_exponentially_up_to_a_minute() {
        let failures = 12;
        let mut answers: Vec<_> = (0..failures)
            .map(|i| match i % 2 {
                0 => Answer::Error(503, "temporarily_unavailable"),
                _ => Answer::Error(500, "server_error"),
            })
            .collect();
        answers.extend([Answer::Tokens, Answer::Tokens]);
        let mut rig = Rig::new(now() - 10 * LIFETIME, answers).await;
        let task = rig.run();
        let mut last = rig.next_request().await;
        assert_eq!(last.at, MIN_WAIT);
        for failed in 1..=failures {
            let next = rig.next_request().await;
            // backoff(n) = 0.25 s * 2^n, capped at 60 s, times a jitter in
            // [0.5, 1], and at least MIN_WAIT: exactly 1 s after the first two.
            let full = (0.25 * f64::from(1u32 << failed)).min(60.0);
            within(next.at - last.at, (full / 2.0).max(1.0), full.max(1.0));
            assert_eq!(next.presented, "r1", "the login is kept through failures");
            last = next;
        }
        // The last retry succeeded: the next refresh is due from the new token.
        rig.refresh_ahead(last.at, "r2").await;
        rig.stop(task).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_grant_needs_a_login_and_ends_the_task() {
        let mut rig = Rig::new(now() - 10 * LIFETIME, vec![Answer::Error(400, "invalid_grant")]).await;
        let task = rig.run();
        assert_eq!(rig.next_request().await.at, MIN_WAIT);
        let outcome = task.await.unwrap();
        assert!(
            matches!(outcome, Outcome::NeedsLogin(ref e) if e.contains("invalid_grant")),
            "{outcome:?}"
        );
        // Ended at once, with no retry.
        assert_eq!(rig.start.elapsed(), MIN_WAIT);
        rig.no_more_requests().await;
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_ends_the_wait_at_once() {
        let rig = Rig::new(now(), vec![Answer::Tokens]).await;
        let task = rig.run();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let start = rig.start;
        rig.stop(task).await;
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_ends_a_backoff() {
        let mut rig = Rig::new(
            now() - 10 * LIFETIME,
            vec![Answer::Error(503, "temporarily_unavailable")],
        )
        .await;
        let task = rig.run();
        assert_eq!(rig.next_request().await.at, MIN_WAIT);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let start = rig.start;
        rig.stop(task).await;
        assert_eq!(start.elapsed(), MIN_WAIT + Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_ends_a_request_the_endpoint_never_answers() {
        let mut rig = Rig::new(now() - 10 * LIFETIME, vec![Answer::Hang]).await;
        let task = rig.run();
        assert_eq!(rig.next_request().await.at, MIN_WAIT);
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(rig.refresh_token().await, "r1", "the login is kept");
        rig.stop(task).await;
    }

    /// Another bridge process refreshed while this one waited: the task asks
    /// nothing at the old due time, reschedules from the newer token, and
    /// presents that token's refresh token.
    #[tokio::test(start_paused = true)]
    async fn a_refresh_by_another_process_only_reschedules() {
        let mut rig = Rig::new(now() - 10 * LIFETIME, vec![Answer::Tokens]).await;
        let task = rig.run();
        tokio::time::sleep(MIN_WAIT / 2).await;
        let other = ServerCredentials::new(rig.creds.store.clone(), URL);
        other.save(stored(tokens("other", LIFETIME), now())).await.unwrap();
        rig.refresh_ahead(MIN_WAIT, "other").await;
        rig.stop(task).await;
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_refresh_token_there_is_nothing_to_schedule() {
        let rig = Rig::new(now(), vec![]).await;
        let mut response = tokens("unused", LIFETIME);
        response.as_object_mut().unwrap().remove("refresh_token");
        rig.creds.save(stored(response, now())).await.unwrap();
        assert_eq!(rig.run().await.unwrap(), Outcome::Stopped);
        assert_eq!(rig.start.elapsed(), Duration::ZERO);
        rig.no_more_requests().await;
    }
}
