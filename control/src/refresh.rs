//! The control loop's side of the online profile refresh ([`contract::observe::refresh`], DESIGN §6): each
//! tick, judge every member of a DAG against its profile on its hardware, replace drifted profiles, and
//! write what was measured for `control/observed.json`. The observations themselves (and the estimator
//! and drift rules) live in [`contract::observe::refresh`], which the DAG runner writes.
use std::collections::BTreeMap;

use optimizer::{Dag, Hardware, Profile, ProfileSet};

pub use contract::observe::refresh::*;

/// One control tick for one DAG: judges every member on its hardware (`applied`, else the host's whole
/// CPU, where an unplaced replica runs); a drifted profile replaces the member's profile (by its profile
/// name) in `profiles`. Returns a note per drift (empty: nothing changed, keep the controller).
pub fn on_tick(
    refresher: &Refresher,
    dag: &Dag,
    profiles: &mut ProfileSet,
    applied: Option<&BTreeMap<String, Hardware>>,
    host_cpus: usize,
) -> Vec<String> {
    let mut notes = Vec::new();
    for (node, pname, hw) in placed_members(dag, profiles, applied, host_cpus) {
        let Ok(profile) = profiles.get(&pname) else {
            continue;
        };
        let (drifts, updated) = refresher.check(&dag.namespace, &node, hw, profile);
        if let Some(p) = updated {
            for d in &drifts {
                notes.push(format!(
                    "{node}: profile {pname} drifted ({d}); updated, re-planning"
                ));
            }
            profiles.profiles.insert(pname, p);
        }
    }
    notes
}

/// `(member, profile name, hardware)` of each member of `dag` whose profile `profiles` has: the hardware
/// it runs on (`applied`, else the host's whole CPU, where an unplaced replica runs).
fn placed_members(
    dag: &Dag,
    profiles: &ProfileSet,
    applied: Option<&BTreeMap<String, Hardware>>,
    host_cpus: usize,
) -> Vec<(String, String, Hardware)> {
    let default_hw = Hardware::Cpu {
        cores: u32::try_from(host_cpus.max(1)).unwrap_or(1),
    };
    dag.nodes
        .iter()
        .map(|node| {
            let pname = node.profile.clone().unwrap_or_else(|| node.name.clone());
            let hw = applied
                .and_then(|a| a.get(&node.name))
                .copied()
                .unwrap_or(default_hw);
            (node.name.clone(), pname, hw)
        })
        .filter(|(_, pname, _)| profiles.get(pname).is_ok())
        .collect()
}

/// Writes into `out` the profiles of `dag`'s members as measured ([`Refresher::observed`]) against the
/// planner's `profiles`, each on its hardware (`applied`, else the host's whole CPU, as [`on_tick`]). Two
/// members that share a profile (the same model in two DAGs): the one measured last in `dag` order wins.
pub fn observed_into(
    refresher: &Refresher,
    dag: &Dag,
    profiles: &ProfileSet,
    out: &mut ProfileSet,
    applied: Option<&BTreeMap<String, Hardware>>,
    host_cpus: usize,
) {
    for (node, pname, hw) in placed_members(dag, profiles, applied, host_cpus) {
        if let Ok(profile) = profiles.get(&pname)
            && let Some(p) = refresher.observed(&dag.namespace, &node, hw, profile)
        {
            out.profiles.insert(pname, p);
        }
    }
}

