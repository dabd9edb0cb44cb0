//! One function's replicas: the desired state, the reconciliation that decides which replicas to start
//! and retire, rolling replacement on a spec change, and round-robin choice of a serving replica.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use super::logs::{HISTORY_LINES, LogBuffer};
use super::replica::Replica;
use super::{FunctionKey, LogLine, ReplicaSpec, ReplicaStatus};

/// How long a replica leaving rotation keeps serving before it is asked to stop, so that a request routed
/// to it just before the switch still finds it listening.
pub const DRAIN_DELAY: Duration = Duration::from_millis(500);

#[derive(Default)]
struct State {
    desired: u32,
    spec: Option<Arc<ReplicaSpec>>,
    /// Bumped on every spec change; replicas of older generations are being replaced.
    generation: u64,
    replicas: Vec<Arc<Replica>>,
}

/// What [`Function::plan`] decided.
#[derive(Default)]
pub struct Plan {
    pub start: Vec<Arc<Replica>>,
    pub retire: Vec<Arc<Replica>>,
    /// A rollout to watch: retire older generations once this one is ready.
    pub rollout: Option<u64>,
}

/// Start times kept per function until taken.
pub const MAX_START_TIMES: usize = 64;

/// A function's runtime state.
pub struct Function {
    pub key: FunctionKey,
    pub logs: LogBuffer,
    state: Mutex<State>,
    version: watch::Sender<u64>,
    rr: AtomicUsize,
    /// Serialises apply and remove of this function.
    pub ops: tokio::sync::Mutex<()>,
    /// Set by remove; an apply that raced with it starts over on a fresh entry.
    pub removed: AtomicBool,
    /// Seconds from a replica's start to its first readiness, not yet taken (the initialisation as the
    /// runtime saw it: process start, the model's initialisation, the readiness check).
    start_times: Mutex<Vec<f64>>,
}

impl Function {
    pub fn new(key: FunctionKey) -> Self {
        Self {
            key,
            logs: LogBuffer::new(HISTORY_LINES),
            state: Mutex::new(State::default()),
            version: watch::Sender::new(0),
            rr: AtomicUsize::new(0),
            ops: tokio::sync::Mutex::new(()),
            removed: AtomicBool::new(false),
            start_times: Mutex::new(Vec::new()),
        }
    }

    /// Records that a replica became ready `secs` after it was started (the oldest beyond a bound are
    /// dropped, so nobody taking them costs only memory for [`MAX_START_TIMES`]).
    pub fn started(&self, secs: f64) {
        let mut t = self.start_times.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() >= MAX_START_TIMES {
            t.remove(0);
        }
        t.push(secs);
    }

