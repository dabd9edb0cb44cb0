//! The baselines the SMIless paper compares against (Orion, IceBreaker, Aquatope, GrandSLAm) and two
//! newer systems for the same problem (ESG, Jolteon), each a rendering of its *paper's* rule (not of the
//! research code's bugs, reference: smiless-artifact §5) over this crate's models, so the simulator runs
//! them on the same inputs as the co-optimiser. Each module's doc comment cites its paper and says where
//! the rendering had to choose. They return their plan even when it misses the SLA (`meets_sla` says so):
//! a baseline that cannot meet an SLA is a result, not an error.
pub mod aquatope;
pub mod esg;
pub mod grandslam;
pub mod icebreaker;
pub mod jolteon;
pub mod orion;

use crate::model::{self, prewarm_lower_offset};
use crate::plan::{Choice, ColdStart, PlanInput};

pub use aquatope::Aquatope;
pub use esg::Esg;
pub use grandslam::GrandSlam;
pub use icebreaker::IceBreaker;
pub use jolteon::Jolteon;
pub use orion::Orion;

/// Places every pre-warm of `choices` so the replica is ready when its predecessors finish (the DAG
/// look-ahead), walking the DAG once.
pub(crate) fn place_prewarms(input: &PlanInput, choices: &mut [Choice]) {
    let dag = &input.dag;
    let mut finish = vec![0.0; dag.len()];
    for &f in &dag.topo {
        let s = dag.pred[f].iter().map(|&p| finish[p]).fold(0.0, f64::max);
        if let ColdStart::PreWarm { .. } = choices[f].policy {
            let init = input.profiles[f]
                .init(choices[f].hardware)
                .estimate(input.params.init_std_factor);
            choices[f].policy = ColdStart::PreWarm {
                offset_s: (s - init).max(prewarm_lower_offset(&input.load)),
            };
        }
        finish[f] = model::behaviour(input, f, &choices[f]).finish(s);
    }
}

/// The fewest replicas for `batch` on `hw` under the input's load and utilisation cap.
pub(crate) fn replicas_for(
    input: &PlanInput,
    f: usize,
    hw: crate::hardware::Hardware,
    batch: u32,
) -> (u32, u32) {
    let svc = model::service(&input.profiles[f], hw, batch, input.load.burst_size());
    (
        model::min_replicas(svc.busy, &input.load, input.params.util_cap),
        svc.b,
    )
}
