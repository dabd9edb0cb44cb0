//! The contract end to end: the real `smiless serve` binary, real `smiless watchdog` replicas.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{get, request, send_json};
use crate::provider::{Provider, alive, descendants};

/// Polls the status until `availableReplicas` satisfies `ok`; returns the last status.
async fn wait_available(addr: SocketAddr, name: &str, ns: &str, ok: impl Fn(u64) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let r = get(addr, &format!("/system/function/{name}?namespace={ns}")).await;
        if r.status == 200 {
            let v = r.json();
            if ok(v["availableReplicas"].as_u64().unwrap_or(0)) {
                return v;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{name}.{ns} never reached the wanted availability: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deploy(addr: SocketAddr, body: Value) {
    let r = send_json(addr, "POST", "/system/functions", &body).await;
    assert_eq!(r.status, 202, "deploy {body}: {}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_list_invoke_scale_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (p, startup) = Provider::start(dir.path()).await;
    eprintln!("smiless serve: healthz 200 after {startup:?}");
    let a = p.addr;
    deploy(a, json!({"service":"echo","image":"functions/alpine:latest","envProcess":"cat","labels":null,"annotations":null})).await;
    deploy(a, json!({"service":"env","image":"functions/alpine:latest","envProcess":"env","envVars":{"custom_env":"yes"}})).await;
    wait_available(a, "echo", "openfaas-fn", |n| n >= 1).await;
    wait_available(a, "env", "openfaas-fn", |n| n >= 1).await;

    let list = get(a, "/system/functions").await.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for f in list {
        let name = f["name"].as_str().unwrap();
        assert_eq!(f["namespace"], "openfaas-fn");
        assert_eq!(f["labels"]["faas_function"], name);
        assert!(f["annotations"].is_object());
        assert_eq!(f["image"], "functions/alpine:latest");
        assert_eq!(
            (f["replicas"].as_u64(), f["availableReplicas"].as_u64()),
            (Some(1), Some(1))
        );
        assert!(
            f["createdAt"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
    }
    let env_status = list.iter().find(|f| f["name"] == "env").unwrap();
    assert_eq!(env_status["envVars"], json!({"custom_env":"yes"}));

    // Binary body round trip through the proxy and a classic-mode `cat` replica.
    let payload: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let r = request(
        a,
        "POST",
        "/function/echo.openfaas-fn",
        &[("content-type", "application/octet-stream")],
        &payload,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, payload);
    assert!(r.headers.contains_key("x-call-id") && r.headers.contains_key("x-start-time"));

    // Verbs, raw query, request headers (the classic watchdog exposes them as Http_* variables).
    for verb in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let r = request(
            a,
            verb,
            "/function/env?testing=1",
            &[("X-Call-Id", "my-call"), ("X-Custom", "v")],
            b"",
        )
        .await;
        assert_eq!(r.status, 200, "{verb}: {}", r.text());
        let t = r.text();
        assert!(t.contains(&format!("Http_Method={verb}")), "{verb}: {t}");
        assert!(t.contains("Http_Query=testing=1"), "{t}");
        assert!(t.contains("custom_env=yes"), "{t}");
        assert!(t.contains("Http_X_Call_Id=my-call"), "{t}");
        assert!(t.contains("Http_X_Custom=v"), "{t}");
        assert_eq!(r.headers.get("x-call-id").unwrap(), "my-call");
    }

    // Scale to zero, then invoke: the proxy scales it back and waits for readiness.
    let r = send_json(
        a,
        "POST",
        "/system/scale-function/env?namespace=openfaas-fn",
        &json!({"serviceName":"env","replicas":0}),
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(get(a, "/system/function/env").await.json()["replicas"], 0);
    wait_available(a, "env", "openfaas-fn", |n| n == 0).await;
    let r = request(a, "GET", "/function/env", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Http_Method=GET"));
    assert_eq!(get(a, "/system/function/env").await.json()["replicas"], 1);

    // Logs: ndjson, ends with follow=false, names without the namespace.
    let r = get(
        a,
        "/system/logs?name=echo&namespace=openfaas-fn&follow=false&tail=-1",
    )
    .await;
    assert_eq!(r.status, 200);
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty(), "the replica logged nothing");
    for l in &lines {
        assert_eq!(l["name"], "echo");
        assert!(
            l["timestamp"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
    }

    // Removal: the replicas go away with the function.
    let before = descendants(p.pid()).len();
    let r = send_json(
        a,
        "DELETE",
        "/system/functions",
        &json!({"functionName":"echo","namespace":"openfaas-fn"}),
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(get(a, "/system/function/echo").await.status, 404);
    assert_eq!(
        request(a, "POST", "/function/echo", &[], b"x").await.status,
        503
    );
    let t0 = Instant::now();
    while descendants(p.pid()).len() >= before {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the removed function's replica is still running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_crud_with_a_function_that_cats_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = Provider::start(dir.path()).await;
    let a = p.addr;
    let r = send_json(
        a,
        "POST",
        "/system/secrets",
        &json!({"name":"secret-string","value":"v1"}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        send_json(
            a,
            "POST",
            "/system/secrets",
            &json!({"name":"secret-string","value":"v1"})
        )
        .await
        .status,
        409
    );
    let f = json!({"service":"test-secret-crud","image":"functions/alpine:latest",
        "envProcess":"cat /var/openfaas/secrets/secret-string","secrets":["secret-string"]});
    deploy(a, f.clone()).await;
    wait_available(a, "test-secret-crud", "openfaas-fn", |n| n >= 1).await;
    let r = request(a, "POST", "/function/test-secret-crud", &[], b"").await;
    assert_eq!((r.status, r.text()), (200, "v1".to_owned()));
    assert_eq!(
        get(a, "/system/secrets").await.json(),
        json!([{"name":"secret-string","namespace":"openfaas-fn"}])
    );

    // The certifier's update flow: PUT the secret, PUT the function with a changed annotation, and the new
    // value is served a few seconds later.
    assert_eq!(
        send_json(
            a,
            "PUT",
            "/system/secrets",
            &json!({"name":"secret-string","value":"v2"})
        )
        .await
        .status,
        202
    );
    let mut f2 = f.clone();
    f2["annotations"] = json!({"new-label":"1"});
    assert_eq!(
        send_json(a, "PUT", "/system/functions", &f2).await.status,
        202
    );
    let t0 = Instant::now();
    loop {
        let r = request(a, "POST", "/function/test-secret-crud", &[], b"").await;
        if r.status == 200 && r.text() == "v2" {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the new secret value never reached the function: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = send_json(
        a,
        "DELETE",
        "/system/functions",
        &json!({"functionName":"test-secret-crud"}),
    )
    .await;
    assert_eq!(r.status, 202);
    assert_eq!(
        send_json(
            a,
            "DELETE",
            "/system/secrets",
            &json!({"name":"secret-string"})
        )
        .await
        .status,
        202
    );
    assert_eq!(
        send_json(
            a,
            "DELETE",
            "/system/secrets",
            &json!({"name":"secret-string"})
        )
        .await
        .status,
        404
    );
    assert_eq!(get(a, "/system/secrets").await.json(), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_restart_restores_everything_without_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, _) = Provider::start(dir.path()).await;
    let a = p.addr;
    let r = send_json(
        a,
        "POST",
        "/system/namespace/",
        &json!({"name":"team","labels":{"openfaas":"1"}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        send_json(
            a,
            "POST",
            "/system/secrets",
            &json!({"name":"k","namespace":"team","value":"x"})
        )
        .await
        .status,
        202
    );
    deploy(
        a,
        json!({"service":"keep","namespace":"team","image":"i","envProcess":"cat","secrets":["k"],
        "labels":{"com.openfaas.scale.min":"2"}}),
    )
    .await;
    assert_eq!(
        get(a, "/system/function/keep?namespace=team").await.json()["replicas"],
        2,
        "scale.min at once"
    );
    wait_available(a, "keep", "team", |n| n >= 2).await;
    let replicas = descendants(p.pid());
    assert!(!replicas.is_empty());

    p.kill9();
    let t0 = Instant::now();
    while replicas.iter().any(|pid| alive(*pid)) {
        let left: Vec<_> = replicas.iter().filter(|pid| alive(**pid)).collect();
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "orphaned replica processes after kill -9: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (p2, startup) = Provider::start(dir.path()).await;
    eprintln!("smiless serve restart: healthz 200 after {startup:?}");
    let a = p2.addr;
    let st = wait_available(a, "keep", "team", |n| n >= 2).await;
    assert_eq!(st["replicas"], 2);
    assert_eq!(st["secrets"], json!(["k"]));
    let r = request(a, "POST", "/function/keep.team", &[], b"back").await;
    assert_eq!((r.status, r.text()), (200, "back".to_owned()));
    assert_eq!(
        get(a, "/system/secrets?namespace=team").await.json(),
        json!([{"name":"k","namespace":"team"}])
    );
    let ns = get(a, "/system/namespaces").await.json();
    assert_eq!(ns, json!(["openfaas-fn", "team"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_from_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let sp = secrets.path().to_str().unwrap();
    // A missing credentials file is fatal at start-up, with a readable reason.
    let out = Provider::command(
        dir.path(),
        &[("basic_auth", "true"), ("secret_mount_path", sp)],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("basic-auth-user"), "{err}");

    std::fs::write(secrets.path().join("basic-auth-user"), "admin\n").unwrap();
    std::fs::write(secrets.path().join("basic-auth-password"), "pw\n").unwrap();
    let (p, _) = Provider::start_with(
        dir.path(),
        &[("basic_auth", "true"), ("secret_mount_path", sp)],
    )
    .await;
    let r = get(p.addr, "/system/info").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.headers.get("www-authenticate").unwrap(),
        "Basic realm=\"Restricted\""
    );
    let ok = request(
        p.addr,
        "GET",
        "/system/info",
        &[("authorization", "Basic YWRtaW46cHc=")],
        b"",
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["provider"], "smiless");
    assert_eq!(ok.json()["orchestration"], "local");
    assert_eq!(get(p.addr, "/healthz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listens_on_loopback_by_default_and_refuses_an_open_port_without_auth() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_smiless"));
        cmd.args(["serve", "--port", "0"])
            .args(extra)
            .arg("--state-dir")
            .arg(dir.path())
            .env("basic_auth", "false")
            .env_remove("SMILESS_BIND")
            .env("RUST_LOG", "warn");
        cmd
    };
    // No address given: loopback only.
    let mut child = serve(&[])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        line
    })
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        line.starts_with("smiless: listening on 127.0.0.1:"),
        "{line}"
    );
    // Every address without basic auth: refused at start-up, saying how to enable auth.
    for bind in ["0.0.0.0", "::"] {
        let out = serve(&["--bind", bind]).output().unwrap();
        assert!(!out.status.success(), "{bind} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("without basic auth") && err.contains("basic_auth=true"),
            "{err}"
        );
    }
}
