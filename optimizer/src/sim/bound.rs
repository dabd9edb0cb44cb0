//! An offline (clairvoyant) lower bound on the cost of serving a trace of DAG requests within the SLA,
//! under the simulator's cost model: every replica is billed, at its hardware's price, for the seconds
//! it initialises, serves and idles (docs/evaluation.md §3.1a derives it and argues why no schedule that
//! meets the SLA for every request can cost less; `smiless / bound` in the experiment's rows).
//!
//! Per function `f`, with `lo = 1 − 2·cv` (the world's inference noise is truncated at ±2 cv) and the
//! fastest single-request time `τ_g = lo · min_h t_g(1, h)` of every function `g`:
//! - **Window.** Request `r`'s call at `f` lies in `[a_r + pre_f, a_r + SLA − post_f]`, where `pre_f`
//!   (`post_f`) is the longest path of `τ` before (after) `f`; its length is `L_f = SLA − pre_f − post_f`.
//! - **Busy.** A call of `k ≤ B_max` tasks on `h` costs at least `p(h) · lo · t_f(k, h)`, shared by its `k`
//!   tasks; all of them arrived within `L_f` of each other, so `k ≤ N_r = #{r' : |a_r' − a_r| ≤ L_f}`, and
//!   the call fits the window: `lo · t_f(k, h) ≤ L_f`. Each task is charged the least such share.
//! - **Idle or init.** Between two consecutive arrivals `Δ` apart no call of `f` can run for
//!   `Δ − L_f` seconds (every window holds a call, so distinct such stretches lie in distinct gaps
//!   between calls). Across that stretch the replica serving the next call was either provisioned
//!   throughout (idle) or started inside it (a whole initialisation, at least `mean − 3·std`): at least
//!   `min_h p(h) · min(Δ − L_f, init_lo(h))` over the hardware that can serve `f` within the SLA. The
//!   first call needs one initialisation too.
use crate::dag::Dag;
use crate::hardware::{Hardware, HardwareSpace};
use crate::prices::Prices;
use crate::profile::Profile;

/// How many standard deviations below the mean the simulator's initialisation draw may fall.
pub const INIT_TRUNCATION_STD: f64 = 3.0;

/// What the bound is computed over.
#[derive(Clone, Copy, Debug)]
pub struct BoundInput<'a> {
    pub dag: &'a Dag,
    /// The world's profiles (what replicas really take), one per DAG node in node order.
    pub profiles: &'a [Profile],
    pub prices: &'a Prices,
    /// The hardware any policy may run on.
    pub hardware: &'a HardwareSpace,
    /// The largest batch cap any policy may choose.
    pub max_batch: u32,
    pub sla_s: f64,
    /// The world's inference-time coefficient of variation (truncated at ±2 cv).
    pub infer_cv: f64,
    /// DAG request arrival times, ascending (those the run bills).
    pub arrivals: &'a [f64],
}

/// One function's part of the bound ($).
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionBound {
    pub name: String,
    /// Window length `L_f` (seconds).
    pub window_s: f64,
    pub busy: f64,
    /// Idle or initialisation between calls, and the first initialisation.
    pub idle_or_init: f64,
}

/// The bound ($ over the trace) and its parts.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub total: f64,
    pub functions: Vec<FunctionBound>,
}

/// Why no bound could be computed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BoundError {
    #[error("{got} profiles for a DAG of {want} functions")]
    Profiles { got: usize, want: usize },
    #[error("the hardware space is empty")]
    NoHardware,
    #[error("no hardware serves {function} within the SLA of {sla_s} s (window {window_s:.3} s)")]
    Infeasible {
        function: String,
        sla_s: f64,
        window_s: f64,
    },
    #[error("invalid bound input: {0}")]
    Invalid(String),
}

