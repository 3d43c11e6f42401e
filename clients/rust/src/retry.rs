//! Retries of calls that failed with a retryable code.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher as _, Hasher as _};
use std::time::Duration;

use tokio::time::Instant;
use tonic::{Code, Status};

use crate::error::{Error, Result};

/// When and how long to wait before retrying a call that failed with a
/// retryable code (by default `UNAVAILABLE` and `RESOURCE_EXHAUSTED`).
///
/// A call is retried only while nothing of it was received (a Generate
/// stream that delivered an event is never replayed), at most
/// `max_attempts` attempts in all, and never past the call's deadline. The
/// wait is the server's `google.rpc.RetryInfo` delay when it sent one (a
/// delay above `max_retry_info_delay` is not waited for: the error is
/// returned); otherwise exponential backoff with "equal jitter": after
/// attempt `k` the wait is uniform in `[b/2, b]`, where
/// `b = min(max_backoff, initial_backoff * multiplier^(k-1))`.
///
/// ```
/// use std::time::Duration;
/// use tokenwire_client::RetryPolicy;
///
/// let policy = RetryPolicy {
///     max_attempts: 6,
///     max_backoff: Duration::from_secs(2),
///     ..RetryPolicy::default()
/// };
/// assert!(policy.backoff(1, 0.0) >= Duration::from_millis(100));
/// assert_eq!(RetryPolicy::disabled().max_attempts, 1);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: no retries).
    pub max_attempts: u32,
    /// The backoff ceiling after the first failed attempt.
    pub initial_backoff: Duration,
    /// The most a backoff may be.
    pub max_backoff: Duration,
    /// How much the backoff ceiling grows per attempt (at least 1).
    pub multiplier: f64,
    /// The longest `RetryInfo` delay waited for; a longer one ends retrying.
    pub max_retry_info_delay: Duration,
    /// The codes retried.
    pub retryable_codes: Vec<Code>,
}

impl Default for RetryPolicy {
    /// 4 attempts, backoff from 200 ms (doubling) up to 5 s, `RetryInfo`
    /// delays up to 30 s, `UNAVAILABLE` and `RESOURCE_EXHAUSTED`.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            multiplier: 2.0,
            max_retry_info_delay: Duration::from_secs(30),
            retryable_codes: vec![Code::Unavailable, Code::ResourceExhausted],
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub fn disabled() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff after failed attempt `attempt` (1-based) without
    /// `RetryInfo`; `unit` in `[0, 1]` places it between the ceiling's half
    /// (0) and the ceiling (1).
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let ceiling = self.initial_backoff.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let ceiling = ceiling.min(self.max_backoff.as_secs_f64());
        let seconds = ceiling / 2.0 + ceiling / 2.0 * unit.clamp(0.0, 1.0);
        Duration::try_from_secs_f64(seconds).unwrap_or(self.max_backoff)
    }

    /// The wait before attempt `attempt + 1` after `error`, or `None` when
    /// `error` is final (not retryable, attempts used up, or a `RetryInfo`
    /// delay above the cap).
    pub fn delay(&self, attempt: u32, error: &Error, unit: f64) -> Option<Duration> {
        if attempt >= self.max_attempts || !self.retryable_codes.contains(&error.code()) {
            return None;
        }
        // Protocol violations and transport errors are not retried.
        error.status()?;
        match error.retry_delay() {
            Some(delay) if delay > self.max_retry_info_delay => None,
            Some(delay) => Some(delay),
            None => Some(self.backoff(attempt, unit)),
        }
    }
}

/// A uniform random number in `[0, 1)` for the jitter (std's randomly keyed
/// hasher: no extra dependency, good enough for spreading retries).
pub(crate) fn jitter() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    // 53 random bits -> [0, 1).
    #[allow(clippy::cast_precision_loss)]
    let unit = (hasher.finish() >> 11) as f64 / (1_u64 << 53) as f64;
    unit
}

