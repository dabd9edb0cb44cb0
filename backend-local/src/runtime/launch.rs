//! Starting replica processes: the watchdog's command line and environment, the per-replica scratch
//! directory and secrets view, and a dedicated spawner thread.
//!
//! Why a dedicated thread: the watchdog arms `PR_SET_PDEATHSIG`, which fires when the *thread* that forked
//! it exits, not the process. Forking from a tokio worker or blocking-pool thread (which come and go) could
//! kill healthy replicas; one thread that lives as long as the runtime forks them all.
//!
//! Secrets: as root with util-linux `unshare`, each replica starts under `unshare --mount --propagation
//! private`, and the watchdog binds its own secrets view read-only onto `/var/openfaas/secrets` inside that
//! private mount namespace, so the function reads its bound secrets at the path a container would see and
//! nothing else there. Otherwise the view's path is given in `secret_mount_path`.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::{FunctionKey, ReplicaSpec, RuntimeError};
use function_kit::watchdog::config::{
    ENV_BIND, ENV_CPUS, ENV_HOST_MNT_NS, ENV_PARENT_PID, ENV_SECRETS_SRC, SECRETS_MOUNT,
};

/// Provider environment variables a replica inherits; everything else (the provider's own settings, which
/// share names such as `read_timeout` with the watchdog's) is left out.
const PASS_THROUGH_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "LD_LIBRARY_PATH",
    "CUDA_HOME",
    "CUDA_MPS_PIPE_DIRECTORY",
    "CUDA_MPS_LOG_DIRECTORY",
    "PYTHONPATH",
    "VIRTUAL_ENV",
];

/// The environment variable that names the secrets view when no mount namespace is available.
pub const SECRETS_PATH_ENV: &str = "secret_mount_path";

/// How secrets reach a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsMode {
    /// Private mount namespace; the view is bound on `/var/openfaas/secrets`. Holds the provider's mount
    /// namespace id, which the watchdog checks it is *not* in before binding.
    MountNamespace { host_ns: String },
    /// The view's directory in `secret_mount_path`.
    EnvPath,
}

type SpawnRequest = (
    tokio::process::Command,
    oneshot::Sender<io::Result<tokio::process::Child>>,
);

/// Builds and starts replica processes.
pub struct Launcher {
    exe: PathBuf,
    replicas_dir: PathBuf,
    pub secrets: SecretsMode,
    tx: mpsc::Sender<SpawnRequest>,
}

impl Launcher {
    pub fn new(
        exe: &Path,
        work_dir: &Path,
        handle: tokio::runtime::Handle,
    ) -> Result<Self, RuntimeError> {
        if !exe.is_file() {
            return Err(RuntimeError::MissingExe(exe.to_path_buf()));
        }
        let replicas_dir = absolute(&work_dir.join("replicas"));
        // Scratch of a previous run is stale: its processes died with it.
        let _ = std::fs::remove_dir_all(&replicas_dir);
        std::fs::create_dir_all(&replicas_dir).map_err(|source| RuntimeError::Io {
            path: replicas_dir.clone(),
            source,
        })?;
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("smiless-spawner".into())
            .spawn(move || {
                let _guard = handle.enter();
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map_err(|source| RuntimeError::Io {
                path: PathBuf::from("spawner thread"),
                source,
            })?;
        Ok(Self {
            exe: absolute(exe),
            replicas_dir,
            secrets: detect_secrets_mode(),
            tx,
        })
    }

    /// Starts a prepared command on the spawner thread.
    pub async fn spawn(&self, cmd: tokio::process::Command) -> io::Result<tokio::process::Child> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((cmd, reply))
            .map_err(|_| io::Error::other("the spawner thread is gone"))?;
        rx.await
            .map_err(|_| io::Error::other("the spawner thread is gone"))?
    }

    /// The scratch directory of one replica.
    pub fn replica_dir(&self, key: &FunctionKey, id: &str) -> PathBuf {
        self.replicas_dir.join(&key.namespace).join(id)
    }

    /// Prepares the replica's directory (a private `TMPDIR` holding the watchdog's lock file, and the
    /// secrets view) and the `smiless watchdog` command that runs `spec` on `port`.
    pub fn command(
        &self,
        key: &FunctionKey,
        id: &str,
        spec: &ReplicaSpec,
        port: u16,
    ) -> io::Result<tokio::process::Command> {
        let dir = self.replica_dir(key, id);
        let _ = std::fs::remove_dir_all(&dir);
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        let secrets = dir.join("secrets");
        std::fs::create_dir_all(&secrets)?;
        let secrets_dir = absolute(&spec.secrets_dir);
        for name in &spec.secrets {
            // A link, not a copy: a secret updated in the catalog is seen at once, as with a
            // Kubernetes secret volume.
            std::os::unix::fs::symlink(secrets_dir.join(name), secrets.join(name))?;
        }

        let mut cmd = match &self.secrets {
            SecretsMode::MountNamespace { .. } => {
                let mut c = tokio::process::Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "--"])
                    .arg(&self.exe);
                c
            }
            SecretsMode::EnvPath => tokio::process::Command::new(&self.exe),
        };
        cmd.arg("watchdog").current_dir(&dir).env_clear();
        let mut env = replica_env(spec, port, &tmp, &secrets, &self.secrets, &provider_env());
        if has_private_upstream(spec) {
            set_upstream_port(&mut env, free_port()?.port());
        }
        cmd.envs(env);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        Ok(cmd)
    }
}

