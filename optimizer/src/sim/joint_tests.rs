//! The joint decision step: memoisation by the tuple of keys, hysteresis per DAG, degradation
//! surfaced, capacity changes re-planning, and the capacity invariant in the lockstep simulator.
use std::collections::BTreeMap;

use super::joint::{JointController, JointMember, JointStep};
use super::{
    Controller, JointDag, Observations, RecentWindow, SimOptions, simulate_joint, workload,
};
use crate::capacity::Capacity;
use crate::capacity::joint::DegradeReason;
use crate::hardware::Hardware;
use crate::load::Load;
use crate::plan::PlanInput;
use crate::profile::ProfileSet;
use crate::testkit::{PAPER_DAGS, stack_dag};

/// The three DAGs of `stack.yml` at `sla` seconds.
fn inputs(sla: f64) -> Vec<PlanInput> {
    let set = ProfileSet::paper();
    PAPER_DAGS
        .iter()
        .map(|n| {
            let mut i = PlanInput::new(
                stack_dag(n).unwrap(),
                &set,
                sla,
                Load::new(Some(1.0), None).unwrap(),
            )
            .unwrap();
            i.space.batches = vec![1];
            i
        })
        .collect()
}

fn controller(input: PlanInput) -> Controller {
    Controller::new(
        crate::policy_by_name("smiless").unwrap(),
        Box::new(RecentWindow::new(60.0, None)),
        input,
        0.1,
    )
}

/// One joint step with `arrivals[d]` observed for DAG `d` and nothing deployed.
fn step(
    j: &mut JointController,
    cs: &mut [Controller],
    now: f64,
    arrivals: &[Vec<f64>],
) -> JointStep {
    let current = BTreeMap::new();
    let mut members: Vec<JointMember<'_>> = cs
        .iter_mut()
        .zip(arrivals)
        .map(|(c, a)| JointMember {
            controller: c,
            obs: Observations {
                arrivals: a,
                current: &current,
            },
        })
        .collect();
    j.decide(now, &mut members).unwrap()
}

fn every(gap: f64, from: f64, to: f64) -> Vec<f64> {
    let mut v = Vec::new();
    let mut t = from;
    while t < to {
        v.push(t);
        t += gap;
    }
    v
}

fn assert_fits(s: &JointStep) {
    assert!(s.packing.fits(), "{:?}", s.packing.unplaced);
    for n in &s.packing.nodes {
        assert!(n.cpu_millis_requested <= n.cpu_millis_capacity, "{n:?}");
        assert!(n.gpu_units_requested <= n.gpu_units_capacity, "{n:?}");
    }
}

#[test]
fn a_steady_load_is_planned_once_and_a_new_key_replans() {
    let mut cs: Vec<Controller> = inputs(8.0).into_iter().map(controller).collect();
    let mut j = JointController::new(Capacity::host(2, &[]));
    let a = every(1.0, 0.0, 60.0);
    let s = step(&mut j, &mut cs, 60.0, &[a.clone(), a.clone(), a.clone()]);
    assert!(s.replanned);
    assert!(s.decisions.iter().all(|d| d.changed || d.plan.is_none()));
    assert_fits(&s);
    // The same load a second later: every key is the same, the memo answers, nothing changes.
    let s = step(&mut j, &mut cs, 61.0, &[vec![60.5], vec![60.5], vec![60.5]]);
    assert!(!s.replanned);
    assert!(s.decisions.iter().all(|d| !d.changed));
    assert_eq!(j.stats.plans_computed, 1);
    // A tenth of the load on two DAGs: their keys change, the joint plan is made again.
    let calm = every(10.0, 61.0, 121.0);
    let busy = every(1.0, 61.0, 121.0);
    let s = step(&mut j, &mut cs, 121.0, &[busy, calm.clone(), calm]);
    assert!(s.replanned);
    assert_eq!(j.stats.plans_computed, 2);
    assert_fits(&s);
}

