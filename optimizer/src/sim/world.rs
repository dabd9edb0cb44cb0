//! The simulated world's draws: initialisation and inference times around the profiles (the engine's
//! [`World`]).
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, StandardNormal};

use crate::exec::World;
use crate::hardware::Hardware;

/// The draws of the simulated world: initialisation and inference times around the profiles.
pub(crate) struct Draws<'a, 'b> {
    pub(crate) rng: &'b mut Xoshiro256PlusPlus,
    pub(crate) world: &'a [crate::Profile],
    pub(crate) infer_cv: f64,
}

impl World for Draws<'_, '_> {
    fn init_time(&mut self, f: usize, hw: Hardware) -> f64 {
        let init = self.world[f].init(hw);
        truncated_normal(self.rng, init.mean_s, init.std_s, 3.0).max(0.0)
    }
    fn call_time(&mut self, f: usize, hw: Hardware, tasks: u32) -> f64 {
        let base = self.world[f].infer_time(hw, tasks);
        base * truncated_normal(self.rng, 1.0, self.infer_cv, 2.0).max(0.0)
    }
}

/// A normal draw truncated to ±`k` standard deviations.
fn truncated_normal(rng: &mut Xoshiro256PlusPlus, mean: f64, sd: f64, k: f64) -> f64 {
    if sd <= 0.0 {
        return mean;
    }
    for _ in 0..16 {
        let z: f64 = StandardNormal.sample(rng);
        if z.abs() <= k {
            return mean + sd * z;
        }
    }
    mean + sd * (rng.random::<f64>() * 2.0 - 1.0) * k
}
