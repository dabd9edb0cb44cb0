//! Batching is opt-in for the live planner (docs/batching.md): under `batch_opt_in` only members that
//! declare `com.smiless.batch` get a batch cap above 1, and never more than they declare.
use std::collections::BTreeMap;

use optimizer::{FunctionSpec, Load, PlanInput, ProfileSet, dags_from_functions, policy_by_name};

fn member(name: &str, profile: &str, next: &str, extra: &[(&str, &str)]) -> FunctionSpec {
    let mut annotations = BTreeMap::new();
    for (k, v) in [
        ("com.smiless.dag", "iq"),
        ("com.smiless.next", next),
        ("com.smiless.profile", profile),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        annotations.insert(k.to_string(), v.to_string());
    }
    FunctionSpec {
        name: name.into(),
        namespace: "openfaas-fn".into(),
        annotations,
    }
}

/// The batch cap of each member (image-query, bursts of 16 every 10 s, SLA 6 s) with or without opt-in.
fn batches(opt_in: bool, declared: &str) -> Vec<u32> {
    let dag = dags_from_functions(&[
        member("ir", "imagerecognition", "db", &[("com.smiless.sla", "6s")]),
        member("db", "distilbert", "qa", &[("com.smiless.batch", declared)]),
        member("qa", "questionanswering", "", &[]),
    ])
    .unwrap()
    .remove(0);
    let mut input = PlanInput::new(
        dag,
        &ProfileSet::paper(),
        6.0,
        Load::new(Some(1.6), Some(10.0)).unwrap(),
    )
    .unwrap();
    input.space.batch_opt_in = opt_in;
    let plan = policy_by_name("smiless").unwrap().plan(&input).unwrap();
    plan.functions.iter().map(|f| f.choice.batch).collect()
}

#[test]
fn only_declared_members_are_batched_under_opt_in() {
    // Without opt-in (the simulator's default) bursts of 16 make every member batch.
    let all = batches(false, "true");
    assert!(all.iter().all(|&b| b > 1), "{all:?}");
    // Opt-in: the undeclared entry and sink answer one request per call; the declared member batches.
    let live = batches(true, "true");
    assert_eq!((live[0], live[2]), (1, 1), "{live:?}");
    assert!(live[1] > 1, "{live:?}");
    // A declared bound is kept: at most 4 (the search space's caps are 1, 4, 16).
    let bounded = batches(true, "4");
    assert_eq!(bounded, [1, 4, 1], "{bounded:?}");
    // `false` and `1` declare no batching.
    assert_eq!(batches(true, "false"), [1, 1, 1]);
    assert_eq!(batches(true, "1"), [1, 1, 1]);
}

#[test]
fn a_bad_batch_declaration_is_named() {
    let err = dags_from_functions(&[member(
        "ir",
        "imagerecognition",
        "",
        &[("com.smiless.batch", "lots")],
    )])
    .unwrap_err();
    assert!(
        err.to_string().contains("com.smiless.batch=\"lots\""),
        "{err}"
    );
}