fn provider_env() -> BTreeMap<String, String> {
    PASS_THROUGH_ENV
        .iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect()
}

/// The watchdog's environment: pass-through variables, the function's `env`, then what the runtime
/// decides (the function cannot override the port, the parent pid or its secrets view).
pub fn replica_env(
    spec: &ReplicaSpec,
    port: u16,
    tmp: &Path,
    secrets_view: &Path,
    mode: &SecretsMode,
    inherited: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = inherited.clone();
    env.entry("PATH".into())
        .or_insert_with(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let secs = |d: std::time::Duration| format!("{}ms", d.as_millis());
    if !spec.env.contains_key("exec_timeout") {
        env.insert("exec_timeout".into(), secs(spec.exec_timeout));
    }
    // The watchdogs' 10 s read/write defaults would cut a longer exec_timeout short.
    let exec = env
        .get("exec_timeout")
        .and_then(|v| function_kit::watchdog::config::parse_duration(v));
    if let Some(exec) = exec.filter(|d| *d > function_kit::watchdog::config::DEFAULT_TIMEOUT) {
        for k in ["read_timeout", "write_timeout"] {
            if !spec.env.contains_key(k) {
                env.insert(k.into(), secs(exec));
            }
        }
    }
    env.insert("fprocess".into(), spec.fprocess.clone());
    env.insert("port".into(), port.to_string());
    env.insert(ENV_BIND.into(), Ipv4Addr::LOCALHOST.to_string());
    env.insert(ENV_PARENT_PID.into(), std::process::id().to_string());
    env.insert("TMPDIR".into(), tmp.display().to_string());
    if let Some(cpus) = spec.cpu_set.as_ref().filter(|c| !c.is_empty()) {
        let list: Vec<String> = cpus.iter().map(usize::to_string).collect();
        env.insert(ENV_CPUS.into(), list.join(","));
        for k in ["OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
            if !spec.env.contains_key(k) {
                env.insert(k.into(), cpus.len().to_string());
            }
        }
    }
    if let Some(gpu) = spec.gpu {
        env.insert("CUDA_VISIBLE_DEVICES".into(), gpu.device.to_string());
        env.insert(
            "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE".into(),
            gpu.percent.to_string(),
        );
    }
    match mode {
        SecretsMode::MountNamespace { host_ns } => {
            env.insert(ENV_SECRETS_SRC.into(), secrets_view.display().to_string());
            env.insert(ENV_HOST_MNT_NS.into(), host_ns.clone());
            env.insert(SECRETS_PATH_ENV.into(), SECRETS_MOUNT.into());
        }
        SecretsMode::EnvPath => {
            env.insert(SECRETS_PATH_ENV.into(), secrets_view.display().to_string());
        }
    }
    env
}

/// Mount namespaces need root and util-linux `unshare`; probe once that they really work here (a
/// container without CAP_SYS_ADMIN refuses them).
fn detect_secrets_mode() -> SecretsMode {
    if !rustix::process::geteuid().is_root() {
        return SecretsMode::EnvPath;
    }
    let works = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // The mount point must exist in the host tree for the bind inside the namespace.
    if !works || std::fs::create_dir_all(SECRETS_MOUNT).is_err() {
        return SecretsMode::EnvPath;
    }
    match std::fs::read_link("/proc/self/ns/mnt") {
        Ok(ns) => SecretsMode::MountNamespace {
            host_ns: ns.to_string_lossy().into_owned(),
        },
        Err(_) => SecretsMode::EnvPath,
    }
}

/// Whether a replica of `spec` gets an upstream port of its own: an http-mode `smiless-fn`, which takes the
/// port from [`function_kit::emulator::ENV_LISTEN_PORT`]. Pods each have their own network namespace, so one fixed
/// `upstream_url` serves every replica there; on one host, replicas would collide on it. Other functions keep
/// the port they name, so only one of their replicas can bind it here (docs/live.md, "Modes").
pub fn has_private_upstream(spec: &ReplicaSpec) -> bool {
    spec.env
        .get("mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("http"))
        && spec.env.contains_key("upstream_url")
        && function_kit::emulator::is_emulator(&spec.fprocess)
}

/// Points the watchdog's `upstream_url` at `port` (scheme, host and path kept) and tells the emulator to
/// listen there. An `upstream_url` that is not a URL with a host is left for the watchdog to reject.
pub fn set_upstream_port(env: &mut BTreeMap<String, String>, port: u16) {
    let Some(uri) = env
        .get("upstream_url")
        .and_then(|u| u.parse::<hyper::Uri>().ok())
    else {
        return;
    };
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return;
    };
    let path = uri.path_and_query().map_or("", |p| p.as_str());
    let path = if path == "/" && !env["upstream_url"].ends_with('/') {
        ""
    } else {
        path
    };
    env.insert(
        "upstream_url".into(),
        format!("{scheme}://{host}:{port}{path}"),
    );
    env.insert(
        function_kit::emulator::ENV_LISTEN_PORT.into(),
        port.to_string(),
    );
}

/// A port on loopback that is free now. The watchdog binds it a moment later; in the rare case another
/// process took it meanwhile, the watchdog exits and the supervisor restarts it on a new port.
pub fn free_port() -> io::Result<SocketAddr> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    l.local_addr()
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::runtime::GpuShare;
    use std::time::Duration;

    fn spec() -> ReplicaSpec {
        ReplicaSpec {
            fprocess: "cat".into(),
            env: [
                ("custom_env".to_string(), "1".to_string()),
                ("port".to_string(), "1".to_string()),
            ]
            .into(),
            secrets: vec![],
            secrets_dir: "/s".into(),
            exec_timeout: Duration::from_secs(30),
            cpu_set: Some(vec![0, 1]),
            gpu: Some(GpuShare {
                device: 1,
                percent: 20,
            }),
        }
    }

    #[test]
    fn maps_spec_to_watchdog_env() {
        let inherited: BTreeMap<String, String> =
            [("HOME".to_string(), "/root".to_string())].into();
        let env = replica_env(
            &spec(),
            4242,
            Path::new("/w/tmp"),
            Path::new("/w/secrets"),
            &SecretsMode::EnvPath,
            &inherited,
        );
        assert_eq!(env["HOME"], "/root");
        assert!(env.contains_key("PATH"));
        assert_eq!(env["custom_env"], "1");
        assert_eq!(env["fprocess"], "cat");
        assert_eq!(
            env["port"], "4242",
            "the runtime's port wins over the function's env"
        );
        assert_eq!(env["exec_timeout"], "30000ms");
        assert_eq!(env["write_timeout"], "30000ms");
        assert_eq!(env["read_timeout"], "30000ms");
        assert_eq!(env[ENV_BIND], "127.0.0.1");
        assert_eq!(env[ENV_CPUS], "0,1");
        assert_eq!(env["OMP_NUM_THREADS"], "2");
        assert_eq!(env["MKL_NUM_THREADS"], "2");
        assert_eq!(env["CUDA_VISIBLE_DEVICES"], "1");
        assert_eq!(env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"], "20");
        assert_eq!(env["TMPDIR"], "/w/tmp");
        assert_eq!(env[SECRETS_PATH_ENV], "/w/secrets");
        assert!(!env.contains_key(ENV_SECRETS_SRC));
    }

    #[test]
    fn function_env_keeps_its_own_timeouts_and_thread_counts() {
        let mut s = spec();
        s.env.insert("exec_timeout".into(), "5s".into());
        s.env.insert("OMP_NUM_THREADS".into(), "7".into());
        let ns = SecretsMode::MountNamespace {
            host_ns: "mnt:[1]".into(),
        };
        let env = replica_env(
            &s,
            1,
            Path::new("/t"),
            Path::new("/v"),
            &ns,
            &BTreeMap::new(),
        );
        assert_eq!(env["exec_timeout"], "5s");
        assert!(!env.contains_key("write_timeout"));
        assert_eq!(env["OMP_NUM_THREADS"], "7");
        assert_eq!(env[ENV_SECRETS_SRC], "/v");
        assert_eq!(env[ENV_HOST_MNT_NS], "mnt:[1]");
        assert_eq!(env[SECRETS_PATH_ENV], SECRETS_MOUNT);
    }

    #[test]
    fn an_http_mode_emulator_replica_gets_an_upstream_port_of_its_own() {
        let mut s = spec();
        assert!(!has_private_upstream(&s), "classic mode keeps no upstream");
        s.env.insert("mode".into(), "http".into());
        s.env
            .insert("upstream_url".into(), "http://127.0.0.1:5000".into());
        assert!(
            !has_private_upstream(&s),
            "only the emulator reads its port"
        );
        s.fprocess = "/usr/local/bin/smiless-fn --profile x --listen 127.0.0.1:5000".into();
        assert!(has_private_upstream(&s));

        for (url, want) in [
            ("http://127.0.0.1:5000", "http://127.0.0.1:41000"),
            ("http://127.0.0.1:5000/", "http://127.0.0.1:41000/"),
            (
                "http://localhost:5000/run?x=1",
                "http://localhost:41000/run?x=1",
            ),
        ] {
            let mut env: BTreeMap<String, String> =
                [("upstream_url".to_string(), url.to_string())].into();
            set_upstream_port(&mut env, 41000);
            assert_eq!(env["upstream_url"], want, "{url}");
            assert_eq!(env[function_kit::emulator::ENV_LISTEN_PORT], "41000");
        }
        let mut env: BTreeMap<String, String> =
            [("upstream_url".to_string(), "not a url".to_string())].into();
        set_upstream_port(&mut env, 41000);
        assert_eq!(env["upstream_url"], "not a url");
        assert!(!env.contains_key(function_kit::emulator::ENV_LISTEN_PORT));
    }
}
