//! Table tests of the packing, the degradation rule and the joint planner on the paper's DAGs.
#![allow(clippy::unwrap_used)]
use super::joint::{DegradeReason, JointInput, JointPlan, Standalone, plan_all};
use super::*;
use crate::{ColdStart, Load, PlanInput, ProfileSet, testkit};

fn cpu(cores: u32) -> Replica {
    Replica {
        function: format!("c{cores}"),
        hardware: Hardware::Cpu { cores },
    }
}

fn gpu(share_pct: u32) -> Replica {
    Replica {
        function: format!("g{share_pct}"),
        hardware: Hardware::Gpu { share_pct },
    }
}

/// The kube e2e's fake cluster (e2e/kube/cluster.sh): two CPU nodes of 16 cores, two GPU nodes of
/// 32 cores and one GPU in 10 MPS units.
pub(crate) fn fake_cluster() -> Capacity {
    let node = |name: &str, cores: u64, gpu_units| KubeNode {
        name: name.into(),
        cpu_millis: cores * 1000,
        gpu_units,
        units_per_gpu: 10,
    };
    Capacity::from_kube_nodes(&[
        node("cpu-node-0", 16, 0),
        node("cpu-node-1", 16, 0),
        node("gpu-node-0", 32, 10),
        node("gpu-node-1", 32, 10),
    ])
    .unwrap()
}

#[test]
fn packing_table() {
    let host2 = Capacity::host(2, &[]);
    let host_gpu = Capacity::host(4, &[100]);
    let cluster = fake_cluster();
    // (capacity, requests, fits)
    let cases: Vec<(&Capacity, Vec<Replica>, bool)> = vec![
        (&host2, vec![cpu(1), cpu(1)], true),
        (&host2, vec![cpu(1), cpu(1), cpu(1)], false),
        (&host2, vec![cpu(4)], false),
        (&host2, vec![gpu(10)], false),
        (&host_gpu, vec![gpu(60), gpu(40), cpu(4)], true),
        (&host_gpu, vec![gpu(60), gpu(50)], false),
        // 10 units per GPU: 25 % needs 3 units, so four of them (12 units) do not share one GPU.
        (&cluster, vec![gpu(25); 6], true),
        (&cluster, vec![gpu(25); 7], false),
        (&cluster, vec![gpu(10); 20], true),
        (&cluster, vec![gpu(10); 21], false),
        // First-fit decreasing puts the 8-core replicas first: 12 of them fill 96 cores exactly.
        (&cluster, [vec![cpu(8); 8], vec![cpu(4); 8]].concat(), true),
        (&cluster, [vec![cpu(8); 12], vec![cpu(1)]].concat(), false),
    ];
    for (i, (cap, reqs, fits)) in cases.into_iter().enumerate() {
        let p = cap.pack(&reqs);
        assert_eq!(p.fits(), fits, "case {i}: {p:?}");
        for n in &p.nodes {
            assert!(n.cpu_millis_requested <= n.cpu_millis_capacity, "case {i}");
            assert!(n.gpu_units_requested <= n.gpu_units_capacity, "case {i}");
        }
        let placed: usize = p.nodes.iter().map(|n| n.replicas.len()).sum();
        assert_eq!(placed + p.unplaced.len(), reqs.len(), "case {i}");
    }
}

#[test]
fn overcommit_scales_cpu_only_and_is_checked() {
    let host = Capacity::host(2, &[100]).with_overcommit(2.0).unwrap();
    assert!(host.pack(&[cpu(2), cpu(2)]).fits());
    assert!(!host.pack(&[cpu(2), cpu(2), cpu(1)]).fits());
    assert!(!host.pack(&[gpu(60), gpu(60)]).fits());
    assert!(Capacity::host(2, &[]).with_overcommit(0.5).is_err());
    assert!(Capacity::host(2, &[]).with_overcommit(f64::NAN).is_err());
    assert!(Capacity::from_kube_nodes(&[]).is_err());
}

#[test]
fn requests_count_replicas_at_their_peak() {
    let c = |policy| crate::Choice {
        hardware: Hardware::Cpu { cores: 2 },
        batch: 1,
        replicas: 5,
        policy,
    };
    assert_eq!(peak_replicas(&c(ColdStart::AlwaysOn), 3), 5);
    assert_eq!(
        peak_replicas(&c(ColdStart::KeepAlive { seconds: 9.0 }), 3),
        5
    );
    assert_eq!(
        peak_replicas(&c(ColdStart::PreWarm { offset_s: 0.0 }), 3),
        3
    );
    assert_eq!(requests("f", &c(ColdStart::AlwaysOn), 1).len(), 5);
}

