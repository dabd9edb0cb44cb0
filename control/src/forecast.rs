//! The predictor's forecasters in the live loop (DESIGN §8): per DAG, the observed arrivals (profile
//! time, 1 s steps) go into a [`History`]; the load the planner gets comes from the hybrid histogram
//! until enough history is observed, then from an LSTM forecaster (count classifier + inter-arrival
//! model) trained on that history in a background thread and retrained as the history grows. Training
//! never runs on the request path or the control tick: the tick only polls whether it has finished.
//!
//! Every closed window also scores the forecast made for it against the actual count (what `/metrics`
//! reports as forecast vs actual). The per-second counts and the trained weights persist under the state
//! directory ([`super::persist`]), so a restart brings the forecaster back.
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use optimizer::sim::LoadEstimator;
use optimizer::{GapModel, Load};
use predictor::background::Background;
use predictor::baselines::HybridHistogram;
use predictor::{Forecast, Forecaster, History, LstmForecaster, TrainConfig};
use serde::{Deserialize, Serialize};

pub use contract::observe::forecast::{ForecastView, Score};

/// Forecast window, profile seconds.
pub const WINDOW_S: u32 = 30;
/// Closed windows needed before the LSTM is trained (its shortest sequence, 8, plus the 20 samples the
/// predictor requires).
pub const MIN_TRAIN_WINDOWS: usize = 28;
/// Retrain when the history has grown by this many windows since the last training.
pub const RETRAIN_EVERY: usize = 40;
/// At most this much per-second history is kept (two days), bounding memory and the persisted file.
const MAX_STEPS: usize = 2 * 86_400;

/// The training configuration of live forecasters: one short sequence length and few epochs, since the
/// history is short when the first model is trained (deterministic from the seed).
pub fn train_config() -> TrainConfig {
    TrainConfig {
        seed: 1,
        count_hidden: 16,
        iat_hidden: 8,
        seq_candidates: vec![8],
        max_epochs: 20,
        patience: 3,
        ..TrainConfig::default()
    }
}

/// What persists of a forecaster (the LSTM weights are saved beside it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Saved {
    /// Per-second arrival counts, oldest first.
    pub counts: Vec<u32>,
    pub score: Score,
    pub trainings: u32,
    /// Windows in the history when the current model was trained.
    pub trained_at: usize,
}

/// A DAG's forecaster.
pub struct DagForecaster {
    history: History,
    /// Every pushed second (for persistence and for rebuilding the history).
    counts: Vec<u32>,
    /// Arrivals per second not yet pushed, from `pushed_s` on.
    pending: Vec<u32>,
    pushed_s: u64,
    /// Profile seconds of the restored history: the live clock restarts at 0 after a restart.
    offset_s: f64,
    fallback: HybridHistogram,
    lstm: Option<Arc<LstmForecaster>>,
    /// Training off the tick's thread (inline for the simulator: a replay must not depend on thread
    /// timing).
    training: Background<LstmForecaster>,
    trainings: u32,
    trained_at: usize,
    /// The forecast made for the open window (scored when it closes).
    current: Option<Forecast>,
    score: Score,
    /// The load of the last estimate.
    last_load: Option<Load>,
    /// Set when a training finished and its weights are not saved yet.
    pub unsaved_model: bool,
    /// Set when a window closed since the state was last saved.
    pub unsaved_history: bool,
}

impl std::fmt::Debug for DagForecaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DagForecaster")
            .field("pushed_s", &self.pushed_s)
            .field("trainings", &self.trainings)
            .finish_non_exhaustive()
    }
}

fn history() -> History {
    History::new(1, WINDOW_S).expect("1 s steps divide the forecast window")
}

impl Default for DagForecaster {
    fn default() -> Self {
        DagForecaster {
            history: history(),
            counts: Vec::new(),
            pending: Vec::new(),
            pushed_s: 0,
            offset_s: 0.0,
            fallback: HybridHistogram::default(),
            lstm: None,
            training: Background::threaded(),
            trainings: 0,
            trained_at: 0,
            current: None,
            score: Score::default(),
            last_load: None,
            unsaved_model: false,
            unsaved_history: false,
        }
    }
}

