//! How far a push is, per target: requests sent and still to send, members changed, and an
//! estimate of the time left. A push counts into it as it goes; a terminal, the daemon's
//! API and its metrics read it.
//!
//! The requests to send are estimated once a target's users are resolved, from the set
//! differences each group's plan will have (requests of `max_members_per_request` changes,
//! and one per group to create); requests planned beyond the estimate (read-backs that found
//! more to do) raise it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Every target's progress in one push.
#[derive(Debug, Default)]
pub struct Progress {
    targets: Mutex<BTreeMap<String, Arc<TargetProgress>>>,
}

/// One target's counters.
#[derive(Debug)]
pub struct TargetProgress {
    started: Instant,
    /// Set once the users are resolved and the requests estimated.
    planned_yet: std::sync::atomic::AtomicBool,
    estimated: AtomicU64,
    planned: AtomicU64,
    sent: AtomicU64,
    members: AtomicU64,
}

/// One target's progress as numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Numbers {
    pub target: String,
    /// Whether the requests to send are known yet (after the users are looked up).
    pub planned: bool,
    /// Requests sent and answered.
    pub sent: u64,
    /// Requests still to send (estimated).
    pub to_send: u64,
    /// Member additions and removals the target confirmed.
    pub members_changed: u64,
    pub elapsed_seconds: f64,
    /// At the rate so far; `None` until a request is answered.
    pub seconds_left: Option<f64>,
}

impl Progress {
    /// The counters of `target`, made on first use.
    pub fn target(&self, target: &str) -> Arc<TargetProgress> {
        let mut targets = crate::locks::lock(&self.targets);
        Arc::clone(targets.entry(target.to_string()).or_insert_with(|| {
            Arc::new(TargetProgress {
                started: Instant::now(),
                planned_yet: std::sync::atomic::AtomicBool::new(false),
                estimated: AtomicU64::new(0),
                planned: AtomicU64::new(0),
                sent: AtomicU64::new(0),
                members: AtomicU64::new(0),
            })
        }))
    }

    /// Every target's numbers, by name.
    pub fn numbers(&self) -> Vec<Numbers> {
        let targets = crate::locks::lock(&self.targets);
        targets.iter().map(|(name, t)| t.numbers(name)).collect()
    }
}

impl TargetProgress {
    /// The requests this target's push is expected to send.
    pub fn estimate(&self, requests: u64) {
        self.estimated.store(requests, Ordering::Relaxed);
        self.planned_yet.store(true, Ordering::Relaxed);
    }

    /// Requests a pair has planned (written to the outbox).
    pub fn planned(&self, requests: u64) {
        self.planned.fetch_add(requests, Ordering::Relaxed);
    }

    /// A request answered, with the member changes it made.
    pub fn sent(&self, members: u64) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.members.fetch_add(members, Ordering::Relaxed);
    }

    fn numbers(&self, target: &str) -> Numbers {
        let sent = self.sent.load(Ordering::Relaxed);
        let total = self
            .estimated
            .load(Ordering::Relaxed)
            .max(self.planned.load(Ordering::Relaxed))
            .max(sent);
        let to_send = total - sent;
        let elapsed = self.started.elapsed().as_secs_f64();
        Numbers {
            target: target.to_string(),
            planned: self.planned_yet.load(Ordering::Relaxed),
            sent,
            to_send,
            members_changed: self.members.load(Ordering::Relaxed),
            elapsed_seconds: elapsed,
            seconds_left: (sent > 0).then(|| elapsed / sent as f64 * to_send as f64),
        }
    }
}

/// `1h02m`, `3m10s`, `42s`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.round().max(0.0) as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

impl Numbers {
    /// One line: `slack: 1,234 of ~5,000 requests sent, 4,321 members changed, ~3m10s left`.
    pub fn line(&self) -> String {
        format!("{}: {}", self.target, self.detail())
    }

    /// The line without the target's name (a bar shows it as its prefix).
    fn detail(&self) -> String {
        if !self.planned {
            return format!(
                "looking up users and planning ({} so far)",
                duration(self.elapsed_seconds)
            );
        }
        let left = match self.seconds_left {
            Some(s) if self.to_send > 0 => format!(", ~{} left", duration(s)),
            _ => String::new(),
        };
        format!(
            "{} of ~{} requests sent, {} members changed{left}",
            crate::text::thousands(self.sent),
            crate::text::thousands(self.sent + self.to_send),
            crate::text::thousands(self.members_changed),
        )
    }
}

/// Shows a push's progress on stderr until dropped: bars on a terminal, otherwise a line
/// per target every `every` (a log file or CI output gets lines, not control codes). Nothing
/// shows for a push that ends within its first second.
pub struct Display {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Display {
    pub fn start(progress: Arc<Progress>, every: Duration) -> Display {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let tick = if terminal {
                Duration::from_millis(200)
            } else {
                every
            };
            if stopped.recv_timeout(Duration::from_secs(1)).is_ok() {
                return;
            }
            let bars =
                indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr());
            let mut shown: BTreeMap<String, indicatif::ProgressBar> = BTreeMap::new();
            let mut last = false;
            loop {
                for n in progress.numbers() {
                    if terminal {
                        let bar = shown.entry(n.target.clone()).or_insert_with(|| {
                            let bar = bars.add(indicatif::ProgressBar::new(0));
                            bar.set_style(
                                indicatif::ProgressStyle::with_template(
                                    "{prefix} [{bar:30}] {msg}",
                                )
                                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                                .progress_chars("=> "),
                            );
                            bar.set_prefix(n.target.clone());
                            bar
                        });
                        // An empty bar until the requests are known.
                        bar.set_length((n.sent + n.to_send).max(1));
                        bar.set_position(n.sent);
                        bar.set_message(n.detail());
                    } else {
                        eprintln!("progress: {}", n.line());
                    }
                }
                if last {
                    break;
                }
                // Once stopped, one more round shows the final numbers.
                last = stopped.recv_timeout(tick).is_ok();
                if last && !terminal {
                    break;
                }
            }
            // As they stand: a push that stopped early does not look complete.
            for bar in shown.values() {
                bar.abandon();
            }
        });
        Display {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_count_what_was_sent_and_estimate_the_rest() {
        let progress = Progress::default();
        let t = progress.target("slack");
        assert!(progress.numbers()[0].line().contains("looking up users"));
        t.estimate(10);
        t.sent(100);
        t.sent(50);
        let n = &progress.numbers()[0];
        assert_eq!((n.sent, n.to_send, n.members_changed), (2, 8, 150));
        assert!(n.seconds_left.is_some());
        // Planned beyond the estimate: the total follows.
        t.planned(20);
        assert_eq!(progress.numbers()[0].to_send, 18);
        assert!(n
            .line()
            .starts_with("slack: 2 of ~10 requests sent, 150 members changed"));
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(190.0), "3m10s");
        assert_eq!(duration(3720.0), "1h02m");
    }
}
