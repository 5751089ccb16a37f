//! A stop flag that sleeping threads can wait on, so stopping a project or the daemon
//! wakes every sleeper at once instead of waiting out a long `sleep` or `interval`.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A flag raised once (never lowered) that waiting threads see at once.
#[derive(Debug, Default)]
pub struct Stop {
    set: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// A flag not yet raised.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Raise the flag and wake every waiter.
    pub fn set(&self) {
        *crate::error::lock(&self.set) = true;
        self.wake.notify_all();
    }

    /// True once the flag has been raised.
    pub fn is_set(&self) -> bool {
        *crate::error::lock(&self.set)
    }

    /// Sleep for `dur` unless the flag is raised first; true if it was raised.
    pub fn wait(&self, dur: Duration) -> bool {
        let deadline = Instant::now() + dur;
        let mut set = crate::error::lock(&self.set);
        while !*set {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            set = self
                .wake
                .wait_timeout(set, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn wait_returns_early_when_set() {
        let s = Arc::new(Stop::new());
        assert!(!s.wait(Duration::from_millis(1)));
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.wait(Duration::from_secs(600)));
        std::thread::sleep(Duration::from_millis(20));
        s.set();
        assert!(t.join().unwrap());
        assert!(s.is_set());
    }
}