impl DagForecaster {
    /// A fresh forecaster that trains on the caller's thread, so that a simulated replay is deterministic
    /// (the live loop trains in the background instead).
    pub fn blocking() -> DagForecaster {
        DagForecaster {
            training: Background::inline(),
            ..DagForecaster::default()
        }
    }

    /// A forecaster restored from its saved history and, when there is one, its trained model.
    pub fn restore(saved: Saved, model: Option<LstmForecaster>) -> DagForecaster {
        let mut f = DagForecaster::default();
        f.history.extend(&saved.counts);
        f.pushed_s = saved.counts.len() as u64;
        f.offset_s = f.pushed_s as f64;
        f.counts = saved.counts;
        f.score = saved.score;
        f.trainings = saved.trainings;
        f.trained_at = saved.trained_at;
        f.lstm = model.map(Arc::new);
        f
    }

    /// The arrivals of the last `window_s` seconds of the history (per-second counts spread inside
    /// their second), on the live clock: restored seconds lie before 0. An estimator seeded with them
    /// after a restart plans from the load it saw before, not from an empty window.
    pub fn recent_arrivals(&self, window_s: f64) -> Vec<f64> {
        let n = self.counts.len();
        let from = n.saturating_sub(window_s.max(0.0).ceil() as usize);
        let start = self.pushed_s as f64 - n as f64 - self.offset_s;
        self.counts[from..]
            .iter()
            .enumerate()
            .flat_map(|(k, &c)| {
                let second = start + (from + k) as f64;
                (0..c).map(move |j| second + (f64::from(j) + 0.5) / f64::from(c))
            })
            .collect()
    }

    /// What to persist.
    pub fn saved(&self) -> Saved {
        Saved {
            counts: self.counts.clone(),
            score: self.score.clone(),
            trainings: self.trainings,
            trained_at: self.trained_at,
        }
    }

    /// The load of the last estimate.
    pub fn last_load(&self) -> Option<Load> {
        self.last_load
    }

    /// Records the load the planner was given (when another estimator than this forecaster made it).
    pub fn set_last_load(&mut self, load: Load) {
        self.last_load = Some(load);
    }

    /// The trained model, if any (to save its weights).
    pub fn model(&self) -> Option<Arc<LstmForecaster>> {
        self.lstm.clone()
    }

    fn forecaster(&self) -> &dyn Forecaster {
        match &self.lstm {
            Some(m) => m.as_ref(),
            None => &self.fallback,
        }
    }

    /// Collects a finished training, and starts one when the history has grown enough.
    fn train(&mut self) {
        if let Some(done) = self.training.poll() {
            self.collect(done);
        }
        let n = self.history.windows().len();
        let due = if self.lstm.is_none() {
            n >= MIN_TRAIN_WINDOWS && n >= self.trained_at + 4
        } else {
            n >= self.trained_at + RETRAIN_EVERY
        };
        if !self.training.is_pending() && due {
            self.trained_at = n;
            let h = self.history.clone();
            let started = self.training.start(move || {
                let mut m = LstmForecaster::new(train_config());
                m.fit(&h)?;
                Ok(m)
            });
            if let Err(e) = started {
                tracing::warn!("forecaster: cannot start training: {e}");
            }
            // Inline (the simulator): the model is ready now.
            if let Some(done) = self.training.poll() {
                self.collect(done);
            }
        }
    }

    fn collect(&mut self, done: predictor::Result<LstmForecaster>) {
        match done {
            Ok(m) if m.has_count_model() => {
                self.lstm = Some(Arc::new(m));
                self.trainings += 1;
                self.unsaved_model = true;
            }
            Ok(_) => tracing::info!("forecaster: too little history for the LSTM yet"),
            Err(e) => tracing::warn!("forecaster training failed: {e}"),
        }
    }