#[test]
fn degradation_is_surfaced_per_dag() {
    // The stack's 2 s SLAs on 2 cores: voice-assistant needs a GPU (its fastest plan is slower).
    let mut cs: Vec<Controller> = inputs(2.0).into_iter().map(controller).collect();
    let mut j = JointController::new(Capacity::host(2, &[]));
    let a = every(10.0, 0.0, 60.0);
    let s = step(&mut j, &mut cs, 60.0, &[a.clone(), a.clone(), a]);
    assert_fits(&s);
    let va = s.decisions[0].degradation.as_ref().unwrap();
    assert_eq!(va.dag, "voice-assistant");
    assert!(
        matches!(va.reason, DegradeReason::SlaBelowFastest { .. }),
        "{va:?}"
    );
    // The DAG's own SLA, not the planning one (less the headroom).
    assert_eq!(va.sla_s, 2.0);
    // Deployed plans list each member's rejected alternatives (hardware that exists here only).
    let p = s.decisions.iter().find_map(|d| d.plan.as_ref()).unwrap();
    for f in &p.functions {
        assert!(!f.alternatives.is_empty(), "{f:?}");
        assert!(f.alternatives.len() <= 3);
        for a in &f.alternatives {
            assert_ne!(a.choice.hardware, f.choice.hardware);
            assert!(
                matches!(a.choice.hardware, Hardware::Cpu { cores } if cores <= 2),
                "{a:?}"
            );
        }
    }
    // A DAG that gets a plan carries its own SLA too.
    for d in &s.decisions {
        if let Some(p) = &d.plan {
            assert_eq!(p.sla_s, 2.0);
        }
    }
}

#[test]
fn a_capacity_change_replans_and_lifts_the_degradation() {
    let mut cs: Vec<Controller> = inputs(8.0).into_iter().map(controller).collect();
    let mut j = JointController::new(Capacity::host(2, &[]));
    let a = every(10.0, 0.0, 60.0);
    let s = step(&mut j, &mut cs, 60.0, &[a.clone(), a.clone(), a]);
    let degraded = s
        .decisions
        .iter()
        .filter(|d| d.degradation.is_some())
        .count();
    assert!(degraded > 0, "2 cores cannot hold the three DAGs at 8 s");
    j.set_capacity(Capacity::host(64, &[]));
    let s = step(&mut j, &mut cs, 61.0, &[vec![], vec![], vec![]]);
    assert!(s.replanned, "a new capacity is a new memo key");
    assert!(s.decisions.iter().all(|d| d.degradation.is_none()));
    assert!(s.decisions.iter().all(|d| d.plan.is_some()));
    assert!(s.decisions.iter().any(|d| d.changed));
    // Setting the same capacity again re-plans nothing.
    j.set_capacity(Capacity::host(64, &[]));
    let s = step(&mut j, &mut cs, 62.0, &[vec![], vec![], vec![]]);
    assert!(!s.replanned);
}

#[test]
fn one_dags_new_load_leaves_the_others_plans_when_capacity_does_not_bind() {
    let mut cs: Vec<Controller> = inputs(8.0).into_iter().map(controller).collect();
    let mut j = JointController::new(Capacity::host(64, &[]));
    let a = every(10.0, 0.0, 60.0);
    let first = step(&mut j, &mut cs, 60.0, &[a.clone(), a.clone(), a]);
    let busy = every(0.5, 60.0, 120.0);
    let s = step(
        &mut j,
        &mut cs,
        120.0,
        &[busy, every(10.0, 60.0, 120.0), every(10.0, 60.0, 120.0)],
    );
    assert!(s.replanned);
    assert!(
        s.decisions[0].changed,
        "the busy DAG's plan follows its load"
    );
    for d in 1..3 {
        assert!(!s.decisions[d].changed, "DAG {d} kept its plan");
        assert_eq!(s.decisions[d].plan, first.decisions[d].plan);
    }
}

#[test]
fn standalone_reservations_come_first() {
    let mut cs: Vec<Controller> = inputs(8.0).into_iter().map(controller).collect();
    let mut j = JointController::new(Capacity::host(2, &[]));
    j.set_standalone(vec![crate::capacity::joint::Standalone {
        name: "lonely".into(),
        hardware: Hardware::Cpu { cores: 2 },
        replicas: 1,
    }]);
    let a = every(10.0, 0.0, 60.0);
    let s = step(&mut j, &mut cs, 60.0, &[a.clone(), a.clone(), a]);
    assert_fits(&s);
    // The standalone function holds both cores: no DAG fits.
    assert!(s.decisions.iter().all(|d| d.plan.is_none()), "{s:?}");
}

