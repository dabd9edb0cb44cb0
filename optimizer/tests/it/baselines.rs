//! The baselines through the common [`Policy`] trait.
use optimizer::{ColdStart, DeviceKind, Load, PlanInput, ProfileSet, policy_by_name, testkit};

fn input(name: &str, sla: f64, gap: f64) -> PlanInput {
    PlanInput::new(
        testkit::paper_dag(name).unwrap(),
        &ProfileSet::paper(),
        sla,
        Load::new(None, Some(gap)).unwrap(),
    )
    .unwrap()
}

#[test]
fn every_policy_plans_every_paper_dag_and_none_beats_the_optimum() {
    for name in testkit::PAPER_DAGS {
        for sla in [2.0, 4.0, 6.0] {
            let inp = input(name, sla, 10.0);
            let opt = policy_by_name("opt").unwrap().plan(&inp).unwrap();
            assert!(opt.stats.proven_optimal);
            for pol in optimizer::POLICY_NAMES {
                let plan = policy_by_name(pol).unwrap().plan(&inp).unwrap();
                assert_eq!(plan.functions.len(), inp.dag.len());
                assert_eq!(plan.policy, pol);
                if plan.meets_sla {
                    assert!(
                        plan.cost_per_hour >= opt.cost_per_hour * (1.0 - 1e-9),
                        "{name} {sla} {pol} beats OPT"
                    );
                }
            }
        }
    }
    assert!(policy_by_name("nope").is_none());
}

#[test]
fn homo_uses_only_cpus_and_grandslam_is_always_on() {
    let inp = input("voice-assistant", 2.0, 10.0);
    let homo = policy_by_name("homo").unwrap().plan(&inp).unwrap();
    assert!(
        homo.functions
            .iter()
            .all(|f| f.choice.hardware.kind() == DeviceKind::Cpu)
    );
    let gs = policy_by_name("grandslam").unwrap().plan(&inp).unwrap();
    assert!(
        gs.functions
            .iter()
            .all(|f| f.choice.policy == ColdStart::AlwaysOn)
    );
}

#[test]
fn no_dag_pays_for_idle_prewarmed_replicas() {
    // With long gaps both pre-warm; No-DAG readies every function at the same time, so downstream
    // replicas idle while their predecessors run: same latency, higher cost.
    let inp = input("amber-alert", 6.0, 120.0);
    let smiless = policy_by_name("smiless").unwrap().plan(&inp).unwrap();
    let no_dag = policy_by_name("no-dag").unwrap().plan(&inp).unwrap();
    assert!(
        no_dag.cost_per_hour > smiless.cost_per_hour * 1.01,
        "{} vs {}",
        no_dag.cost_per_hour,
        smiless.cost_per_hour
    );
}

#[test]
fn icebreaker_warms_on_gpu_when_invocations_are_likely_and_releases_when_not() {
    let busy = policy_by_name("icebreaker")
        .unwrap()
        .plan(&input("image-query", 4.0, 10.0))
        .unwrap();
    assert!(
        busy.functions
            .iter()
            .all(|f| f.choice.hardware.kind() == DeviceKind::Gpu)
    );
    let idle = policy_by_name("icebreaker")
        .unwrap()
        .plan(&input("image-query", 4.0, 600.0))
        .unwrap();
    assert!(
        idle.functions
            .iter()
            .all(|f| f.choice.policy == ColdStart::KeepAlive { seconds: 0.0 })
    );
}