    /// The start times recorded since the last call.
    pub fn take_start_times(&self) -> Vec<f64> {
        std::mem::take(&mut *self.start_times.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Signals a change of readiness or membership to waiters.
    pub fn changed(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Adds a line of the runtime's own about a replica to the function's log.
    pub fn log(&self, instance: &str, text: String) {
        self.logs.push(LogLine {
            name: self.key.name.clone(),
            namespace: self.key.namespace.clone(),
            instance: instance.to_string(),
            timestamp: jiff::Timestamp::now(),
            text: format!("smiless: {text}"),
        });
    }

    /// Drops a replica whose supervisor has ended.
    pub fn forget(&self, id: &str) {
        self.state().replicas.retain(|r| r.id != id);
        self.changed();
    }

    pub fn is_empty(&self) -> bool {
        self.state().replicas.is_empty()
    }

    /// A serving replica, round-robin.
    pub fn pick(&self) -> Option<SocketAddr> {
        let st = self.state();
        let serving = st.replicas.iter().filter(|r| r.serving()).count();
        if serving == 0 {
            return None;
        }
        let n = self.rr.fetch_add(1, Ordering::Relaxed) % serving;
        st.replicas
            .iter()
            .filter(|r| r.serving())
            .nth(n)
            .and_then(|r| r.addr())
    }

    /// Takes the replica serving at `addr` out of rotation until its next health check (see
    /// [`Replica::suspect`]).
    pub fn unreachable(&self, addr: SocketAddr) {
        let suspects: Vec<_> = self
            .state()
            .replicas
            .iter()
            .filter(|r| r.addr() == Some(addr) && r.serving())
            .cloned()
            .collect();
        if suspects.iter().fold(false, |any, r| r.suspect() | any) {
            self.changed();
        }
    }

    pub fn status(&self) -> ReplicaStatus {
        let st = self.state();
        let serving = st.replicas.iter().filter(|r| r.serving()).count();
        ReplicaStatus {
            desired: st.desired,
            available: u32::try_from(serving).unwrap_or(u32::MAX).min(st.desired),
        }
    }

    /// Decides the replicas to start and retire for the desired `spec` × `replicas`.
    pub fn plan(
        &self,
        spec: Arc<ReplicaSpec>,
        replicas: u32,
        mut new_id: impl FnMut() -> String,
    ) -> Plan {
        let mut st = self.state();
        st.desired = replicas;
        let n = replicas as usize;
        let mut plan = Plan::default();
        let spec_changed = st
            .spec
            .as_ref()
            .is_none_or(|old| !Arc::ptr_eq(old, &spec) && **old != *spec);
        if spec_changed {
            st.generation += 1;
            st.spec = Some(spec.clone());
            let generation = st.generation;
            let old: Vec<_> = st
                .replicas
                .iter()
                .filter(|r| !r.is_retiring())
                .cloned()
                .collect();
            for _ in 0..n {
                plan.start
                    .push(Arc::new(Replica::new(new_id(), spec.clone(), generation)));
            }
            if n == 0 {
                plan.retire = old;
            } else if !old.is_empty() {
                plan.rollout = Some(generation);
            }
        } else {
            let generation = st.generation;
            let mut current: Vec<_> = st
                .replicas
                .iter()
                .filter(|r| r.generation == generation && !r.is_retiring())
                .cloned()
                .collect();
            if current.len() < n {
                for _ in current.len()..n {
                    plan.start
                        .push(Arc::new(Replica::new(new_id(), spec.clone(), generation)));
                }
            } else if current.len() > n {
                // Keep the ready ones and, among equals, the oldest: retire not-ready and newest first.
                current.sort_by_key(|r| std::cmp::Reverse(r.is_ready()));
                plan.retire = current.split_off(n);
            }
            if n == 0 {
                // Scaled to zero during a rollout: the older generation goes too.
                plan.retire.extend(
                    st.replicas
                        .iter()
                        .filter(|r| r.generation < generation && !r.is_retiring())
                        .cloned(),
                );
            }
        }
        st.replicas.extend(plan.start.iter().cloned());
        for r in &plan.retire {
            r.retire();
        }
        drop(st);
        if !plan.retire.is_empty() {
            self.changed();
        }
        plan
    }

    /// Once `generation` has as many ready replicas as desired (or it is superseded), takes the older
    /// generations out of rotation and returns them for stopping.
    pub fn rollout_step(&self, generation: u64) -> Option<Vec<Arc<Replica>>> {
        let st = self.state();
        if st.generation != generation {
            return Some(Vec::new());
        }
        let current = st
            .replicas
            .iter()
            .filter(|r| r.generation == generation && !r.is_retiring());
        let (count, ready) = current.fold((0usize, 0usize), |(c, r), x| {
            (c + 1, r + usize::from(x.is_ready()))
        });
        let want = (st.desired as usize).min(count);
        if ready < want {
            return None;
        }
        let old: Vec<_> = st
            .replicas
            .iter()
            .filter(|r| r.generation < generation && !r.is_retiring())
            .cloned()
            .collect();
        for r in &old {
            r.retire();
        }
        Some(old)
    }

    /// Takes every replica out of rotation and asks it to stop (for remove and shutdown).
    pub fn stop_all(&self) {
        let mut st = self.state();
        st.desired = 0;
        for r in &st.replicas {
            r.stop();
        }
        drop(st);
        self.changed();
    }

    /// Kills every process now.
    pub fn kill_all(&self) {
        for r in &self.state().replicas {
            r.kill_now();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(v: &str) -> Arc<ReplicaSpec> {
        Arc::new(ReplicaSpec {
            fprocess: "cat".into(),
            env: [("V".to_string(), v.to_string())].into(),
            secrets: vec![],
            secrets_dir: "/s".into(),
            exec_timeout: Duration::from_secs(1),
            cpu_set: None,
            gpu: None,
        })
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("f-{n}")
        }
    }

    #[test]
    fn scaling_with_the_same_spec_starts_and_retires_the_difference() {
        let f = Function::new(FunctionKey::new("ns", "f"));
        let mut id = ids();
        let p = f.plan(spec("a"), 3, &mut id);
        assert_eq!(p.start.len(), 3);
        assert!(p.retire.is_empty() && p.rollout.is_none());
        // An equal spec in a new Arc is not a change.
        let p = f.plan(spec("a"), 3, &mut id);
        assert!(p.start.is_empty() && p.retire.is_empty());
        let p = f.plan(spec("a"), 1, &mut id);
        assert_eq!(
            p.retire.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["f-2", "f-3"]
        );
        assert!(p.retire.iter().all(|r| r.is_retiring()));
        assert_eq!(
            f.status(),
            ReplicaStatus {
                desired: 1,
                available: 0
            }
        );
        let p = f.plan(spec("a"), 2, &mut id);
        assert_eq!(
            p.start.len(),
            1,
            "retiring replicas do not count towards the desired number"
        );
    }

    #[test]
    fn a_changed_spec_starts_a_new_generation_and_rolls_over_when_it_is_ready() {
        let f = Function::new(FunctionKey::new("ns", "f"));
        let mut id = ids();
        let first = f.plan(spec("a"), 2, &mut id).start;
        let p = f.plan(spec("b"), 2, &mut id);
        assert_eq!(p.start.len(), 2);
        assert!(
            p.retire.is_empty(),
            "old replicas keep serving until the new ones are ready"
        );
        let generation = p.rollout.unwrap();
        assert!(f.rollout_step(generation).is_none());
        for r in &p.start {
            r.ready.store(true, Ordering::Release);
        }
        let old = f.rollout_step(generation).unwrap();
        let mut old_ids: Vec<_> = old.iter().map(|r| r.id.clone()).collect();
        old_ids.sort();
        let mut first_ids: Vec<_> = first.iter().map(|r| r.id.clone()).collect();
        first_ids.sort();
        assert_eq!(old_ids, first_ids);
        assert!(old.iter().all(|r| r.is_retiring()));
    }

    #[test]
    fn scaling_to_zero_during_a_rollout_retires_every_generation() {
        let f = Function::new(FunctionKey::new("ns", "f"));
        let mut id = ids();
        f.plan(spec("a"), 1, &mut id);
        let p = f.plan(spec("b"), 1, &mut id);
        assert!(p.rollout.is_some());
        let p = f.plan(spec("b"), 0, &mut id);
        assert_eq!(p.retire.len(), 2);
    }
}
