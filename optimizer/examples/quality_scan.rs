//! Quality scan of the co-optimiser on medium DAGs (9–32 functions, five shapes, four loads, SLA from
//! 1.1× to 2.6× the fastest plan): its cost against the exhaustive optimum wherever the exhaustive search
//! proves optimality within 3 M partial plans. Prints the cases above 1 % and a summary line.
//!
//! `cargo run --release -p optimizer --example quality_scan` (env `K`: beam width, 0 = automatic;
//! `P`: polish budget).
use optimizer::*;
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let set = ProfileSet::paper();
    let (mut total, mut proven, mut within, mut worst) = (0, 0, 0, 1.0f64);
    let mut tsum = 0.0;
    for seed in 0..120u64 {
        let n = 9 + (seed as usize % 24);
        let shape = testkit::SHAPES[(seed % 5) as usize];
        let dag = testkit::random_dag(seed * 31 + 7, n, shape);
        let (rate, gap) =
            [(0.1, 10.0), (8.0, 2.0), (1.0 / 60.0, 60.0), (2.0, 2.0)][(seed % 4) as usize];
        let mut input = PlanInput::new(dag, &set, 1.0, Load::new(Some(rate), Some(gap))?)?;
        input.sla_s = planners::fastest_latency(&input) * (1.1 + (seed % 7) as f64 * 0.25);
        input.exact_node_limit = 3_000_000;
        let ex = Exhaustive {
            seed_with_beam: false,
        }
        .plan(&input)?;
        total += 1;
        if !ex.stats.proven_optimal {
            continue;
        }
        proven += 1;
        let k: usize = std::env::var("K")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        input.beam_width = k;
        input.polish_nodes = std::env::var("P")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20000);
        let t0 = std::time::Instant::now();
        let p = CoOptimiser::SMILESS.plan(&input)?;
        tsum += t0.elapsed().as_secs_f64();
        let r = p.cost_per_hour / ex.cost_per_hour;
        worst = worst.max(r);
        if r <= 1.01 {
            within += 1
        } else {
            println!("n={n} {shape:?} seed={seed} ratio {r:.4}");
        }
    }
    println!(
        "9-32 functions: {total} instances, exhaustive proven on {proven}, co-opt within 1% on {within}, worst {worst:.4}, mean time {:.2} ms",
        tsum / proven as f64 * 1e3
    );
    Ok(())
}
