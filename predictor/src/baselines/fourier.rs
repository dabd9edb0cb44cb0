//! Fourier extrapolation in the style of IceBreaker (Roy et al., ASPLOS'22): take the most recent
//! power-of-two window of the series, remove its linear trend, keep the strongest harmonics of its FFT
//! and evaluate the resulting sum of sinusoids (plus the trend) one step past the window.
//!
//! The reconstruction is periodic in the window length, so the one-step forecast is a smoothed copy
//! of the window's first value continued by the trend; it captures cycles whose period divides the
//! window, and little else. That is the method, not a shortcut.
use crate::forecast::{CountClasses, Forecast, Forecaster, dispersion_confidence};
use crate::series::History;
use std::f64::consts::PI;

/// The Fourier baseline.
#[derive(Debug, Clone)]
pub struct Fourier {
    /// Largest window (a power of two).
    pub window: usize,
    /// Harmonics kept (besides the mean).
    pub harmonics: usize,
    classes: CountClasses,
}

impl Default for Fourier {
    fn default() -> Self {
        Self {
            window: 256,
            harmonics: 10,
            classes: CountClasses::default(),
        }
    }
}

impl Forecaster for Fourier {
    fn name(&self) -> String {
        format!("fourier(k={})", self.harmonics)
    }
    fn forecast(&self, h: &History) -> Forecast {
        // Only the tail the transform uses is copied, so a forecast does not scale with history.
        let tail = |n: usize| n.saturating_sub(self.window);
        let w: Vec<f64> = h.windows()[tail(h.windows().len())..]
            .iter()
            .map(|&c| f64::from(c))
            .collect();
        let est = fourier_extrapolate(&w, self.window, self.harmonics)
            .or_else(|| w.last().copied())
            .unwrap_or(0.0)
            .max(0.0);
        let class = self.classes.class_for_estimate(est);
        let g: Vec<f64> = h.gaps_s()[tail(h.gaps_s().len())..]
            .iter()
            .map(|&x| f64::from(x))
            .collect();
        let gap = fourier_extrapolate(&g, self.window, self.harmonics)
            .or_else(|| g.last().copied())
            .unwrap_or(f64::from(h.window_s()));
        Forecast {
            count_class: class,
            count_upper: self.classes.upper(class),
            next_interarrival_s: h.condition_gap(gap as f32),
            // Heuristic: 1 / (1 + CV) of the last 16 windows.
            confidence: dispersion_confidence(h.windows(), 16),
        }
    }
}

/// One-step Fourier extrapolation of the last `window` (rounded down to a power of two, at least 8)
/// values of `xs`, keeping `harmonics` strongest frequencies. `None` with fewer than 8 values.
pub fn fourier_extrapolate(xs: &[f64], window: usize, harmonics: usize) -> Option<f64> {
    let avail = xs.len().min(window);
    if avail < 8 {
        return None;
    }
    let n = 1usize << (usize::BITS - 1 - avail.leading_zeros());
    let tail = &xs[xs.len() - n..];
    // Least-squares linear trend over t = 0..n.
    let nf = n as f64;
    let t_mean = (nf - 1.0) / 2.0;
    let y_mean = tail.iter().sum::<f64>() / nf;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (t, &y) in tail.iter().enumerate() {
        let dt = t as f64 - t_mean;
        sxy += dt * (y - y_mean);
        sxx += dt * dt;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let mut re: Vec<f64> = tail
        .iter()
        .enumerate()
        .map(|(t, &y)| y - (y_mean + slope * (t as f64 - t_mean)))
        .collect();
    let mut im = vec![0.0; n];
    fft(&mut re, &mut im);
    // Rank the positive frequencies 1..=n/2 by magnitude and keep the strongest.
    let mag: Vec<f64> = (0..=n / 2).map(|k| re[k] * re[k] + im[k] * im[k]).collect();
    let mut idx: Vec<usize> = (1..=n / 2).collect();
    let keep = harmonics.min(idx.len());
    if keep > 0 && keep < idx.len() {
        // Only the strongest `keep` are needed, in no particular order.
        idx.select_nth_unstable_by(keep - 1, |&a, &b| mag[b].total_cmp(&mag[a]).then(a.cmp(&b)));
    }
    let t = nf; // one step past the window
    let mut y = y_mean + slope * (t - t_mean) + re[0] / nf;
    for &k in idx.iter().take(keep) {
        let scale = if k == n / 2 { 1.0 } else { 2.0 } / nf;
        let ang = 2.0 * PI * k as f64 * t / nf;
        y += scale * (re[k] * ang.cos() - im[k] * ang.sin());
    }
    Some(y)
}

/// In-place iterative radix-2 FFT; `re.len()` must be a power of two.
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let ang = -2.0 * PI / len as f64;
        let (wr, wi) = (ang.cos(), ang.sin());
        for start in (0..n).step_by(len) {
            let (mut cr, mut ci) = (1.0, 0.0);
            for k in 0..len / 2 {
                let (a, b) = (start + k, start + k + len / 2);
                let tr = re[b] * cr - im[b] * ci;
                let ti = re[b] * ci + im[b] * cr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
                let ncr = cr * wr - ci * wi;
                ci = cr * wi + ci * wr;
                cr = ncr;
            }
        }
        len <<= 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fft_matches_naive_dft() {
        let x: Vec<f64> = (0..16).map(|i| ((i * 7) % 5) as f64 - 1.5).collect();
        let (mut re, mut im) = (x.clone(), vec![0.0; 16]);
        fft(&mut re, &mut im);
        for k in 0..16 {
            let (mut r, mut i) = (0.0, 0.0);
            for (t, &v) in x.iter().enumerate() {
                let a = -2.0 * PI * (k * t) as f64 / 16.0;
                r += v * a.cos();
                i += v * a.sin();
            }
            assert!((re[k] - r).abs() < 1e-9 && (im[k] - i).abs() < 1e-9);
        }
    }

    #[test]
    fn extrapolates_a_periodic_signal() {
        // A trend plus a period-16 cycle: the extrapolation follows both, where repeating the
        // last value misses by more than 2.
        let f = |t: f64| 2.0 * t + 3.0 * (2.0 * PI * t / 16.0).sin();
        let xs: Vec<f64> = (0..100).map(|t| f(t as f64)).collect();
        let y = fourier_extrapolate(&xs, 64, 10).unwrap();
        let truth = f(100.0);
        assert!((truth - xs[99]).abs() > 2.0);
        assert!((y - truth).abs() < 0.5, "{y} vs {truth}");
        assert!(fourier_extrapolate(&xs[..5], 64, 3).is_none());
    }
}
