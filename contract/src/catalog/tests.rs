//! Unit tests of the catalog: rules, persistence across re-open, secret files.
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::types::LABEL_SCALE_MIN;

fn dep(name: &str) -> FunctionDeployment {
    FunctionDeployment {
        service: name.into(),
        image: "img".into(),
        env_process: "cat".into(),
        ..Default::default()
    }
}

fn open(dir: &Path) -> Catalog {
    Catalog::open(dir, "openfaas-fn", &["extra".to_owned()], 10).unwrap()
}

#[test]
fn deploy_update_scale_delete() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let rec = c.deploy(dep("a")).unwrap();
    assert_eq!((rec.namespace(), rec.replicas), ("openfaas-fn", 1));
    assert!(matches!(c.deploy(dep("a")), Err(CatalogError::Conflict(_))));
    assert_eq!(c.scale("", "a", 3).unwrap().replicas, 3);
    assert!(matches!(
        c.scale("", "a", 11),
        Err(CatalogError::Invalid(_))
    ));
    assert!(matches!(
        c.scale("", "nope", 1),
        Err(CatalogError::FunctionNotFound { .. })
    ));
    let mut d = dep("a");
    d.image = "img2".into();
    let (old, new) = c.update(d).unwrap();
    assert_eq!(
        (old.generation, new.generation, new.replicas),
        (0, 1, 3),
        "update keeps replicas"
    );
    assert_eq!(new.created_at, old.created_at);
    assert!(matches!(
        c.update(dep("b")),
        Err(CatalogError::FunctionNotFound { .. })
    ));
    c.delete("openfaas-fn", "a").unwrap();
    assert!(c.function("", "a").is_none());
    assert!(matches!(
        c.delete("", "a"),
        Err(CatalogError::FunctionNotFound { .. })
    ));
}

#[test]
fn scale_min_label_sets_initial_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let mut d = dep("m");
    d.labels = Some([(LABEL_SCALE_MIN.to_owned(), "2".to_owned())].into());
    assert_eq!(c.deploy(d).unwrap().replicas, 2);
}

#[test]
fn unknown_namespace_and_missing_secret_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let mut d = dep("a");
    d.namespace = "ghost".into();
    assert!(matches!(c.deploy(d), Err(CatalogError::Invalid(_))));
    let mut d = dep("a");
    d.secrets = vec!["s".into()];
    let e = c.deploy(d.clone()).unwrap_err();
    assert!(e.to_string().contains("unable to fetch secrets"), "{e}");
    c.put_secret("", "s", b"v", true).unwrap();
    c.deploy(d).unwrap();
    assert!(matches!(
        c.functions("ghost"),
        Err(CatalogError::NamespaceNotFound(_))
    ));
}

#[test]
fn everything_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = open(dir.path());
        c.create_namespace(FunctionNamespace {
            name: "team".into(),
            ..Default::default()
        })
        .unwrap();
        c.put_secret("team", "key", b"\x00\x01", true).unwrap();
        let mut d = dep("f");
        d.namespace = "team".into();
        d.secrets = vec!["key".into()];
        d.labels = Some(Default::default());
        c.deploy(d).unwrap();
        c.scale("team", "f", 0).unwrap();
    }
    let c = open(dir.path());
    let f = c.function("team", "f").unwrap();
    assert_eq!(f.replicas, 0);
    assert_eq!(f.deployment.labels, Some(Default::default()));
    assert_eq!(c.secrets("team").unwrap(), vec!["key".to_owned()]);
    let path = c.secrets_dir("team").join("key");
    assert_eq!(std::fs::read(&path).unwrap(), b"\x00\x01");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(c.namespace("team").is_some());
    assert!(c.namespace("extra").is_some());
}

#[test]
fn secrets_crud_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    assert!(matches!(
        c.put_secret("", "s", b"1", false),
        Err(CatalogError::SecretNotFound { .. })
    ));
    c.put_secret("", "s", b"1", true).unwrap();
    assert!(matches!(
        c.put_secret("", "s", b"1", true),
        Err(CatalogError::Conflict(_))
    ));
    c.put_secret("", "s", b"2", false).unwrap();
    assert_eq!(
        std::fs::read(c.secrets_dir("openfaas-fn").join("s")).unwrap(),
        b"2"
    );
    for bad in ["..", "a/b", "", "UP"] {
        assert!(
            matches!(
                c.put_secret("", bad, b"x", true),
                Err(CatalogError::Invalid(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        c.put_secret("ghost", "s", b"x", true),
        Err(CatalogError::NamespaceNotFound(_))
    ));
    c.delete_secret("", "s").unwrap();
    assert!(matches!(
        c.delete_secret("", "s"),
        Err(CatalogError::SecretNotFound { .. })
    ));
    assert!(c.secrets("").unwrap().is_empty());
}

#[test]
fn namespaces_crud() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let names: Vec<_> = c.namespaces().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["extra", "openfaas-fn"]);
    let ns = FunctionNamespace {
        name: "x".into(),
        ..Default::default()
    };
    c.create_namespace(ns.clone()).unwrap();
    assert!(matches!(
        c.create_namespace(ns.clone()),
        Err(CatalogError::Conflict(_))
    ));
    assert!(matches!(
        c.create_namespace(FunctionNamespace {
            name: "Bad".into(),
            ..Default::default()
        }),
        Err(CatalogError::Invalid(_))
    ));
    let mut d = dep("f");
    d.namespace = "x".into();
    c.deploy(d).unwrap();
    assert!(matches!(
        c.delete_namespace("x"),
        Err(CatalogError::Conflict(_))
    ));
    c.delete("x", "f").unwrap();
    c.delete_namespace("x").unwrap();
    assert!(matches!(
        c.delete_namespace("x"),
        Err(CatalogError::NamespaceNotFound(_))
    ));
    assert!(matches!(
        c.delete_namespace("openfaas-fn"),
        Err(CatalogError::Conflict(_))
    ));
}
