//! Online updates that never block forecasting: a snapshot of recent history is fine-tuned on a
//! copy of the current model in the background ([`crate::background`]), and the finished model is swapped in
//! under a write lock held only for the pointer swap. Forecasts clone the current `Arc` under a read
//! lock and run without any lock held. One update runs at a time; a second request while one is in
//! flight is refused with [`crate::Error::Busy`] rather than queued, because a newer snapshot will come.
use super::LstmForecaster;
use crate::background::Background;
use crate::error::Result;
use crate::forecast::{Forecast, Forecaster};
use crate::series::History;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// An [`LstmForecaster`] that can be fine-tuned in the background.
pub struct OnlineLstm {
    current: Arc<RwLock<Arc<LstmForecaster>>>,
    worker: Mutex<Background<()>>,
    generation: Arc<AtomicU64>,
}

impl std::fmt::Debug for OnlineLstm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineLstm")
            .field("generation", &self.generation())
            .finish()
    }
}

impl OnlineLstm {
    /// Wraps a trained forecaster.
    pub fn new(model: LstmForecaster) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(model))),
            worker: Mutex::new(Background::threaded()),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The model serving forecasts now.
    pub fn current(&self) -> Arc<LstmForecaster> {
        // A poisoned lock still holds a valid Arc (the swap is a single assignment).
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many updates have been swapped in.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether an update is running.
    pub fn is_updating(&self) -> bool {
        self.worker().is_running()
    }

    fn worker(&self) -> MutexGuard<'_, Background<()>> {
        self.worker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts fine-tuning on `recent` for `epochs` epochs in the background and returns at once.
    /// Fails with [`crate::Error::Busy`] while a previous update is still running.
    pub fn start_update(&self, recent: History, epochs: usize) -> Result<()> {
        let base = self.current();
        let slot = Arc::clone(&self.current);
        let generation = Arc::clone(&self.generation);
        // A previous result nobody collected with `wait` is superseded by this update.
        self.worker().start(move || {
            let tuned = base.fine_tuned(&recent, epochs)?;
            *slot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tuned);
            generation.fetch_add(1, Ordering::AcqRel);
            Ok(())
        })
    }

    /// Waits for the running update, if any, and returns its result.
    pub fn wait(&self) -> Result<()> {
        // Take the job out first: the lock is not held while joining.
        let mut job = std::mem::take(&mut *self.worker());
        job.wait().unwrap_or(Ok(()))
    }
}

impl Forecaster for OnlineLstm {
    fn name(&self) -> String {
        format!("online-{}", self.current().name())
    }
    fn fit(&mut self, train: &History) -> Result<()> {
        self.wait()?;
        let mut fresh = LstmForecaster::new(self.current().config().clone())
            .with_quantile(self.current().quantile());
        fresh.fit(train)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
    fn forecast(&self, h: &History) -> Forecast {
        self.current().forecast(h)
    }
    fn class_distribution(&self, h: &History) -> Option<Vec<f32>> {
        self.current().class_distribution(h)
    }
}
