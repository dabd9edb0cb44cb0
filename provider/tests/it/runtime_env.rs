//! The local runtime's replica environment: secrets at /var/openfaas/secrets, hardware placement, http-mode
//! functions, invalid specs and shutdown.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backend_local::runtime::{FunctionKey, GpuShare};

use crate::runtime::{invoke, runtime, scratch, spec, wait_available, watchdog_pid_on};
use crate::watchdog::{SMILESS, children, wait_dead};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_readable_at_the_container_path() {
    let dir = scratch("secrets");
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("secret-string"), "first value").unwrap();
    std::fs::write(secrets.join("not-bound"), "hidden").unwrap();
    let rt = runtime(&dir);
    let key = FunctionKey::new("openfaas-fn", "test-secret-crud");
    // Mount namespaces need root and a kernel/container that allows them (CAP_SYS_ADMIN).
    let root = rustix::process::geteuid().is_root()
        && std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "true"])
            .status()
            .is_ok_and(|s| s.success());
    assert_eq!(
        rt.secrets_mounted(),
        root,
        "as root the runtime must use a private mount namespace"
    );
    let fprocess = if root {
        "cat /var/openfaas/secrets/secret-string".to_string()
    } else {
        "sh -c 'cat \"$secret_mount_path/secret-string\"'".to_string()
    };
    let mut s = (*spec(&fprocess, &[], &dir)).clone();
    s.secrets = vec!["secret-string".into()];
    rt.apply(&key, Arc::new(s.clone()), 1).await.unwrap();
    assert_eq!(invoke(&rt, &key, b"").await.unwrap(), "first value");

    // An update of the secret file (atomically, as the catalog writes) is seen by the replica.
    std::fs::write(secrets.join(".tmp"), "second value").unwrap();
    std::fs::rename(secrets.join(".tmp"), secrets.join("secret-string")).unwrap();
    assert_eq!(invoke(&rt, &key, b"").await.unwrap(), "second value");

    if root {
        // Only the bound secret is visible, and the host's directory is untouched.
        let mut ls = s.clone();
        ls.fprocess = "ls -A /var/openfaas/secrets".into();
        let lkey = FunctionKey::new("openfaas-fn", "secret-lister");
        rt.apply(&lkey, Arc::new(ls), 1).await.unwrap();
        assert_eq!(
            invoke(&rt, &lkey, b"").await.unwrap().trim(),
            "secret-string"
        );
        let host: Vec<_> = std::fs::read_dir("/var/openfaas/secrets")
            .unwrap()
            .flatten()
            .collect();
        assert!(
            !host.iter().any(|e| e.file_name() == "secret-string"),
            "the bind mount must stay inside the replica's mount namespace"
        );
    }
    rt.shutdown().await;
}

/// The first core this process may run on (a CI container may not own core 0).
fn first_allowed_core() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap();
    list.trim()
        .split([',', '-'])
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardware_placement_reaches_the_process() {
    let dir = scratch("hw");
    let rt = runtime(&dir);
    let key = FunctionKey::new("openfaas-fn", "placed");
    let mut s = (*spec(
        "sh -c 'grep Cpus_allowed_list /proc/self/status; env'",
        &[],
        &dir,
    ))
    .clone();
    let core = first_allowed_core();
    s.cpu_set = Some(vec![core]);
    s.gpu = Some(GpuShare {
        device: 0,
        percent: 30,
    });
    rt.apply(&key, Arc::new(s), 1).await.unwrap();
    let body = invoke(&rt, &key, b"").await.unwrap();
    let env: BTreeMap<&str, &str> = body.lines().filter_map(|l| l.split_once('=')).collect();
    let allowed = body
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim);
    assert_eq!(allowed, Some(core.to_string().as_str()), "{body}");
    assert_eq!(env.get("OMP_NUM_THREADS"), Some(&"1"));
    assert_eq!(env.get("MKL_NUM_THREADS"), Some(&"1"));
    assert_eq!(env.get("CUDA_VISIBLE_DEVICES"), Some(&"0"));
    assert_eq!(env.get("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"), Some(&"30"));
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_are_refused_and_shutdown_stops_everything() {
    let dir = scratch("invalid");
    let rt = runtime(&dir);
    let key = FunctionKey::new("openfaas-fn", "bad");
    let mut s = (*spec("cat", &[], &dir)).clone();
    s.secrets = vec!["../etc/passwd".into()];
    let err = rt
        .apply(&key, Arc::new(s), 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("secret name"), "{err}");
    let err = rt
        .apply(&key, spec("  ", &[], &dir), 1)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("fprocess"), "{err}");

    rt.apply(&key, spec("cat", &[], &dir), 2).await.unwrap();
    wait_available(&rt, &key, 2, Duration::from_secs(10)).await;
    let pids: Vec<u32> = children(std::process::id())
        .into_iter()
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|e| e.windows(9).any(|w| w == b"fprocess="))
        })
        .filter(|p| {
            let Ok(cwd) = std::fs::read_link(format!("/proc/{p}/cwd")) else {
                return false;
            };
            cwd.starts_with(dir.join("work"))
        })
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    rt.shutdown().await;
    for pid in pids {
        assert!(
            wait_dead(pid, Duration::from_secs(1)).await,
            "replica {pid} survived shutdown"
        );
    }
    assert!(
        rt.apply(&key, spec("cat", &[], &dir), 1).await.is_err(),
        "no new replicas after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_functions_run_under_the_runtime() {
    let dir = scratch("http");
    let rt = runtime(&dir);
    let key = FunctionKey::new("openfaas-fn", "server");
    let up = crate::watchdog::free_port();
    // The upstream is a classic `cat` watchdog started as the long-running fprocess.
    let fprocess = format!("env -u mode -u upstream_url port={up} fprocess=cat {SMILESS} watchdog");
    let upstream_url = format!("http://127.0.0.1:{up}");
    let s = spec(
        &fprocess,
        &[("mode", "http"), ("upstream_url", &upstream_url)],
        &dir,
    );
    let t0 = std::time::Instant::now();
    rt.apply(&key, s, 1).await.unwrap();
    let first = rt.ready_endpoint(&key, Duration::from_secs(10)).await;
    println!(
        "http mode 0→1: first ready endpoint after {:?}",
        t0.elapsed()
    );
    assert!(first.is_some());
    assert_eq!(
        invoke(&rt, &key, b"through the upstream").await.unwrap(),
        "through the upstream"
    );
    let addr = rt.ready_endpoint(&key, Duration::ZERO).await.unwrap();
    let wd = watchdog_pid_on(addr.port()).unwrap();
    let fp = children(wd);
    assert_eq!(fp.len(), 1, "one long-running fprocess under the watchdog");
    rt.remove(&key).await.unwrap();
    assert!(
        wait_dead(wd, Duration::from_secs(5)).await
            && wait_dead(fp[0], Duration::from_secs(5)).await
    );
    assert_eq!(rt.status(&key).desired, 0);
}
