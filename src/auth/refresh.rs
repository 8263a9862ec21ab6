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
            r = async { manager.lock().await.refresh_token().await } => r,
        };
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
    use super::*;

    #[test]
    fn refresh_is_due_at_about_three_quarters() {
        assert_eq!(due_in(1000, 100, 1000, 0.0), Duration::from_secs(75));
        assert_eq!(due_in(1000, 100, 1000, 1.0), Duration::from_secs(65));
        assert_eq!(due_in(1000, 100, 1050, 0.0), Duration::from_secs(25));
        // Overdue: soon, but never in a tight loop.
        assert_eq!(due_in(1000, 100, 2000, 0.0), MIN_WAIT);
    }
}