    /// Pushes the seconds up to `now` (profile seconds since the provider started).
    fn advance(&mut self, now: f64) -> bool {
        let upto = (now + self.offset_s).max(0.0) as u64;
        let mut changed = false;
        while self.pushed_s < upto {
            let c = if self.pending.is_empty() {
                0
            } else {
                self.pending.remove(0)
            };
            self.counts.push(c);
            if let Some(actual) = self.history.push(c) {
                if let Some(f) = self.current.take() {
                    self.score.windows += 1;
                    self.score.under += u64::from(actual > f.count_upper);
                    self.score.abs_error_sum += f64::from(f.count_upper.abs_diff(actual));
                    self.score.last_forecast = f.count_upper;
                    self.score.last_actual = actual;
                }
                self.unsaved_history = true;
                changed = true;
            }
            changed |= c > 0;
            self.pushed_s += 1;
        }
        if self.counts.len() > MAX_STEPS {
            let cut = self.counts.len() - MAX_STEPS;
            self.counts.drain(..cut);
        }
        changed
    }

    /// The report of this forecaster now.
    pub fn view(&self) -> ForecastView {
        let f = self.current.unwrap_or(Forecast {
            count_class: 0,
            count_upper: 0,
            next_interarrival_s: 0.0,
            confidence: 0.0,
        });
        ForecastView {
            forecaster: if self.lstm.is_some() {
                "lstm".into()
            } else {
                "hybrid-histogram".into()
            },
            window_s: WINDOW_S,
            count: f.count_upper,
            interarrival_s: f64::from(f.next_interarrival_s),
            history_windows: self.history.windows().len(),
            trainings: self.trainings,
            training: self.training.is_pending(),
            restored_s: self.offset_s as u64,
            score: self.score.clone(),
        }
    }

    /// Waits for a running training (tests and shutdown).
    pub fn finish_training(&mut self) {
        if let Some(done) = self.training.wait() {
            self.collect(done);
        }
        self.train();
    }
}

/// The load a forecast stands for: bursts of the recent burst size every forecast gap, raised to the
/// forecast count per window when that is denser (then the gap shrinks so burst = rate × gap holds).
pub fn load_of(f: &Forecast, h: &History) -> Load {
    let events = h.event_counts();
    let recent = &events[events.len().saturating_sub(50)..];
    let mut sizes: Vec<u32> = recent.to_vec();
    sizes.sort_unstable();
    // The 90th percentile burst: replicas are sized for most bursts, not the average one.
    let burst = sizes
        .get((sizes.len() * 9 / 10).min(sizes.len().saturating_sub(1)))
        .copied()
        .unwrap_or(1)
        .max(1);
    let gap = f64::from(f.next_interarrival_s).clamp(1.0, 1e6);
    let mut rate = f64::from(burst) / gap;
    let per_window = f64::from(f.count_upper) / f64::from(h.window_s());
    let mut interarrival = gap;
    if per_window > rate {
        rate = per_window;
        interarrival = (f64::from(burst) / rate).max(1.0);
    }
    Load {
        rate_per_s: rate,
        interarrival_s: interarrival,
        gaps: GapModel::Exponential,
    }
}

/// A forecaster shared between the controller (which owns its estimator) and the control loop (which
/// reports and persists it).
#[derive(Debug, Clone, Default)]
pub struct Shared(pub Arc<Mutex<DagForecaster>>);

impl Shared {
    pub fn new(f: DagForecaster) -> Shared {
        Shared(Arc::new(Mutex::new(f)))
    }

    pub fn lock(&self) -> MutexGuard<'_, DagForecaster> {
        // Every critical section leaves the forecaster consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LoadEstimator for Shared {
    fn name(&self) -> String {
        self.lock().view().forecaster
    }

    fn observe(&mut self, t: f64) {
        let mut f = self.lock();
        let sec = (t + f.offset_s).max(0.0) as u64;
        if sec >= f.pushed_s {
            let i = usize::try_from(sec - f.pushed_s).unwrap_or(usize::MAX);
            if i < 1_000_000 {
                if f.pending.len() <= i {
                    f.pending.resize(i + 1, 0);
                }
                f.pending[i] += 1;
            }
        }
    }