/// The lower bound of `input` (see the module doc).
pub fn lower_bound(input: &BoundInput<'_>) -> Result<Bound, BoundError> {
    let dag = input.dag;
    let n = dag.len();
    if input.profiles.len() != n {
        return Err(BoundError::Profiles {
            got: input.profiles.len(),
            want: n,
        });
    }
    if !(input.sla_s.is_finite() && input.sla_s > 0.0) {
        return Err(BoundError::Invalid(format!("SLA {} s", input.sla_s)));
    }
    if !(input.infer_cv.is_finite() && (0.0..0.5).contains(&input.infer_cv)) {
        return Err(BoundError::Invalid(format!("cv {}", input.infer_cv)));
    }
    if input.arrivals.windows(2).any(|w| w[1] < w[0]) {
        return Err(BoundError::Invalid("arrivals are not ascending".into()));
    }
    let hws: Vec<Hardware> = input.hardware.all().collect();
    if hws.is_empty() {
        return Err(BoundError::NoHardware);
    }
    let lo = 1.0 - 2.0 * input.infer_cv;
    let kmax = input.max_batch.max(1);
    let tau: Vec<f64> = input
        .profiles
        .iter()
        .map(|p| {
            lo * hws
                .iter()
                .map(|&h| p.infer_time(h, 1))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    let (mut pre, mut post) = (vec![0.0_f64; n], vec![0.0_f64; n]);
    for &f in &dag.topo {
        pre[f] = dag.pred[f]
            .iter()
            .map(|&p| pre[p] + tau[p])
            .fold(0.0, f64::max);
    }
    for &f in dag.topo.iter().rev() {
        post[f] = dag.succ[f]
            .iter()
            .map(|&s| post[s] + tau[s])
            .fold(0.0, f64::max);
    }
    let mut functions = Vec::with_capacity(n);
    for f in 0..n {
        let p = &input.profiles[f];
        let window = input.sla_s - pre[f] - post[f];
        // share[k]: least per-task cost of a call of at most k tasks that fits the window.
        let mut share = vec![f64::INFINITY; kmax as usize + 1];
        // Hardware that can serve f within the SLA, with its least idle-or-init charge parameters.
        let mut servers: Vec<(f64, f64)> = Vec::new();
        for &h in &hws {
            let price = input.prices.per_second(h);
            let mut serves = false;
            for k in 1..=kmax {
                let t = lo * p.infer_time(h, k);
                if t <= window + 1e-12 {
                    serves = true;
                    let s = price * t / f64::from(k);
                    share[k as usize] = share[k as usize].min(s);
                }
            }
            if serves {
                let init = p.init(h);
                let init_lo = (init.mean_s - INIT_TRUNCATION_STD * init.std_s).max(0.0);
                servers.push((price, init_lo));
            }
        }
        if servers.is_empty() {
            return Err(BoundError::Infeasible {
                function: dag.nodes[f].name.clone(),
                sla_s: input.sla_s,
                window_s: window,
            });
        }
        for k in 1..share.len() {
            share[k] = share[k].min(share[k - 1]);
        }
        let a = input.arrivals;
        let (mut busy, mut lo_i, mut hi_i) = (0.0, 0usize, 0usize);
        for (i, &t) in a.iter().enumerate() {
            while a[lo_i] < t - window {
                lo_i += 1;
            }
            hi_i = hi_i.max(i);
            while hi_i + 1 < a.len() && a[hi_i + 1] <= t + window {
                hi_i += 1;
            }
            let k = (hi_i - lo_i + 1).min(kmax as usize);
            busy += share[k];
        }
        let charge = |gap: f64| {
            servers
                .iter()
                .map(|&(price, init_lo)| price * gap.min(init_lo))
                .fold(f64::INFINITY, f64::min)
        };
        let mut idle_or_init = if a.is_empty() {
            0.0
        } else {
            charge(f64::INFINITY)
        };
        for w in a.windows(2) {
            let gap = w[1] - w[0] - window;
            if gap > 0.0 {
                idle_or_init += charge(gap);
            }
        }
        functions.push(FunctionBound {
            name: dag.nodes[f].name.clone(),
            window_s: window,
            busy,
            idle_or_init,
        });
    }
    let total = functions.iter().map(|b| b.busy + b.idle_or_init).sum();
    Ok(Bound { total, functions })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::{InitStats, LatencyModel, PerDevice};

    /// A CPU-only profile: a call of `B` on `r` cores takes `a·B/r + c`; init `init ± std`.
    fn prof(a: f64, c: f64, init: f64, std: f64) -> Profile {
        let lat = LatencyModel { a, b: 0.0, c };
        let i = InitStats {
            mean_s: init,
            std_s: std,
        };
        Profile {
            init: PerDevice { cpu: i, gpu: i },
            infer: PerDevice { cpu: lat, gpu: lat },
            memory_mb: 512,
            image_mb: None,
        }
    }

    fn chain(names: &[&str]) -> Dag {
        let members: Vec<(String, Option<String>, Vec<String>)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let next = names.get(i + 1).map(|s| vec![s.to_string()]);
                (n.to_string(), None, next.unwrap_or_default())
            })
            .collect();
        Dag::build("chain", "openfaas-fn", &members, None).unwrap()
    }

    /// Prices of $1 per core-second (so costs read as core-seconds), one or two cores.
    fn prices() -> Prices {
        Prices {
            cpu_core_hour: 3600.0,
            gpu_hour: 0.0,
        }
    }

    /// One function, 1-core only, calls of 0.5 s, init 2 s: arrivals at 0, 1, 10 (SLA 1 s, no noise).
    /// Window 1 s: arrivals 0 and 1 may share a call (k ≤ 2), arrival 10 is alone; a call of 2 takes
    /// 1.0 s ≤ 1 s, so the first two pay 0.5 each and the third 0.5: busy 1.5. Gaps minus the window:
    /// 0 and 8 → min(8, 2) = 2, plus the first init 2: 4. Total 5.5.
    #[test]
    fn one_function_by_hand() {
        let dag = chain(&["a"]);
        let profiles = [prof(0.5, 0.0, 2.0, 0.0)];
        let space = HardwareSpace {
            cpu_cores: vec![1],
            gpu_shares: vec![],
        };
        let input = BoundInput {
            dag: &dag,
            profiles: &profiles,
            prices: &prices(),
            hardware: &space,
            max_batch: 4,
            sla_s: 1.0,
            infer_cv: 0.0,
            arrivals: &[0.0, 1.0, 10.0],
        };
        let b = lower_bound(&input).unwrap();
        assert!((b.functions[0].busy - 1.5).abs() < 1e-12, "{b:?}");
        assert!((b.functions[0].idle_or_init - 4.0).abs() < 1e-12, "{b:?}");
        assert!((b.total - 5.5).abs() < 1e-12);
        // A per-call overhead is what batching saves: c = 0.4, a = 0.1 → a call of 2 takes 0.6 s,
        // 0.3 per task, against 0.5 alone: busy 0.3 + 0.3 + 0.5.
        let profiles = [prof(0.1, 0.4, 2.0, 0.0)];
        let b = lower_bound(&BoundInput {
            profiles: &profiles,
            ..input
        })
        .unwrap();
        assert!((b.functions[0].busy - 1.1).abs() < 1e-12, "{b:?}");
    }

    /// A chain a → b, noise cv 5 % (lo = 0.9), init 3 ± 0.5 s (lower end 1.5 s), cores {1, 2}.
    /// a: c = 1 s on any size → τ_a = 0.9; b: a = 2 (2 s on 1 core, 1 s on 2) → τ_b = 0.9.
    /// SLA 2.5 s: L_a = L_b = 1.6. b on 1 core takes 1.8 > 1.6: only 2 cores (cost 2 × 0.9 = 1.8 per
    /// task); a on 1 core: 0.9 per task. Arrivals 0, 5, 5.5: the last two are 0.5 apart and may share a
    /// call at a (1 s·0.9 for both, 0.45 each) but b's batch of 2 (2 × 2 / 2 cores = 2 s · 0.9 = 1.8 s)
    /// exceeds its window. Busy: a 0.9 + 0.45 + 0.45 = 1.8, b 3 × 1.8 = 5.4. Idle or init: gaps minus
    /// the window 3.4 (and −1.1): a min(3.4, 1.5) · $1 = 1.5, b on 2 cores 2 × 1.5 = 3; plus first
    /// inits 1.5 and 3: a 3.0, b 6.0. Total 16.2.
    #[test]
    fn a_chain_by_hand() {
        let dag = chain(&["a", "b"]);
        let profiles = [prof(0.0, 1.0, 3.0, 0.5), prof(2.0, 0.0, 3.0, 0.5)];
        let space = HardwareSpace {
            cpu_cores: vec![1, 2],
            gpu_shares: vec![],
        };
        let b = lower_bound(&BoundInput {
            dag: &dag,
            profiles: &profiles,
            prices: &prices(),
            hardware: &space,
            max_batch: 4,
            sla_s: 2.5,
            infer_cv: 0.05,
            arrivals: &[0.0, 5.0, 5.5],
        })
        .unwrap();
        let f = &b.functions;
        assert!((f[0].window_s - 1.6).abs() < 1e-9 && (f[1].window_s - 1.6).abs() < 1e-9);
        assert!((f[0].busy - 1.8).abs() < 1e-9, "{b:?}");
        assert!((f[1].busy - 5.4).abs() < 1e-9, "{b:?}");
        assert!((f[0].idle_or_init - 3.0).abs() < 1e-9, "{b:?}");
        assert!((f[1].idle_or_init - 6.0).abs() < 1e-9, "{b:?}");
        assert!((b.total - 16.2).abs() < 1e-9);
    }

    #[test]
    fn an_sla_below_the_fastest_path_has_no_bound() {
        let dag = chain(&["a", "b"]);
        let profiles = [prof(0.0, 1.0, 1.0, 0.0), prof(0.0, 1.0, 1.0, 0.0)];
        let space = HardwareSpace::default();
        let input = BoundInput {
            dag: &dag,
            profiles: &profiles,
            prices: &Prices::default(),
            hardware: &space,
            max_batch: 16,
            sla_s: 1.5,
            infer_cv: 0.0,
            arrivals: &[0.0],
        };
        assert!(matches!(
            lower_bound(&input),
            Err(BoundError::Infeasible { .. })
        ));
        assert!(matches!(
            lower_bound(&BoundInput {
                arrivals: &[1.0, 0.0],
                sla_s: 3.0,
                ..input
            }),
            Err(BoundError::Invalid(_))
        ));
    }
}
