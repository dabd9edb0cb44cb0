//! Unit tests of DAG derivation and deploy-time validation.
use std::sync::Arc;

use super::*;

fn rec(name: &str, ns: &str, ann: &[(&str, &str)]) -> Arc<FunctionRecord> {
    Arc::new(FunctionRecord {
        deployment: FunctionDeployment {
            service: name.into(),
            namespace: ns.into(),
            env_process: "cat".into(),
            annotations: Some(
                ann.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        },
        replicas: 1,
        created_at: jiff::Timestamp::UNIX_EPOCH,
        generation: 0,
    })
}

fn state_of(dags: &Dags, name: &str) -> DagState {
    dags.by_key
        .values()
        .find(|e| e.name == name)
        .unwrap()
        .state
        .clone()
}

#[test]
fn a_complete_dag_is_ready_and_an_incomplete_one_pending() {
    let a = rec("a", "ns", &[(ANN_DAG, "d"), (ANN_NEXT, "b,c")]);
    let b = rec("b", "ns", &[(ANN_DAG, "d"), (ANN_NEXT, "j")]);
    let c = rec("c", "ns", &[(ANN_DAG, "d"), (ANN_NEXT, "j")]);
    let j = rec("j", "ns", &[(ANN_DAG, "d")]);
    let dags = derive(&[a.clone(), b.clone(), c.clone(), j.clone()]);
    assert_eq!(state_of(&dags, "d"), DagState::Ready);
    let e = dags.get("ns", "d").unwrap();
    assert_eq!(e.members, ["a", "b", "c", "j"]);
    assert_eq!(
        e.dag.as_ref().unwrap().pred[e.dag.as_ref().unwrap().index_of("j").unwrap()].len(),
        2
    );
    // faas-cli deploys one function at a time: a missing successor or a missing entry is pending.
    let DagState::Pending { reason } = state_of(&derive(&[a.clone(), b.clone()]), "d") else {
        panic!("expected pending");
    };
    assert!(
        reason.contains("c") && reason.contains("successor"),
        "{reason}"
    );
    assert!(matches!(
        state_of(&derive(&[b, c, j]), "d"),
        DagState::Pending { .. }
    ));
}

#[test]
fn definitive_errors_are_invalid_even_when_incomplete() {
    let a = rec("a", "ns", &[(ANN_DAG, "d"), (ANN_NEXT, "b,missing")]);
    let b = rec("b", "ns", &[(ANN_DAG, "d"), (ANN_NEXT, "a")]);
    let DagState::Invalid { reason } = state_of(&derive(&[a, b]), "d") else {
        panic!("expected invalid");
    };
    assert!(reason.contains("cycle"), "{reason}");
    let x = rec("x", "ns1", &[(ANN_DAG, "m"), (ANN_NEXT, "y")]);
    let y = rec("y", "ns2", &[(ANN_DAG, "m")]);
    let DagState::Invalid { reason } = state_of(&derive(&[x, y]), "m") else {
        panic!("expected invalid");
    };
    assert!(reason.contains("namespaces"), "{reason}");
}

#[test]
fn a_dag_may_not_share_a_function_name() {
    let a = rec("a", "ns", &[(ANN_DAG, "a")]);
    assert!(matches!(
        state_of(&derive(&[a]), "a"),
        DagState::Invalid { .. }
    ));
}