pub(crate) fn stack_inputs(load: Load) -> Vec<PlanInput> {
    let set = ProfileSet::paper();
    testkit::PAPER_DAGS
        .iter()
        .map(|n| PlanInput::new(testkit::stack_dag(n).unwrap(), &set, 2.0, load).unwrap())
        .collect()
}

fn joint(dags: Vec<PlanInput>, capacity: Capacity) -> JointInput {
    JointInput::new(dags, capacity)
}

fn assert_within(plan: &JointPlan) {
    assert!(plan.packing.fits(), "{:?}", plan.packing.unplaced);
    for n in &plan.packing.nodes {
        assert!(n.cpu_millis_requested <= n.cpu_millis_capacity, "{n:?}");
        assert!(n.gpu_units_requested <= n.gpu_units_capacity, "{n:?}");
    }
}

#[test]
fn the_paper_dags_on_a_two_core_host_fit_and_say_what_was_degraded() {
    let load = Load::new(Some(1.0), None).unwrap();
    let plan = plan_all(&joint(stack_inputs(load), Capacity::host(2, &[]))).unwrap();
    assert_within(&plan);
    // voice-assistant's 2 s SLA needs a GPU: it is degraded, and says so.
    let va = plan
        .degraded
        .iter()
        .find(|d| d.dag == "voice-assistant")
        .unwrap();
    assert!(
        matches!(va.reason, DegradeReason::SlaBelowFastest { .. }),
        "{va:?}"
    );
    for (p, d) in plan.plans.iter().zip(testkit::PAPER_DAGS) {
        let degraded = plan.degraded.iter().any(|x| x.dag == d);
        match p {
            Some(p) => assert!(p.meets_sla || degraded, "{d}"),
            None => assert!(degraded, "{d}"),
        }
    }
}

#[test]
fn the_paper_dags_on_the_fake_cluster_meet_every_sla_within_capacity() {
    let load = Load::new(Some(1.0), None).unwrap();
    let plan = plan_all(&joint(stack_inputs(load), fake_cluster())).unwrap();
    assert_within(&plan);
    assert!(plan.degraded.is_empty(), "{:?}", plan.degraded);
    assert!(plan.plans.iter().all(|p| p.as_ref().unwrap().meets_sla));
}

/// Under a load that wants more than the cluster has, the lowest priority is degraded first, and
/// what is kept fits.
#[test]
fn the_degradation_rule_follows_priority_then_demand() {
    let load = Load::new(Some(40.0), Some(1.0)).unwrap();
    let cap = Capacity::host(8, &[100]);
    let mut input = joint(stack_inputs(load), cap.clone());
    let free = plan_all(&input).unwrap();
    assert_within(&free);
    assert!(
        !free.degraded.is_empty(),
        "the load should not fit: {free:?}"
    );
    for victim in testkit::PAPER_DAGS {
        input.priority = testkit::PAPER_DAGS
            .iter()
            .map(|d| (d.to_string(), i32::from(*d != victim)))
            .collect();
        let plan = plan_all(&input).unwrap();
        assert_within(&plan);
        assert!(
            plan.degraded.iter().any(|d| d.dag == victim),
            "{victim}: {:?}",
            plan.degraded
        );
    }
    // Standalone replicas are reserved first.
    input.standalone = vec![Standalone {
        name: "s".into(),
        hardware: Hardware::Cpu { cores: 8 },
        replicas: 1,
    }];
    let plan = plan_all(&input).unwrap();
    assert_within(&plan);
    assert!(
        plan.packing.nodes[0]
            .replicas
            .iter()
            .any(|r| r == "s cpu:8")
    );
}