/// Each node's profile from `profiles`, in node order (what a controller's template holds); `None` when
/// one is missing.
pub fn resolve(dag: &Dag, profiles: &ProfileSet) -> Option<Vec<Profile>> {
    dag.nodes
        .iter()
        .map(|n| {
            profiles
                .get(n.profile.as_deref().unwrap_or(&n.name))
                .ok()
                .cloned()
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        ProfileSet::paper()
            .get("speechrecognition")
            .unwrap()
            .clone()
    }

    /// DAG `d` of one member `a` in `ns` with the profile `speechrecognition`.
    fn one_member_dag() -> Dag {
        let spec = optimizer::FunctionSpec {
            name: "a".into(),
            namespace: "ns".into(),
            annotations: [
                (optimizer::dag::ANN_DAG.to_owned(), "d".to_owned()),
                (
                    optimizer::dag::ANN_PROFILE.to_owned(),
                    "speechrecognition".to_owned(),
                ),
            ]
            .into(),
        };
        optimizer::dags_from_functions(&[spec]).unwrap().remove(0)
    }

    #[test]
    fn on_tick_replaces_the_profile_by_its_name() {
        let mut set = ProfileSet::paper();
        let dag = one_member_dag();
        let r = Refresher::default();
        let hw = Hardware::Cpu { cores: 2 };
        let before = set.get("speechrecognition").unwrap().infer_time(hw, 1);
        for _ in 0..10 {
            r.observe(&dag.namespace, "a", before * 2.0, false, 1.0);
        }
        let applied: BTreeMap<String, Hardware> = [("a".to_owned(), hw)].into();
        let notes = on_tick(&r, &dag, &mut set, Some(&applied), 2);
        assert_eq!(notes.len(), 1, "{notes:?}");
        let after = set.get("speechrecognition").unwrap().infer_time(hw, 1);
        assert!((after - 2.0 * before).abs() < 1e-9);
        // The same observations do not drift again.
        assert!(on_tick(&r, &dag, &mut set, Some(&applied), 2).is_empty());
    }

    #[test]
    fn observed_profiles_carry_differences_below_the_drift_threshold() {
        let set = ProfileSet::paper();
        let dag = one_member_dag();
        let r = Refresher::default();
        let hw = Hardware::Cpu { cores: 2 };
        let p = set.get("speechrecognition").unwrap().clone();
        let mut out = set.clone();
        let applied: BTreeMap<String, Hardware> = [("a".to_owned(), hw)].into();
        observed_into(&r, &dag, &set, &mut out, Some(&applied), 2);
        assert_eq!(out, set, "nothing measured, nothing changed");
        // 10 % slower inference, 12 % slower initialisation: under the 25 % drift threshold.
        let warm = p.infer_time(hw, 1) * 1.1;
        let init = p.init(hw).mean_s * 1.12;
        for _ in 0..10 {
            r.observe(&dag.namespace, "a", warm, false, 1.0);
            r.observe(&dag.namespace, "a", init + warm, true, 1.0);
        }
        assert_eq!(r.observations(), 20);
        let (drifts, _) = r.check(&dag.namespace, "a", hw, &p);
        assert!(drifts.is_empty(), "{drifts:?}");
        observed_into(&r, &dag, &set, &mut out, Some(&applied), 2);
        let o = out.get("speechrecognition").unwrap();
        assert!((o.infer_time(hw, 1) - warm).abs() < 1e-9);
        assert!((o.init(hw).mean_s - init).abs() < 1e-9);
        assert!(o.init(hw).std_s.abs() < 1e-9);
    }

    #[test]
    fn start_times_are_the_initialisation_samples_where_the_backend_gives_them() {
        let r = Refresher::default();
        let p = profile();
        let hw = Hardware::Cpu { cores: 1 };
        let init = p.init(hw).mean_s;
        // A pre-warmed member: no cold calls; its replicas' start times (real seconds at scale 0.1) say
        // 1.5× the profile's initialisation.
        for _ in 0..10 {
            r.observe_start("ns", "asr", init * 1.5 * 0.1, 0.1);
        }
        let o = r.observed("ns", "asr", hw, &p).unwrap();
        assert!((o.init(hw).mean_s - 1.5 * init).abs() < 1e-9);
        // Enough cold calls (saying 1.2×) win: they include the scale call a request waits for.
        let cold = Refresher::default();
        for _ in 0..10 {
            cold.observe("ns", "asr", init * 1.2 + p.infer_time(hw, 1), true, 1.0);
            cold.observe_start("ns", "asr", init * 1.5, 1.0);
        }
        let o = cold.observed("ns", "asr", hw, &p).unwrap();
        assert!((o.init(hw).mean_s - 1.2 * init).abs() < 1e-9);
        let (d, updated) = r.check("ns", "asr", hw, &p);
        assert_eq!(d.len(), 1, "{d:?}");
        assert!((updated.unwrap().init(hw).mean_s - 1.5 * init).abs() < 1e-9);
        // The drift cleared both windows: nothing measured since.
        assert!(r.observed("ns", "asr", hw, &p).is_none());
    }
}
