//! The demo's users: a few client threads sending `GET /` to the app's public port at a
//! steady, bounded rate, counting what they got back per version (read from the body) and
//! every failure (an answer that is not 2xx, or none at all). The counts are what a real
//! user would have seen, kept apart from the router's own metrics that zenith judges by.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Client threads: enough that a slow version (400 ms per request at 10 % of the traffic)
/// does not hold the rate down.
const CLIENTS: usize = 8;
/// An answer slower than this counts as slow (the demo canary's p95 limit).
pub const SLOW: Duration = Duration::from_millis(250);

/// What the clients saw, cumulative since the start (or a difference, see [`Counts::since`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub sent: u64,
    pub failed: u64,
    /// Answers slower than [`SLOW`], failed or not.
    pub slow: u64,
    /// Answers per version, failed ones included when the body names the version.
    pub versions: BTreeMap<String, u64>,
    /// Failures by who failed: a version (its own 500s), `HTTP 502` (the router), `no answer`.
    pub failed_by: BTreeMap<String, u64>,
}

impl Counts {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let diff = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(k, v)| (k.clone(), v - then.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect()
        };
        Counts {
            sent: self.sent - earlier.sent,
            failed: self.failed - earlier.failed,
            slow: self.slow - earlier.slow,
            versions: diff(&self.versions, &earlier.versions),
            failed_by: diff(&self.failed_by, &earlier.failed_by),
        }
    }

    /// `traffic 152 req/s · v1 75% · v2 25% · failed 0` over `secs` seconds.
    pub fn line(&self, secs: f64) -> String {
        let rate = if secs > 0.0 { self.sent as f64 / secs } else { 0.0 };
        let answered: u64 = self.versions.values().sum();
        let mut line = format!("traffic {rate:>3.0} req/s");
        for (version, n) in &self.versions {
            line.push_str(&format!(
                " · {version} {:>3.0}%",
                *n as f64 * 100.0 / answered.max(1) as f64
            ));
        }
        line.push_str(&format!(" · failed {}", self.failed));
        if !self.failed_by.is_empty() {
            let who: Vec<String> = self.failed_by.iter().map(|(k, v)| format!("{v} from {k}")).collect();
            line.push_str(&format!(" ({})", who.join(", ")));
        }
        if self.slow > 0 {
            line.push_str(&format!(" · slow {}", self.slow));
        }
        line
    }
}

struct Shared {
    counts: Mutex<Counts>,
    stop: AtomicBool,
    /// When the next request is due. Slots are handed out one `period` apart; a slot in the
    /// past moves to now, so a stall never turns into a burst to catch up.
    next: Mutex<Instant>,
    period: Duration,
}

/// The running clients; stopped and joined when dropped.
pub struct Traffic {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Traffic {
    /// Starts sending `rate` requests per second to `url`.
    pub fn start(url: &str, rate: u32) -> Traffic {
        let shared = Arc::new(Shared {
            counts: Mutex::new(Counts::default()),
            stop: AtomicBool::new(false),
            next: Mutex::new(Instant::now()),
            period: Duration::from_secs(1) / rate.max(1),
        });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let threads = (0..CLIENTS)
            .map(|_| {
                let (shared, agent, url) = (shared.clone(), agent.clone(), url.to_string());
                std::thread::spawn(move || client(&shared, &agent, &url))
            })
            .collect();
        Traffic { shared, threads }
    }

    pub fn counts(&self) -> Counts {
        self.shared.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the clients, waits for their last requests, and returns the final counts.
    pub fn stop(mut self) -> Counts {
        self.halt();
        self.counts()
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.halt();
    }
}

fn client(shared: &Shared, agent: &ureq::Agent, url: &str) {
    while !shared.stop.load(Ordering::SeqCst) {
        let due = {
            let mut next = shared.next.lock().unwrap_or_else(|e| e.into_inner());
            let due = (*next).max(Instant::now());
            *next = due + shared.period;
            due
        };
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let start = Instant::now();
        let (version, failure) = one_request(agent, url);
        let slow = start.elapsed() > SLOW;
        let mut c = shared.counts.lock().unwrap_or_else(|e| e.into_inner());
        c.sent += 1;
        c.slow += u64::from(slow);
        if let Some(v) = version {
            *c.versions.entry(v).or_default() += 1;
        }
        if let Some(f) = failure {
            c.failed += 1;
            *c.failed_by.entry(f).or_default() += 1;
        }
    }
}

/// The version that answered (when the body says) and, for a failure, who failed.
fn one_request(agent: &ureq::Agent, url: &str) -> (Option<String>, Option<String>) {
    let mut resp = match agent.get(url).call() {
        Ok(r) => r,
        Err(_) => return (None, Some("no answer".into())),
    };
    let status = resp.status();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    if status.is_success() {
        let version = body.strip_prefix("hello from ").map(|v| v.trim().to_string());
        return (Some(version.unwrap_or_else(|| "?".into())), None);
    }
    // The demo app's own failures read `v3 failed on purpose`; anything else is the router's.
    match body.strip_suffix(" failed on purpose\n") {
        Some(v) => (Some(v.to_string()), Some(v.to_string())),
        None => (None, Some(format!("HTTP {}", status.as_u16()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(sent: u64, failed: u64, versions: &[(&str, u64)], failed_by: &[(&str, u64)]) -> Counts {
        let map = |xs: &[(&str, u64)]| xs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        Counts {
            sent,
            failed,
            slow: 0,
            versions: map(versions),
            failed_by: map(failed_by),
        }
    }

    #[test]
    fn a_line_shows_rate_shares_and_who_failed() {
        let before = counts(100, 0, &[("v1", 100)], &[]);
        let after = counts(400, 6, &[("v1", 325), ("v2", 75)], &[("v2", 6)]);
        let delta = after.since(&before);
        assert_eq!(delta.versions.get("v1"), Some(&225));
        assert_eq!(
            delta.line(2.0),
            "traffic 150 req/s · v1  75% · v2  25% · failed 6 (6 from v2)"
        );
    }

    #[test]
    fn versions_without_answers_in_a_window_are_left_out() {
        let before = counts(100, 0, &[("v1", 60), ("v2", 40)], &[]);
        let after = counts(200, 0, &[("v1", 60), ("v2", 140)], &[]);
        assert_eq!(after.since(&before).line(1.0), "traffic 100 req/s · v2 100% · failed 0");
    }
}