/// The e2e's loads on a 2-core host (one burst of 1–3 requests every 10–60 s), SLAs image-query 4 s,
/// voice-assistant 8 s, amber-alert 8 s. No DAG meets its SLA within 2 cores even alone (image-query
/// needs 3 at its peak, the others 5 or more); every DAG needs at least one core at its peak and
/// voice-assistant two (its two middle members run side by side), and different DAGs' peaks may
/// coincide: amber-alert and image-query are deployed, released after every use, one core each at
/// every instant; voice-assistant is not.
#[test]
fn two_core_host_at_e2e_loads() {
    let set = ProfileSet::paper();
    for (i, (rate, gap)) in [(0.1, 10.0), (0.1, 30.0), (0.05, 60.0)]
        .into_iter()
        .enumerate()
    {
        let load = Load::new(Some(rate), Some(gap)).unwrap();
        let dags: Vec<PlanInput> = testkit::PAPER_DAGS
            .iter()
            .map(|n| {
                let sla = if *n == "image-query" { 4.0 } else { 8.0 };
                PlanInput::new(testkit::stack_dag(n).unwrap(), &set, sla, load).unwrap()
            })
            .collect();
        if i == 0 {
            for d in &dags {
                let fewest = (1..=8).find(|&c| {
                    let alone = joint(vec![d.clone()], Capacity::host(c, &[]));
                    plan_all(&alone).unwrap().degraded.is_empty()
                });
                println!(
                    "{}: fewest cores meeting its SLA alone {fewest:?}",
                    d.dag.name
                );
                assert!(fewest.is_some_and(|c| c > 2), "{}", d.dag.name);
            }
        }
        // Overcommitted 2× (4 cores of requests on 2): image-query meets its SLA, the others get
        // what is left.
        let over = Capacity::host(2, &[]).with_overcommit(2.0).unwrap();
        let all = plan_all(&joint(dags.clone(), over)).unwrap();
        assert_within(&all);
        assert!(all.plans[2].as_ref().is_some_and(|p| p.meets_sla));
        let lat: Vec<Option<f64>> = all
            .plans
            .iter()
            .map(|p| p.as_ref().map(|p| p.predicted_latency_s))
            .collect();
        println!(
            "  overcommit 2: {:.4} $/h, predicted {lat:?}",
            all.cost_per_hour
        );
        let plan = plan_all(&joint(dags, Capacity::host(2, &[]))).unwrap();
        assert_within(&plan);
        println!(
            "{rate}/s, {} per burst: {:.4} $/h",
            load.burst_size(),
            plan.cost_per_hour
        );
        for (d, p) in testkit::PAPER_DAGS.iter().zip(&plan.plans) {
            let lat = p.as_ref().map(|p| p.predicted_latency_s);
            println!("  {d}: predicted {lat:?}");
            assert_eq!(p.is_some(), *d != "voice-assistant", "{d}");
        }
    }
}

/// Nothing deployed costs +0 $/h (an empty f64 sum is -0, which printed as "-0.0000").
#[test]
fn nothing_deployed_costs_positive_zero() {
    let load = Load::new(Some(1.0), None).unwrap();
    let mut dags = stack_inputs(load);
    for d in &mut dags {
        d.sla_s = 0.01; // below every DAG's fastest latency
    }
    // No core at all: nothing of any DAG fits.
    let plan = plan_all(&joint(dags, Capacity::host(0, &[]))).unwrap();
    assert!(plan.plans.iter().all(Option::is_none), "{:?}", plan.plans);
    assert!(plan.cost_per_hour.is_sign_positive() && plan.cost_per_hour == 0.0);
    assert_eq!(format!("{:.4}", plan.cost_per_hour), "0.0000");
}

/// A function shared by two DAGs that are both degraded is still one deployment: the second DAG
/// gets the first one's choice for it.
#[test]
fn a_shared_function_of_degraded_dags_is_deployed_once() {
    let set = ProfileSet::paper();
    let load = Load::new(Some(0.1), None).unwrap();
    let dags: Vec<PlanInput> = ["amber-alert", "image-query"]
        .iter()
        .map(|n| PlanInput::new(testkit::paper_dag(n).unwrap(), &set, 0.5, load).unwrap())
        .collect();
    let plan = plan_all(&joint(dags, Capacity::host(4, &[]))).unwrap();
    assert_within(&plan);
    assert_eq!(plan.degraded.len(), 2, "{:?}", plan.degraded);
    let choices: Vec<crate::Choice> = plan
        .plans
        .iter()
        .flatten()
        .flat_map(|p| p.functions.iter().filter(|f| f.name == "imagerecognition"))
        .map(|f| f.choice)
        .collect();
    assert_eq!(choices.len(), 2, "{:?}", plan.plans);
    assert_eq!(choices[0], choices[1]);
}
