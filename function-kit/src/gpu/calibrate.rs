//! Calibration of the emulator's GPU kernel: how many `fma_loop` iterations take a given time.
//!
//! The time of one launch is a line in its iteration count, `overhead + ns_per_iter · iters`, one line per
//! launch shape (wide: the whole GPU; single: one block). The lines are measured **at 100 % of the GPU**
//! (no MPS limit, nothing else running), so a request sized from them takes the profile's time at a
//! full GPU and, run by a replica under a smaller MPS share, takes longer by however much the hardware
//! really slows it: the point of the GPU mode. Calibrating under the replica's own share would cancel
//! exactly the effect to be measured, so a replica with a share below 100 % calibrates in a child process
//! started with `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=100` (see `emulator::gpu`), or reads a calibration file.
use std::path::Path;
use std::time::Duration;

/// Environment variable: a calibration file to read (and write after calibrating).
pub const ENV_CALIBRATION: &str = "SMILESS_GPU_CALIBRATION";

use serde::{Deserialize, Serialize};

use super::GpuError;

/// The longest single launch: long work is split so that no launch runs for seconds (display watchdogs,
/// and fairness with the other MPS clients).
pub const MAX_LAUNCH: Duration = Duration::from_millis(100);
/// Calibration grows a launch until it takes at least this long, so timer noise is small against it.
pub const MIN_CALIBRATION_LAUNCH: Duration = Duration::from_millis(30);

/// One launch shape's time as a line in its iterations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub ns_per_iter: f64,
    /// Launch and synchronisation cost of a launch (≥ 0).
    pub overhead_ns: f64,
}

impl Line {
    /// Least-squares line through `(iters, time)` samples; `None` without a positive slope.
    pub fn fit(samples: &[(u32, Duration)]) -> Option<Line> {
        let n = samples.len() as f64;
        if samples.len() < 2 {
            return None;
        }
        let xs = samples.iter().map(|(i, _)| f64::from(*i));
        let ys = samples.iter().map(|(_, d)| d.as_secs_f64() * 1e9);
        let mx = xs.clone().sum::<f64>() / n;
        let my = ys.clone().sum::<f64>() / n;
        let sxy: f64 = xs.clone().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let sxx: f64 = xs.map(|x| (x - mx) * (x - mx)).sum();
        let slope = sxy / sxx;
        (slope.is_finite() && slope > 0.0).then(|| Line {
            ns_per_iter: slope,
            overhead_ns: (my - slope * mx).max(0.0),
        })
    }

    /// Iterations of each launch that together take `target`: as few launches as keep each under
    /// [`MAX_LAUNCH`], equal in size, each paying its overhead. Empty when `target` is below one launch's
    /// overhead (the work is too small to be worth a launch).
    pub fn plan(&self, target: Duration) -> Vec<u32> {
        let t = target.as_secs_f64();
        if t <= 0.0 {
            return Vec::new();
        }
        let launches = (t / MAX_LAUNCH.as_secs_f64()).ceil().max(1.0);
        let per_ns = t * 1e9 / launches;
        let iters = ((per_ns - self.overhead_ns) / self.ns_per_iter).round();
        if iters < 1.0 || !iters.is_finite() {
            return Vec::new();
        }
        let iters = iters.min(f64::from(u32::MAX)) as u32;
        vec![iters; launches as usize]
    }
}

/// Measures a launch shape's line with `run(iters) → wall time`: doubles the iterations until one launch
/// takes [`MIN_CALIBRATION_LAUNCH`], then takes the best of three at a quarter, a half and all of that
/// (best of three: interference only ever adds time).
pub fn measure_line(
    mut run: impl FnMut(u32) -> Result<Duration, GpuError>,
) -> Result<Line, GpuError> {
    let mut iters: u32 = 256;
    loop {
        if run(iters)? >= MIN_CALIBRATION_LAUNCH {
            break;
        }
        iters = iters.checked_mul(2).ok_or_else(|| {
            GpuError::Calibration("the kernel never took 30 ms: is it really running?".into())
        })?;
    }
    let mut samples = Vec::new();
    for n in [iters / 4, iters / 2, iters] {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            best = best.min(run(n)?);
        }
        samples.push((n, best));
    }
    Line::fit(&samples).ok_or_else(|| {
        GpuError::Calibration(format!(
            "launch time does not grow with the work: {samples:?}"
        ))
    })
}