    fn estimate(&mut self, now: f64) -> Load {
        let mut f = self.lock();
        f.advance(now);
        f.train();
        // A new forecast every tick: the history's open gap conditions the inter-arrival forecast.
        let fc = f.forecaster().forecast(&f.history);
        // The window's count is scored against the first forecast made for it (at its start); the
        // inter-arrival forecast is reported as it is now.
        match &mut f.current {
            None => f.current = Some(fc),
            Some(c) => c.next_interarrival_s = fc.next_interarrival_s,
        }
        let load = load_of(&fc, &f.history);
        f.last_load = Some(load);
        load
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn feed(s: &mut Shared, from: u32, to: u32, every: u32) {
        for t in (from..to).step_by(every as usize) {
            s.observe(f64::from(t) + 0.5);
            s.estimate(f64::from(t) + 1.0);
        }
        s.estimate(f64::from(to));
    }

    #[test]
    fn falls_back_to_the_histogram_then_trains_an_lstm_in_the_background() {
        let mut s = Shared::default();
        feed(&mut s, 0, 600, 20);
        let v = s.lock().view();
        assert_eq!(v.forecaster, "hybrid-histogram");
        assert_eq!(v.history_windows, 20);
        assert_eq!(v.trainings, 0);
        // A request every 20 s: the load's gap is about 20 s.
        let l = s.estimate(600.0);
        assert!(
            l.interarrival_s >= 15.0 && l.interarrival_s <= 30.0,
            "{l:?}"
        );
        feed(&mut s, 600, 1200, 20);
        s.lock().finish_training();
        let v = s.lock().view();
        assert_eq!(v.forecaster, "lstm", "{v:?}");
        assert_eq!(v.trainings, 1);
        assert!(v.score.windows >= 38, "{v:?}");
        assert!(s.lock().unsaved_model);
    }

    #[test]
    fn restores_its_history_and_continues_after_a_restart() {
        let mut s = Shared::default();
        feed(&mut s, 0, 300, 10);
        let saved = s.lock().saved();
        assert_eq!(saved.counts.len(), 300);
        assert_eq!(saved.counts.iter().sum::<u32>(), 30);
        let mut r = Shared::new(DagForecaster::restore(saved.clone(), None));
        assert_eq!(r.lock().view().history_windows, 10);
        // The live clock restarts at 0: new arrivals land after the restored history.
        r.observe(0.5);
        r.estimate(2.0);
        let again = r.lock().saved();
        assert_eq!(again.counts.len(), 302);
        assert_eq!(again.counts[300], 1);
    }

    #[test]
    fn scores_forecasts_against_actual_windows() {
        let mut s = Shared::default();
        s.estimate(0.5);
        // 30 arrivals in the first window against an empty-history forecast of 0: under.
        for t in 0..30 {
            s.observe(f64::from(t) + 0.1);
        }
        s.estimate(30.0);
        let v = s.lock().view();
        assert_eq!(v.score.windows, 1);
        assert_eq!(v.score.last_actual, 30);
        assert_eq!(v.score.under, 1);
    }

    #[test]
    fn load_keeps_burst_equal_to_rate_times_gap() {
        let mut h = history();
        for i in 0..300 {
            h.push(u32::from(i % 10 == 0) * 3);
        }
        let f = Forecast {
            count_class: 0,
            count_upper: 12,
            next_interarrival_s: 10.0,
            confidence: 0.9,
        };
        let l = load_of(&f, &h);
        assert!(
            (l.rate_per_s * l.interarrival_s - 3.0).abs() < 1e-9,
            "{l:?}"
        );
        let dense = Forecast {
            count_upper: 60,
            ..f
        };
        let l = load_of(&dense, &h);
        assert!((l.rate_per_s - 2.0).abs() < 1e-9, "{l:?}");
        assert!((l.interarrival_s - 1.5).abs() < 1e-9, "{l:?}");
    }
}
