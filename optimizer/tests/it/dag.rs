//! DAG declaration and validation from `com.smiless.*` annotations.
use std::collections::BTreeMap;

use optimizer::{DagError, FunctionSpec, dags_from_functions, parse_duration_s};

fn f(name: &str, dag: &str, next: &str, extra: &[(&str, &str)]) -> FunctionSpec {
    let mut annotations = BTreeMap::new();
    annotations.insert("com.smiless.dag".to_string(), dag.to_string());
    if !next.is_empty() {
        annotations.insert("com.smiless.next".to_string(), next.to_string());
    }
    for (k, v) in extra {
        annotations.insert(k.to_string(), v.to_string());
    }
    FunctionSpec {
        name: name.into(),
        namespace: "openfaas-fn".into(),
        annotations,
    }
}

#[test]
fn builds_a_diamond_with_sla_and_profiles() {
    let fns = vec![
        f(
            "sr",
            "va",
            "tm, ner",
            &[
                ("com.smiless.sla", "2s"),
                ("com.smiless.profile", "speechrecognition"),
            ],
        ),
        f("tm", "va", "tg", &[]),
        f("ner", "va", "tg", &[]),
        f("tg", "va", "", &[]),
        FunctionSpec {
            name: "plain".into(),
            namespace: "openfaas-fn".into(),
            annotations: BTreeMap::new(),
        },
    ];
    let dags = dags_from_functions(&fns).unwrap();
    assert_eq!(dags.len(), 1);
    let d = &dags[0];
    assert_eq!(d.name, "va");
    assert_eq!(d.sla_s, Some(2.0));
    assert_eq!(d.nodes[d.entry].name, "sr");
    assert_eq!(
        d.nodes[d.entry].profile.as_deref(),
        Some("speechrecognition")
    );
    assert_eq!(d.len(), 4);
    let tg = d.index_of("tg").unwrap();
    assert_eq!(d.pred[tg].len(), 2);
    assert_eq!(d.topo[0], d.entry);
    assert_eq!(*d.topo.last().unwrap(), tg);
}

#[test]
fn rejects_a_cycle_naming_it() {
    let fns = vec![
        f("a", "d", "b", &[]),
        f("b", "d", "c", &[]),
        f("c", "d", "b", &[]),
    ];
    let err = dags_from_functions(&fns).unwrap_err();
    match &err {
        DagError::Cycle { dag, cycle } => {
            assert_eq!(dag, "d");
            assert!(
                cycle.contains(&"b".to_string()) && cycle.contains(&"c".to_string()),
                "{cycle:?}"
            );
            assert_eq!(cycle.first(), cycle.last());
        }
        other => panic!("expected a cycle, got {other}"),
    }
    assert!(err.to_string().contains("cycle"));
}

#[test]
fn rejects_unknown_successor() {
    let err = dags_from_functions(&[f("a", "d", "ghost", &[])]).unwrap_err();
    assert!(
        matches!(&err, DagError::UnknownSuccessor { successor, .. } if successor == "ghost"),
        "{err}"
    );
    assert!(err.to_string().contains("ghost"));
}

#[test]
fn rejects_several_entries() {
    let err = dags_from_functions(&[
        f("a", "d", "c", &[]),
        f("b", "d", "c", &[]),
        f("c", "d", "", &[]),
    ])
    .unwrap_err();
    assert!(
        matches!(&err, DagError::SeveralEntries { entries, .. } if entries.len() == 2),
        "{err}"
    );
}

#[test]
fn rejects_empty_and_misplaced_and_mixed() {
    assert!(matches!(
        optimizer::Dag::build("x", "ns", &[], None),
        Err(DagError::Empty { .. })
    ));
    assert!(matches!(
        dags_from_functions(&[f("a", " ", "", &[])]),
        Err(DagError::EmptyName { .. })
    ));
    let err = dags_from_functions(&[
        f("a", "d", "b", &[]),
        f("b", "d", "", &[("com.smiless.sla", "2s")]),
    ])
    .unwrap_err();
    assert!(matches!(err, DagError::SlaNotOnEntry { .. }), "{err}");
    let err = dags_from_functions(&[f("a", "d", "", &[("com.smiless.sla", "fast")])]).unwrap_err();
    assert!(matches!(err, DagError::BadSla { .. }), "{err}");
    let mut other = f("b", "d", "", &[]);
    other.namespace = "team-b".into();
    let err = dags_from_functions(&[f("a", "d", "b", &[]), other]).unwrap_err();
    assert!(matches!(err, DagError::MixedNamespaces { .. }), "{err}");
}

#[test]
fn parses_durations() {
    assert_eq!(parse_duration_s("2s").unwrap(), 2.0);
    assert_eq!(parse_duration_s("1500ms").unwrap(), 1.5);
    assert_eq!(parse_duration_s(" 3 ").unwrap(), 3.0);
    assert!(parse_duration_s("-1s").is_err());
    assert!(parse_duration_s("2h").is_err());
}