/// Runs `attempt` (given the time left to the deadline, if any) until it
/// succeeds or fails for good, per `policy`.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    deadline: Option<Duration>,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut(Option<Duration>) -> Fut,
    Fut: Future<Output = std::result::Result<T, Status>>,
{
    let start = Instant::now();
    let mut attempts = 0_u32;
    loop {
        attempts += 1;
        let left = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_sub(start.elapsed());
                if left.is_zero() {
                    return Err(Status::deadline_exceeded("deadline passed before the call").into());
                }
                Some(left)
            }
            None => None,
        };
        let error = match attempt(left).await {
            Ok(value) => return Ok(value),
            Err(status) => Error::from(status),
        };
        let Some(delay) = policy.delay(attempts, &error, jitter()) else {
            return Err(error);
        };
        if deadline.is_some_and(|deadline| start.elapsed() + delay >= deadline) {
            return Err(error);
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt as _};

    fn status(code: Code, retry_delay: Option<Duration>) -> Error {
        match retry_delay {
            Some(delay) => {
                Status::with_error_details(code, "x", ErrorDetails::with_retry_info(Some(delay)))
                    .into()
            }
            None => Status::new(code, "x").into(),
        }
    }

    #[test]
    fn backoff_grows_with_equal_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(1, 0.0), Duration::from_millis(100));
        assert_eq!(policy.backoff(1, 1.0), Duration::from_millis(200));
        assert_eq!(policy.backoff(3, 1.0), Duration::from_millis(800));
        assert_eq!(policy.backoff(30, 1.0), Duration::from_secs(5));
        assert_eq!(policy.backoff(30, 0.0), Duration::from_millis(2500));
        for _ in 0..100 {
            let unit = jitter();
            assert!((0.0..1.0).contains(&unit));
        }
    }

    #[test]
    fn delay_honours_retry_info_codes_and_attempts() {
        let policy = RetryPolicy::default();
        let queued = status(Code::ResourceExhausted, Some(Duration::from_millis(1500)));
        assert_eq!(
            policy.delay(1, &queued, 0.5),
            Some(Duration::from_millis(1500))
        );
        // Too long a RetryInfo delay: give up.
        let long = status(Code::Unavailable, Some(Duration::from_secs(60)));
        assert_eq!(policy.delay(1, &long, 0.5), None);
        // No RetryInfo: backoff.
        let down = status(Code::Unavailable, None);
        assert_eq!(
            policy.delay(2, &down, 1.0),
            Some(Duration::from_millis(400))
        );
        // Attempts used up, codes not retried, protocol violations.
        assert_eq!(policy.delay(4, &down, 1.0), None);
        assert_eq!(
            policy.delay(1, &status(Code::InvalidArgument, None), 1.0),
            None
        );
        let violation = Error::ProtocolViolation("x".into());
        assert_eq!(policy.delay(1, &violation, 1.0), None);
        assert_eq!(RetryPolicy::disabled().delay(1, &down, 1.0), None);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_but_never_past_the_deadline() {
        let policy = RetryPolicy::default();
        let mut calls = 0;
        let value = with_retries(&policy, None, |_| {
            calls += 1;
            let result = if calls < 3 {
                Err(Status::unavailable("down"))
            } else {
                Ok(calls)
            };
            async move { result }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);

        // A 10 s RetryInfo delay does not fit a 1 s deadline: one attempt.
        let mut calls = 0;
        let error = with_retries(&policy, Some(Duration::from_secs(1)), |left| {
            calls += 1;
            assert!(left.unwrap() <= Duration::from_secs(1));
            async {
                Err::<(), _>(Status::with_error_details(
                    Code::ResourceExhausted,
                    "queue full",
                    ErrorDetails::with_retry_info(Some(Duration::from_secs(10))),
                ))
            }
        })
        .await
        .unwrap_err();
        assert_eq!(calls, 1);
        assert_eq!(error.code(), Code::ResourceExhausted);
    }
}
