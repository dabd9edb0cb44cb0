//! Model training off the caller's thread, one job at a time, collected by polling: the one mechanism
//! by which every forecaster trains in the background (the live loop's per-DAG forecaster and the
//! online fine-tuning of [`crate::lstm::online::OnlineLstm`]). Training is CPU work of a second or
//! more; the request path and the control tick must never wait for it, so they only ever `poll`.
//!
//! An [`Background::inline`] runner does the job on the caller's thread when it is started instead:
//! the simulator uses it so that a replay never depends on thread timing.
use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// A background job slot: empty, running, or finished and not yet collected.
#[derive(Debug)]
pub struct Background<T> {
    inline: bool,
    job: Option<Job<T>>,
}

#[derive(Debug)]
enum Job<T> {
    Running(JoinHandle<Result<T>>),
    Done(Result<T>),
}

impl<T: Send + 'static> Default for Background<T> {
    fn default() -> Self {
        Self::threaded()
    }
}

impl<T: Send + 'static> Background<T> {
    /// Jobs run on a thread of their own.
    pub fn threaded() -> Self {
        Self {
            inline: false,
            job: None,
        }
    }

    /// Jobs run on the caller's thread inside [`Self::start`] (deterministic replays).
    pub fn inline() -> Self {
        Self {
            inline: true,
            job: None,
        }
    }

    /// Starts `job`. Fails with [`Error::Busy`] while a job is still running (a newer request will
    /// come; queueing would only train on stale data). A finished result nobody collected is dropped:
    /// the new job supersedes it.
    pub fn start(&mut self, job: impl FnOnce() -> Result<T> + Send + 'static) -> Result<()> {
        if self.is_running() {
            return Err(Error::Busy);
        }
        self.job = Some(if self.inline {
            Job::Done(job())
        } else {
            Job::Running(std::thread::spawn(job))
        });
        Ok(())
    }

    /// Whether a job is running now.
    pub fn is_running(&self) -> bool {
        matches!(&self.job, Some(Job::Running(h)) if !h.is_finished())
    }

    /// Whether a job is running or its result waits to be collected.
    pub fn is_pending(&self) -> bool {
        self.job.is_some()
    }

    /// The finished job's result, without blocking; `None` when nothing has finished.
    pub fn poll(&mut self) -> Option<Result<T>> {
        match &self.job {
            Some(Job::Running(h)) if !h.is_finished() => None,
            Some(_) => self.job.take().map(finish),
            None => None,
        }
    }

    /// Waits for the job, if any, and returns its result.
    pub fn wait(&mut self) -> Option<Result<T>> {
        self.job.take().map(finish)
    }
}

fn finish<T>(job: Job<T>) -> Result<T> {
    match job {
        Job::Done(r) => r,
        Job::Running(h) => h
            .join()
            .unwrap_or_else(|_| Err(Error::Invalid("the background job panicked".into()))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_threaded_job_runs_off_the_callers_thread_and_is_collected_once() {
        let (go, wait) = mpsc::channel::<()>();
        let mut b = Background::threaded();
        b.start(move || {
            wait.recv().map_err(|e| Error::Invalid(e.to_string()))?;
            Ok(7)
        })
        .unwrap();
        // Still blocked on the channel: running, nothing to collect, a second start is refused.
        assert!(b.is_running() && b.is_pending());
        assert!(b.poll().is_none());
        assert!(matches!(b.start(|| Ok(8)), Err(Error::Busy)));
        go.send(()).unwrap();
        assert_eq!(b.wait().unwrap().unwrap(), 7);
        assert!(!b.is_pending());
        assert!(b.poll().is_none() && b.wait().is_none());
    }

    #[test]
    fn an_inline_job_is_done_when_start_returns() {
        let caller = std::thread::current().id();
        let mut b = Background::inline();
        b.start(move || Ok(std::thread::current().id() == caller))
            .unwrap();
        assert!(!b.is_running() && b.is_pending());
        assert!(b.poll().unwrap().unwrap(), "ran on the caller's thread");
    }

    #[test]
    fn a_panicking_job_is_an_error_not_a_panic() {
        let mut b = Background::<u32>::threaded();
        b.start(|| panic!("boom")).unwrap();
        assert!(matches!(b.wait(), Some(Err(Error::Invalid(_)))));
    }

    #[test]
    fn an_uncollected_result_is_superseded_by_the_next_job() {
        let mut b = Background::inline();
        b.start(|| Ok(1)).unwrap();
        b.start(|| Ok(2)).unwrap();
        assert_eq!(b.poll().unwrap().unwrap(), 2);
    }
}
