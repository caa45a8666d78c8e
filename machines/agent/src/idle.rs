//! Whether anyone uses the sandbox: attached terminal clients and commands in flight. An
//! agent nobody used for its idle time stops by itself, as on SIGTERM (its shells end, the
//! home stays), so idle sandboxes give their place back; the edge starts the agent again on
//! the next attach.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counts what uses the sandbox now and remembers when the last use ended.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<(usize, Instant)>,
}

/// One use of the sandbox, for as long as it is held.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Activity {
    /// No use yet; the idle time counts from now.
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            state: Mutex::new((0, Instant::now())),
        })
    }

    /// Marks the sandbox in use until the returned guard is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.state.lock().expect("activity lock").0 += 1;
        Busy(self.clone())
    }

    /// How long nothing has used the sandbox (`None` while something does).
    pub fn idle_for(&self) -> Option<Duration> {
        let (uses, since) = *self.state.lock().expect("activity lock");
        (uses == 0).then(|| since.elapsed())
    }

    /// Resolves once nothing has used the sandbox for `limit`.
    pub async fn idle(&self, limit: Duration) {
        let tick = (limit / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
        loop {
            if self.idle_for().is_some_and(|d| d >= limit) {
                return;
            }
            tokio::time::sleep(tick).await;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().expect("activity lock");
        s.0 -= 1;
        s.1 = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_counts_from_the_last_use_ending() {
        let a = Activity::new();
        let first = a.busy();
        let second = a.busy();
        assert_eq!(a.idle_for(), None);
        drop(first);
        assert_eq!(a.idle_for(), None, "one use is still going");
        std::thread::sleep(Duration::from_millis(20));
        drop(second);
        assert!(a.idle_for().unwrap() < Duration::from_millis(20));
    }
}