#[test]
fn lockstep_simulation_on_two_cores_never_requests_more_than_it_has() {
    let inputs = inputs(8.0);
    let arrivals: Vec<Vec<f64>> = (0..3u64)
        .map(|s| workload::bursty(11 + s, 0.05, 6.0, 120.0, 30.0, 600.0))
        .collect();
    let dags = inputs
        .iter()
        .zip(&arrivals)
        .map(|(i, a)| JointDag {
            input: i,
            controller: controller(i.clone()),
            arrivals: a,
        })
        .collect();
    let mut j = JointController::new(Capacity::host(2, &[]));
    let r = simulate_joint(dags, &mut j, 600.0, SimOptions::default()).unwrap();
    assert_eq!(r.ticks.len(), 601);
    for t in &r.ticks {
        assert!(t.cpu_millis_requested[0] <= 2000, "{t:?}");
        assert_eq!(t.cpu_millis_capacity[0], 2000);
    }
    assert!(
        r.ticks.iter().all(|t| !t.degraded.is_empty()),
        "something is degraded on 2 cores"
    );
    // Three DAGs' keys change at different ticks: the memo answers only part of the time.
    assert!(j.stats.plans_computed < j.stats.decisions, "{:?}", j.stats);
    let alive = r.ticks.iter().map(|t| t.cores_alive).max().unwrap();
    let planned = r.ticks.iter().map(|t| t.cores_alive_planned).max().unwrap();
    let over = r.ticks.iter().filter(|t| t.cores_alive_planned > 2).count();
    let cold: u64 = r.results.iter().map(|x| x.summary.completed).sum();
    println!(
        "joint lockstep on 2 cores: {:?}; max cores alive in the worlds {alive}, of planned DAGs {planned} (above 2 at {over} ticks); {cold} requests completed",
        j.stats
    );
    assert_eq!(r.results.len(), 3);
    assert!(r.results.iter().map(|x| x.summary.completed).sum::<u64>() > 0);
}

#[test]
fn a_kept_plan_that_no_longer_fits_gives_way_to_the_joint_target() {
    // The safety net behind hysteresis and staging: a DAG that keeps its deployed plan while the
    // capacity shrank under it. The joint targets at 2 cores come from a twin run on fresh controllers
    // (same arrivals, same keys); telling the controllers they already aim at them makes `toward`
    // keep the 64-core plans, which the packing then finds too large.
    let a = every(1.0, 0.0, 60.0);
    let arrivals = [a.clone(), a.clone(), a];
    let late = [vec![60.5], vec![60.5], vec![60.5]];
    let mut twins: Vec<Controller> = inputs(8.0).into_iter().map(controller).collect();
    let mut small = JointController::new(Capacity::host(2, &[]));
    step(&mut small, &mut twins, 60.0, &arrivals);
    let targets = step(&mut small, &mut twins, 61.0, &late);
    let mut cs: Vec<Controller> = inputs(8.0).into_iter().map(controller).collect();
    let mut j = JointController::new(Capacity::host(64, &[]));
    let s = step(&mut j, &mut cs, 60.0, &arrivals);
    let big: u64 = s.packing.nodes.iter().map(|n| n.cpu_millis_requested).sum();
    assert!(big > 2000, "the 64-core plans request {big} millicores");
    for (c, t) in cs.iter_mut().zip(&targets.decisions) {
        c.joint_target = Some(t.plan.clone());
    }
    j.set_capacity(Capacity::host(2, &[]));
    let s = step(&mut j, &mut cs, 61.0, &late);
    assert_eq!(j.stats.hysteresis_overridden, 1, "{:?}", j.stats);
    assert_fits(&s);
    for (d, t) in s.decisions.iter().zip(&targets.decisions) {
        assert_eq!(d.plan, t.plan, "every DAG gets its joint target");
    }
    assert!(s.decisions.iter().any(|d| d.changed));
}

#[test]
fn a_capacity_that_shrinks_under_deployed_plans_is_respected_at_once() {
    let mut cs: Vec<Controller> = inputs(8.0).into_iter().map(controller).collect();
    let mut j = JointController::new(Capacity::host(64, &[]));
    let a = every(1.0, 0.0, 60.0);
    step(&mut j, &mut cs, 60.0, &[a.clone(), a.clone(), a]);
    j.set_capacity(Capacity::host(2, &[]));
    let s = step(&mut j, &mut cs, 61.0, &[vec![60.5], vec![60.5], vec![60.5]]);
    assert!(s.replanned);
    assert_fits(&s);
    assert_eq!(s.packing.nodes[0].cpu_millis_capacity, 2000);
}
