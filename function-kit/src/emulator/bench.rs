//! `smiless-fn --bench N` and `--hammer SECS`: measured requests without a server, for
//! `e2e/gpu-check.sh` (one process per MPS share, since the share is fixed when a process creates its
//! CUDA context) and for a co-running client that keeps the GPU busy meanwhile.
use std::path::Path;
use std::time::{Duration, Instant};

use super::gpu::Engine;
use super::{Emulator, EmulatorError};

/// Requests run before measuring (first-launch costs are initialisation, not inference).
pub const WARMUP_REQUESTS: usize = 2;

pub use crate::gpu::report::BenchReport;

/// Median, mean, min and max of `samples` (all 0 when empty).
pub fn summarize(samples: &[f64]) -> (f64, f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let p50 = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    let mean = s.iter().sum::<f64>() / n as f64;
    (p50, mean, s[0], s[n - 1])
}

/// Runs [`WARMUP_REQUESTS`] then `requests` measured requests back to back.
pub fn bench(
    emu: &Emulator,
    engine: &Engine,
    requests: usize,
    label: &str,
) -> Result<BenchReport, EmulatorError> {
    for _ in 0..WARMUP_REQUESTS {
        engine.compute(emu)?;
    }
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        engine.compute(emu)?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (p50_ms, mean_ms, min_ms, max_ms) = summarize(&samples);
    Ok(BenchReport {
        label: label.to_owned(),
        profile: emu.profile_name.clone(),
        hardware: emu.hardware.to_string(),
        share_pct: match emu.hardware {
            optimizer::Hardware::Gpu { share_pct } => Some(share_pct),
            optimizer::Hardware::Cpu { .. } => None,
        },
        engine: engine.name().to_owned(),
        device: match engine {
            Engine::Gpu(g) => Some(g.device().to_owned()),
            Engine::Cpu => None,
        },
        time_scale: emu.time_scale,
        samples_ms: samples,
        p50_ms,
        mean_ms,
        min_ms,
        max_ms,
        model_ms: emu.compute_time().as_secs_f64() * 1e3,
    })
}

/// Runs requests back to back for `duration` (a co-running client); creates `ready` (if given) once the
/// engine runs, so a script knows the load is on. Returns how many requests ran.
pub fn hammer(
    emu: &Emulator,
    engine: &Engine,
    duration: Duration,
    ready: Option<&Path>,
) -> Result<u64, EmulatorError> {
    let start = Instant::now();
    engine.compute(emu)?;
    let mut n = 1;
    if let Some(p) = ready {
        std::fs::write(p, b"")
            .map_err(|e| EmulatorError::Engine(format!("{}: {e}", p.display())))?;
    }
    while start.elapsed() < duration {
        engine.compute(emu)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use optimizer::{Hardware, ProfileSet};

    #[test]
    fn summary_statistics() {
        assert_eq!(summarize(&[3.0, 1.0, 2.0]), (2.0, 2.0, 1.0, 3.0));
        assert_eq!(summarize(&[4.0, 1.0, 2.0, 3.0]), (2.5, 2.5, 1.0, 4.0));
        assert_eq!(summarize(&[]), (0.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn a_bench_reports_every_request_and_the_model() {
        let set = ProfileSet::paper();
        let emu =
            Emulator::new(&set, "translation", Hardware::Gpu { share_pct: 50 }, 0.01).unwrap();
        let r = bench(&emu, &Engine::Cpu, 5, "alone").unwrap();
        assert_eq!(r.samples_ms.len(), 5);
        assert_eq!(r.share_pct, Some(50));
        assert_eq!((r.engine.as_str(), r.device.as_deref()), ("cpu", None));
        assert_eq!(r.hardware, "gpu:50");
        let model = emu.compute_time().as_secs_f64() * 1e3;
        assert!((r.model_ms - model).abs() < 1e-9);
        // The CPU engine busies at least the modelled time per request.
        assert!(r.min_ms >= model * 0.999, "{r:?}");
        // JSON round trip (floats to within parsing precision).
        let back: BenchReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(
            (back.label.as_str(), back.share_pct, back.samples_ms.len()),
            ("alone", Some(50), 5)
        );
        assert!((back.p50_ms - r.p50_ms).abs() < 1e-9 && (back.model_ms - r.model_ms).abs() < 1e-9);
    }

    #[test]
    fn a_hammer_signals_ready_and_keeps_going() {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let set = ProfileSet::paper();
        let emu = Emulator::new(&set, "translation", Hardware::Cpu { cores: 1 }, 0.001).unwrap();
        let n = hammer(&emu, &Engine::Cpu, Duration::from_millis(30), Some(&ready)).unwrap();
        assert!(ready.exists());
        assert!(n >= 2, "{n}");
    }
}
