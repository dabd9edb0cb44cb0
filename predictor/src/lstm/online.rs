//! Online updates that never block forecasting: a snapshot of recent history is fine-tuned on a
//! copy of the current model in a background `std::thread`, and the finished model is swapped in
//! under a write lock held only for the pointer swap. Forecasts clone the current `Arc` under a read
//! lock and run without any lock held. One update runs at a time; a second request while one is in
//! flight is refused with [`Error::Busy`] rather than queued, because a newer snapshot will come.
use super::LstmForecaster;
use crate::error::{Error, Result};
use crate::forecast::{Forecast, Forecaster};
use crate::series::History;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

/// An [`LstmForecaster`] that can be fine-tuned in the background.
pub struct OnlineLstm {
    current: Arc<RwLock<Arc<LstmForecaster>>>,
    worker: Mutex<Option<JoinHandle<Result<()>>>>,
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
            worker: Mutex::new(None),
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
        let w = self.worker.lock().unwrap_or_else(|e| e.into_inner());
        w.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Starts fine-tuning on `recent` for `epochs` epochs in the background and returns at once.
    /// Fails with [`Error::Busy`] while a previous update is still running.
    pub fn start_update(&self, recent: History, epochs: usize) -> Result<()> {
        let mut w = self.worker.lock().unwrap_or_else(|e| e.into_inner());
        if w.as_ref().is_some_and(|h| !h.is_finished()) {
            return Err(Error::Busy);
        }
        if let Some(done) = w.take() {
            // Surface nothing here: the previous result was either collected by `wait` or is
            // superseded by this update.
            let _ = done.join();
        }
        let base = self.current();
        let slot = Arc::clone(&self.current);
        let generation = Arc::clone(&self.generation);
        *w = Some(std::thread::spawn(move || {
            let tuned = base.fine_tuned(&recent, epochs)?;
            *slot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(tuned);
            generation.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }));
        Ok(())
    }

    /// Waits for the running update, if any, and returns its result.
    pub fn wait(&self) -> Result<()> {
        let handle = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        match handle {
            None => Ok(()),
            Some(h) => h
                .join()
                .map_err(|_| Error::Invalid("the update thread panicked".into()))?,
        }
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