/// The calibration of one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The device's name; a calibration is reused only on a device of the same name and SM count.
    pub device: String,
    pub sms: u32,
    /// The whole-GPU launch (the parallel part of an inference).
    pub wide: Line,
    /// The one-block launch (the serial part).
    pub single: Line,
    /// The MPS share it was measured under (100 unless forced).
    pub share_pct: u32,
}

impl Calibration {
    /// Whether this calibration is for `device` with `sms` SMs.
    pub fn fits(&self, device: &str, sms: u32) -> bool {
        self.device == device && self.sms == sms
    }

    /// Reads a calibration file; `None` when absent or unreadable (the caller calibrates again).
    pub fn load(path: &Path) -> Option<Calibration> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes it atomically (a temporary file renamed), so replicas starting together never read half.
    pub fn save(&self, path: &Path) -> Result<(), GpuError> {
        let err = |e: std::io::Error| GpuError::Calibration(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let text =
            serde_json::to_string_pretty(self).map_err(|e| GpuError::Calibration(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ns(n: u64) -> Duration {
        Duration::from_nanos(n)
    }

    #[test]
    fn fit_recovers_slope_and_overhead() {
        let l = Line::fit(&[
            (100, ns(5_000 + 200)),
            (400, ns(5_000 + 800)),
            (800, ns(6_600)),
        ])
        .unwrap();
        assert!((l.ns_per_iter - 2.0).abs() < 1e-9, "{l:?}");
        assert!((l.overhead_ns - 5_000.0).abs() < 1e-6, "{l:?}");
        assert!(
            Line::fit(&[(100, ns(10)), (200, ns(10))]).is_none(),
            "flat: no slope"
        );
        assert!(Line::fit(&[(100, ns(10))]).is_none());
    }

    #[test]
    fn plan_splits_long_work_and_pays_each_overhead() {
        let l = Line {
            ns_per_iter: 10.0,
            overhead_ns: 10_000.0,
        };
        // 250 ms: three launches of 83.3 ms, each 10 µs of overhead + 8.332 M iterations' worth.
        let p = l.plan(Duration::from_millis(250));
        assert_eq!(p.len(), 3);
        let per = (250e6 / 3.0 - 10_000.0) / 10.0;
        assert!(
            p.iter().all(|&i| (f64::from(i) - per).abs() <= 1.0),
            "{p:?}"
        );
        // The total predicted time is the target.
        let total: f64 = p.iter().map(|&i| f64::from(i) * 10.0 + 10_000.0).sum();
        assert!((total - 250e6).abs() < 100.0);
        assert_eq!(l.plan(Duration::from_millis(50)).len(), 1);
        assert!(l.plan(Duration::ZERO).is_empty());
        assert!(l.plan(ns(5_000)).is_empty(), "below one launch's overhead");
    }

    #[test]
    fn measure_grows_the_launch_then_fits() {
        // A fake device: 3 µs launch overhead, 7 ns per iteration.
        let mut calls = Vec::new();
        let l = measure_line(|i| {
            calls.push(i);
            Ok(ns(3_000 + 7 * u64::from(i)))
        })
        .unwrap();
        assert!(
            (l.ns_per_iter - 7.0).abs() < 1e-6 && (l.overhead_ns - 3_000.0).abs() < 1.0,
            "{l:?}"
        );
        let top = *calls.iter().max().unwrap();
        assert!(ns(3_000 + 7 * u64::from(top)) >= MIN_CALIBRATION_LAUNCH);
        assert!(
            ns(3_000 + 7 * u64::from(top / 2)) < MIN_CALIBRATION_LAUNCH,
            "grew no further than needed"
        );
        // A kernel that takes no time is an error, not an endless loop.
        assert!(measure_line(|_| Ok(ns(1))).is_err());
    }

    #[test]
    fn files_round_trip_and_match_their_device() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cal.json");
        let line = Line {
            ns_per_iter: 1.5,
            overhead_ns: 4000.0,
        };
        let c = Calibration {
            device: "NVIDIA H200".into(),
            sms: 132,
            wide: line,
            single: line,
            share_pct: 100,
        };
        c.save(&path).unwrap();
        let back = Calibration::load(&path).unwrap();
        assert_eq!(back, c);
        assert!(back.fits("NVIDIA H200", 132));
        assert!(!back.fits("NVIDIA H100 80GB HBM3", 132));
        std::fs::write(&path, "{").unwrap();
        assert!(Calibration::load(&path).is_none());
    }
}
