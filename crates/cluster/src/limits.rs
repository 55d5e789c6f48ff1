//! Client-side rate limiting, timeouts and retries with backoff.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::ClusterError;

/// How hard and how patiently gitplane talks to one cluster.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Sustained requests per second.
    pub qps: f64,
    /// Requests allowed in a burst above `qps`.
    pub burst: u32,
    /// Time allowed for one request (watches excepted).
    pub timeout: Duration,
    /// Retries of a request that failed with 429, 5xx, a timeout or a transport error.
    pub retries: u32,
    /// The first retry's delay; each further retry doubles it, up to 10 seconds.
    pub backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            qps: 1000.0,
            burst: 2000,
            timeout: Duration::from_secs(30),
            retries: 5,
            backoff: Duration::from_millis(100),
        }
    }
}

/// A token bucket plus the retry policy, counting requests as they end.
pub(crate) struct Limiter {
    limits: Limits,
    bucket: Mutex<(f64, Instant)>,
    counts: std::sync::Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Limiter {
    pub(crate) fn new(limits: Limits) -> Self {
        let tokens = f64::from(limits.burst.max(1));
        Limiter {
            limits,
            bucket: Mutex::new((tokens, Instant::now())),
            counts: std::sync::Mutex::default(),
        }
    }

    fn count(&self, verb: &'static str, code: String) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((verb, code))
            .or_default() += 1;
    }

    /// Requests made so far, by verb and status code (`2xx` for successes,
    /// `error` when no response came); retries count each attempt.
    pub(crate) fn counts(&self) -> Vec<(&'static str, String, u64)> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((verb, code), n)| (*verb, code.clone(), *n))
            .collect()
    }

    /// Waits for a token.
    async fn acquire(&self) {
        let qps = self.limits.qps.max(0.001);
        let burst = f64::from(self.limits.burst.max(1));
        let wait = {
            let mut bucket = self.bucket.lock().await;
            let now = Instant::now();
            let (tokens, last) = *bucket;
            let tokens = (tokens + now.duration_since(last).as_secs_f64() * qps).min(burst) - 1.0;
            *bucket = (tokens, now);
            (tokens < 0.0).then(|| Duration::from_secs_f64(-tokens / qps))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }

    /// Runs `op` under the rate limit and timeout, retrying what is worth
    /// retrying with exponential backoff (or the server's `Retry-After`).
    pub(crate) async fn run<T, F, Fut>(&self, verb: &'static str, op: F) -> Result<T, ClusterError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut attempt = 0;
        loop {
            self.acquire().await;
            let error = match tokio::time::timeout(self.limits.timeout, op()).await {
                Ok(Ok(value)) => {
                    self.count(verb, "2xx".into());
                    return Ok(value);
                }
                Ok(Err(e)) => ClusterError::from(e),
                Err(_) => ClusterError::Timeout(self.limits.timeout),
            };
            let code = error
                .code()
                .map_or_else(|| "error".to_string(), |c| c.to_string());
            self.count(verb, code);
            if !error.is_retryable() || attempt >= self.limits.retries {
                return Err(error);
            }
            let delay = match &error {
                ClusterError::Api {
                    retry_after: Some(seconds),
                    ..
                } => Duration::from_secs(u64::from(*seconds).min(30)),
                _ => self
                    .limits
                    .backoff
                    .saturating_mul(1 << attempt.min(16))
                    .min(Duration::from_secs(10)),
            };
            tracing::debug!("retrying in {delay:?} after: {error}");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: "boom".into(),
            reason: "ServiceUnavailable".into(),
            ..Default::default()
        }))
    }

    fn fast(retries: u32) -> Limiter {
        Limiter::new(Limits {
            retries,
            backoff: Duration::from_millis(1),
            ..Limits::default()
        })
    }

    #[tokio::test]
    async fn retries_server_errors_then_succeeds() {
        let calls = AtomicU32::new(0);
        let result = fast(3)
            .run("get", || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(api_error(503)),
                    1 => Err(api_error(429)),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn does_not_retry_client_errors_and_gives_up_after_the_limit() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = fast(3)
            .run("get", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(api_error(404))
            })
            .await;
        assert!(result.unwrap_err().is_not_found());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let result: Result<(), _> = fast(2)
            .run("get", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(api_error(500))
            })
            .await;
        assert_eq!(result.unwrap_err().code(), Some(500));
        assert_eq!(calls.load(Ordering::SeqCst), 3, "one try and two retries");
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_paces_requests() {
        let limiter = Limiter::new(Limits {
            qps: 10.0,
            burst: 2,
            ..Limits::default()
        });
        let started = Instant::now();
        for _ in 0..4 {
            limiter
                .run("get", || async { Ok::<_, kube::Error>(()) })
                .await
                .unwrap();
        }
        // Two from the burst, then two at 10 per second.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
    }
}
