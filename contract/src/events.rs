//! What the request path reports to the control loop (DESIGN §3): a one-way channel of DAG events. The
//! DAG runner sends an arrival, a member's call queued and ended, and the members a failed request will
//! never reach; it never calls the control loop, and the control loop never imports the request path.
//!
//! Ends are sent by `Drop` guards ([`CallGuard`], [`RequestGuard`]), so a call that fails, times out
//! or is dropped mid-flight (a sibling in a fan-out failed and the runner returned early) still ends in
//! the control loop's books, and a pre-warmed member is not held for a request that will never reach it.
//!
//! Until a control loop takes the receiver ([`Events::subscribe`]) nothing is queued: events are
//! dropped, so a provider without a loop (tests, tools) does not grow a backlog.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// (namespace, DAG name).
pub type DagKey = (String, String);

/// One thing that happened on the request path, at `at` seconds of the [`Events`] clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub dag: DagKey,
    pub at: f64,
    pub what: What,
}

/// What happened to a DAG request (members by their index in the DAG).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A request arrived.
    Arrival,
    /// A member's call is wanted (all its predecessors are done); it waits for a replica.
    Queued { member: usize },
    /// That call ended (answered, failed or dropped).
    CallEnded { member: usize },
    /// The request ended without reaching these members (it failed before them).
    Abandoned { members: Vec<usize> },
}

/// The sending side, shared by every request; a monotonic clock in seconds since it was made.
#[derive(Debug)]
pub struct Events {
    epoch: Instant,
    tx: UnboundedSender<Event>,
    rx: Mutex<Option<UnboundedReceiver<Event>>>,
    listening: AtomicBool,
}

impl Default for Events {
    fn default() -> Self {
        let (tx, rx) = unbounded_channel();
        Events {
            epoch: Instant::now(),
            tx,
            rx: Mutex::new(Some(rx)),
            listening: AtomicBool::new(false),
        }
    }
}

impl Events {
    /// Seconds since this channel was made (the live loop's clock).
    pub fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// The receiving side, once: the control loop's. Events are queued from then on.
    pub fn subscribe(&self) -> Option<UnboundedReceiver<Event>> {
        let rx = self
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if rx.is_some() {
            self.listening.store(true, Ordering::Release);
        }
        rx
    }

    pub fn send(&self, dag: &DagKey, what: What) {
        if self.listening.load(Ordering::Acquire) {
            // A closed channel (the loop ended with the process) has nobody to tell.
            let _ = self.tx.send(Event {
                dag: dag.clone(),
                at: self.now(),
                what,
            });
        }
    }

    /// A DAG request of `members` members arrived: reports it, and returns the guard that reports
    /// the members it never reached when it is dropped.
    pub fn request<'a>(&'a self, dag: &DagKey, members: usize) -> RequestGuard<'a> {
        self.send(dag, What::Arrival);
        RequestGuard {
            events: self,
            dag: dag.clone(),
            started: vec![false; members],
        }
    }
}

/// One DAG request in flight; see [`Events::request`].
#[derive(Debug)]
pub struct RequestGuard<'a> {
    events: &'a Events,
    dag: DagKey,
    started: Vec<bool>,
}

impl<'a> RequestGuard<'a> {
    /// Member `member`'s call is queued: reports it, and returns the guard that reports its end.
    pub fn call(&mut self, member: usize) -> CallGuard<'a> {
        if let Some(s) = self.started.get_mut(member) {
            *s = true;
        }
        self.events.send(&self.dag, What::Queued { member });
        CallGuard {
            events: self.events,
            dag: self.dag.clone(),
            member,
            armed: true,
        }
    }
}

impl Drop for RequestGuard<'_> {
    fn drop(&mut self) {
        let members: Vec<usize> = (0..self.started.len())
            .filter(|&i| !self.started[i])
            .collect();
        if !members.is_empty() {
            self.events.send(&self.dag, What::Abandoned { members });
        }
    }
}

/// One member call in flight; its end is reported when it is dropped, on every path.
#[derive(Debug)]
pub struct CallGuard<'a> {
    events: &'a Events,
    dag: DagKey,
    member: usize,
    /// Reports the end on drop; off once the call joined a batch.
    armed: bool,
}

impl CallGuard<'_> {
    /// The call joins a batch (docs/batching.md): the batch's one call reports its end, once for all
    /// of its requests (`CallEnded` per upstream call, as the executor counts calls), so this guard
    /// reports nothing.
    pub fn into_batch(mut self) {
        self.armed = false;
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.events.send(
            &self.dag,
            What::CallEnded {
                member: self.member,
            },
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn whats(rx: &mut UnboundedReceiver<Event>) -> Vec<What> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| e.what)
            .collect()
    }

    #[test]
    fn nothing_is_queued_until_a_loop_subscribes() {
        let ev = Events::default();
        let key = ("ns".to_owned(), "d".to_owned());
        drop(ev.request(&key, 2));
        let mut rx = ev.subscribe().unwrap();
        assert!(whats(&mut rx).is_empty());
        assert!(ev.subscribe().is_none(), "one receiver only");
    }

    #[test]
    fn a_dropped_call_still_ends_and_unreached_members_are_abandoned() {
        let ev = Events::default();
        let mut rx = ev.subscribe().unwrap();
        let key = ("ns".to_owned(), "fan".to_owned());
        {
            let mut req = ev.request(&key, 4);
            let _entry = req.call(0);
            let a = req.call(1);
            let _b = req.call(2);
            drop(a);
            // The runner returns early on a's failure: b's call future (and its guard) is dropped
            // with the request; member 3 (the join) is never reached.
        }
        assert_eq!(
            whats(&mut rx),
            [
                What::Arrival,
                What::Queued { member: 0 },
                What::Queued { member: 1 },
                What::Queued { member: 2 },
                What::CallEnded { member: 1 },
                What::CallEnded { member: 2 },
                What::CallEnded { member: 0 },
                What::Abandoned { members: vec![3] },
            ]
        );
    }
}
