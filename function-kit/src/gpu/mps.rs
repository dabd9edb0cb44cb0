//! NVIDIA MPS on the local backend: the control daemon and a replica's GPU-share environment.
//!
//! A GPU share is given to a replica by `CUDA_VISIBLE_DEVICES` (which GPU) and
//! `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE` (how much of it: MPS caps the SMs the replica's context may use).
//! The percentage only means something when the replica's CUDA context is a client of an MPS server, so
//! the replica also gets the daemon's `CUDA_MPS_PIPE_DIRECTORY` (where its control socket is) and
//! `CUDA_MPS_LOG_DIRECTORY`.
//!
//! Which daemon: one already running (at the provider's own `CUDA_MPS_PIPE_DIRECTORY`, or at the system
//! default `/tmp/nvidia-mps`) is used and left alone. Otherwise, when `nvidia-cuda-mps-control` is
//! installed and the host has a GPU, the provider starts one (`nvidia-cuda-mps-control -d`) with its pipe
//! and log directories under the provider's state directory, and stops it (`quit`) on shutdown. The
//! decision is the pure [`decide`]; [`MpsManager`] carries it out.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The control program.
pub const CONTROL: &str = "nvidia-cuda-mps-control";
/// MPS's default pipe directory when `CUDA_MPS_PIPE_DIRECTORY` is unset.
pub const DEFAULT_PIPE_DIR: &str = "/tmp/nvidia-mps";
pub const ENV_PIPE: &str = "CUDA_MPS_PIPE_DIRECTORY";
pub const ENV_LOG: &str = "CUDA_MPS_LOG_DIRECTORY";
pub const ENV_PERCENT: &str = "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE";
pub const ENV_VISIBLE: &str = "CUDA_VISIBLE_DEVICES";

/// Where a daemon's sockets and logs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpsDirs {
    pub pipe: PathBuf,
    /// `None` for a daemon we did not start (its log directory is its own business).
    pub log: Option<PathBuf>,
}

/// What to do about the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MpsAction {
    /// No GPU: GPU shares here are emulated timing only; no daemon.
    NoGpu,
    /// A daemon already answers at this pipe directory: use it, never stop it.
    UseRunning(PathBuf),
    /// Not installed and none running: replicas get their share's variables, which CUDA ignores
    /// without a server (a replica then uses the whole GPU); logged once as a warning.
    NotInstalled,
    /// Start one with these directories and stop it on shutdown.
    Start(MpsDirs),
}

/// The decision: `gpus` on the host, whether the control program is installed, the first pipe directory
/// where a daemon answers, and the directories the provider would give its own daemon.
pub fn decide(gpus: u32, installed: bool, running: Option<PathBuf>, ours: &MpsDirs) -> MpsAction {
    if gpus == 0 {
        return MpsAction::NoGpu;
    }
    match (running, installed) {
        (Some(dir), _) => MpsAction::UseRunning(dir),
        (None, false) => MpsAction::NotInstalled,
        (None, true) => MpsAction::Start(ours.clone()),
    }
}

/// The pipe directories to look for a running daemon in, in order: the provider's own
/// `CUDA_MPS_PIPE_DIRECTORY`, the system default, and ours (a daemon of ours left by a crash).
pub fn candidate_pipe_dirs(provider_env_pipe: Option<&str>, ours: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = provider_env_pipe
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .collect();
    for p in [PathBuf::from(DEFAULT_PIPE_DIR), ours.to_path_buf()] {
        if !v.contains(&p) {
            v.push(p);
        }
    }
    v
}

/// Whether a daemon answers at `pipe_dir`: its control socket accepts a connection.
pub fn daemon_answers(pipe_dir: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(pipe_dir.join("control")).is_ok()
}

/// The control program's path, when it is on `PATH`.
pub fn control_program(path_var: Option<&str>) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .map(|d| d.join(CONTROL))
        .find(|p| p.is_file())
}

/// The environment of a replica holding `percent` % of visible device `device`, given the daemon's
/// directories (none: no daemon).
pub fn share_env(device: u32, percent: u8, dirs: Option<&MpsDirs>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        (ENV_VISIBLE.to_owned(), device.to_string()),
        (ENV_PERCENT.to_owned(), percent.to_string()),
    ]);
    if let Some(d) = dirs {
        env.insert(ENV_PIPE.to_owned(), d.pipe.display().to_string());
        if let Some(log) = &d.log {
            env.insert(ENV_LOG.to_owned(), log.display().to_string());
        }
    }
    env
}

/// Carries out [`decide`] once, on the first GPU share, and stops the daemon it started.
#[derive(Debug)]
pub struct MpsManager {
    gpus: u32,
    ours: MpsDirs,
    /// The control program (`None`: not installed).
    program: Option<PathBuf>,
    /// Pipe directories where a running daemon is looked for.
    search: Vec<PathBuf>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `None` until decided.
    dirs: Option<Option<MpsDirs>>,
    /// The daemon we started (stopped on shutdown).
    started: Option<MpsDirs>,
}

impl MpsManager {
    /// `dir` (under the provider's state directory) holds our daemon's `pipe/` and `log/`; `gpus` is
    /// what discovery found.
    pub fn new(dir: &Path, gpus: u32) -> MpsManager {
        let pipe = dir.join("pipe");
        let search = candidate_pipe_dirs(std::env::var(ENV_PIPE).ok().as_deref(), &pipe);
        let program = control_program(std::env::var("PATH").ok().as_deref());
        MpsManager::with(dir, gpus, program, search)
    }

    /// [`MpsManager::new`] with the control program and the search path given (tests).
    pub fn with(
        dir: &Path,
        gpus: u32,
        program: Option<PathBuf>,
        search: Vec<PathBuf>,
    ) -> MpsManager {
        MpsManager {
            gpus,
            ours: MpsDirs {
                pipe: dir.join("pipe"),
                log: Some(dir.join("log")),
            },
            program,
            search,
            state: Mutex::default(),
        }
    }

    /// The daemon's directories for a replica with a GPU share (starting the daemon on first use);
    /// `None` when there is no daemon to talk to.
    pub fn ensure(&self) -> Option<MpsDirs> {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(d) = &st.dirs {
            return d.clone();
        }
        let running = self.search.iter().find(|d| daemon_answers(d)).cloned();
        let dirs = match decide(self.gpus, self.program.is_some(), running, &self.ours) {
            MpsAction::NoGpu => None,
            MpsAction::UseRunning(pipe) => {
                tracing::info!("MPS: using the running daemon at {}", pipe.display());
                Some(MpsDirs { pipe, log: None })
            }
            MpsAction::NotInstalled => {
                tracing::warn!(
                    "MPS: {CONTROL} is not installed and no daemon runs; GPU shares are not enforced \
                     (each replica may use the whole GPU)"
                );
                None
            }
            MpsAction::Start(dirs) => match start(self.program.as_deref(), &dirs) {
                Ok(()) => {
                    tracing::info!("MPS: started a control daemon at {}", dirs.pipe.display());
                    st.started = Some(dirs.clone());
                    Some(dirs)
                }
                Err(e) => {
                    tracing::error!(
                        "MPS: cannot start {CONTROL}: {e}; GPU shares are not enforced"
                    );
                    None
                }
            },
        };
        st.dirs = Some(dirs.clone());
        dirs
    }

    /// Stops the daemon if this manager started it (a daemon found running is left alone).
    pub fn shutdown(&self) {
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(dirs) = st.started.take() {
            match stop(self.program.as_deref(), &dirs) {
                Ok(()) => tracing::info!("MPS: stopped the daemon we started"),
                Err(e) => tracing::warn!("MPS: stopping the daemon: {e}"),
            }
        }
        st.dirs = None;
    }
}

fn control_command(program: Option<&Path>, dirs: &MpsDirs) -> Command {
    let mut c = Command::new(program.unwrap_or(Path::new(CONTROL)));
    c.env(ENV_PIPE, &dirs.pipe);
    if let Some(log) = &dirs.log {
        c.env(ENV_LOG, log);
    }
    c
}

/// `nvidia-cuda-mps-control -d`: the daemon forks into the background; the command returns at once.
fn start(program: Option<&Path>, dirs: &MpsDirs) -> std::io::Result<()> {
    std::fs::create_dir_all(&dirs.pipe)?;
    if let Some(log) = &dirs.log {
        std::fs::create_dir_all(log)?;
    }
    let status = control_command(program, dirs)
        .arg("-d")
        .stdin(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{CONTROL} -d exited with {status}"
        )))
    }
}

/// Writes `quit` to the control program, which asks the daemon to exit.
fn stop(program: Option<&Path>, dirs: &MpsDirs) -> std::io::Result<()> {
    let mut child = control_command(program, dirs)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(b"quit\n")?;
    }
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{CONTROL} quit exited with {status}"
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ours() -> MpsDirs {
        MpsDirs {
            pipe: "/state/mps/pipe".into(),
            log: Some("/state/mps/log".into()),
        }
    }

    #[test]
    fn the_daemon_decision() {
        let o = ours();
        let run = Some(PathBuf::from("/tmp/nvidia-mps"));
        assert_eq!(decide(0, true, None, &o), MpsAction::NoGpu);
        assert_eq!(decide(0, true, run.clone(), &o), MpsAction::NoGpu);
        assert_eq!(
            decide(1, true, run.clone(), &o),
            MpsAction::UseRunning("/tmp/nvidia-mps".into())
        );
        // Running but not on our PATH (another user's install): still used.
        assert_eq!(
            decide(2, false, run, &o),
            MpsAction::UseRunning("/tmp/nvidia-mps".into())
        );
        assert_eq!(decide(1, false, None, &o), MpsAction::NotInstalled);
        assert_eq!(decide(1, true, None, &o), MpsAction::Start(o.clone()));
    }

    #[test]
    fn where_a_running_daemon_is_looked_for() {
        let ours = Path::new("/state/mps/pipe");
        assert_eq!(
            candidate_pipe_dirs(Some("/run/mps"), ours),
            vec![
                PathBuf::from("/run/mps"),
                PathBuf::from(DEFAULT_PIPE_DIR),
                ours.to_path_buf()
            ]
        );
        assert_eq!(
            candidate_pipe_dirs(Some(""), ours),
            vec![PathBuf::from(DEFAULT_PIPE_DIR), ours.to_path_buf()]
        );
        assert_eq!(candidate_pipe_dirs(Some(DEFAULT_PIPE_DIR), ours).len(), 2);
    }

    #[test]
    fn a_share_environment() {
        let env = share_env(1, 30, Some(&ours()));
        assert_eq!(env[ENV_VISIBLE], "1");
        assert_eq!(env[ENV_PERCENT], "30");
        assert_eq!(env[ENV_PIPE], "/state/mps/pipe");
        assert_eq!(env[ENV_LOG], "/state/mps/log");
        let external = MpsDirs {
            pipe: "/tmp/nvidia-mps".into(),
            log: None,
        };
        let env = share_env(0, 100, Some(&external));
        assert_eq!(env[ENV_PIPE], "/tmp/nvidia-mps");
        assert!(!env.contains_key(ENV_LOG));
        assert_eq!(share_env(0, 10, None).len(), 2);
    }

    #[test]
    fn a_live_socket_counts_as_a_running_daemon() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!daemon_answers(dir.path()));
        let _l = std::os::unix::net::UnixListener::bind(dir.path().join("control")).unwrap();
        assert!(daemon_answers(dir.path()));
    }

    #[test]
    fn the_control_program_is_found_on_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().display().to_string();
        assert_eq!(control_program(Some(&p)), None);
        std::fs::write(dir.path().join(CONTROL), "").unwrap();
        assert_eq!(
            control_program(Some(&format!("/nonexistent:{p}"))),
            Some(dir.path().join(CONTROL))
        );
        assert_eq!(control_program(None), None);
    }

    /// A stand-in control program that records how it was called.
    fn fake_control(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(CONTROL);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\nif [ \"$1\" = -d ]; then echo \"start $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY\" >> {log}; \
                 else read cmd; echo \"$cmd $CUDA_MPS_PIPE_DIRECTORY\" >> {log}; fi\n",
                log = dir.join("calls").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn starts_once_when_installed_and_stops_only_what_it_started() {
        let bin = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let program = fake_control(bin.path());
        let m = MpsManager::with(
            state.path(),
            1,
            Some(program.clone()),
            vec![state.path().join("pipe")],
        );
        let dirs = m.ensure().unwrap();
        assert_eq!(dirs.pipe, state.path().join("pipe"));
        assert!(dirs.pipe.is_dir() && state.path().join("log").is_dir());
        assert_eq!(m.ensure(), Some(dirs.clone()), "decided once");
        m.shutdown();
        let calls = std::fs::read_to_string(bin.path().join("calls")).unwrap();
        let pipe = dirs.pipe.display();
        let log = state.path().join("log");
        assert_eq!(
            calls,
            format!("start {pipe} {}\nquit {pipe}\n", log.display())
        );

        // A daemon already answering is used and never stopped.
        let running = tempfile::tempdir().unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(running.path().join("control")).unwrap();
        std::fs::remove_file(bin.path().join("calls")).unwrap();
        let m = MpsManager::with(
            state.path(),
            1,
            Some(program),
            vec![running.path().to_path_buf()],
        );
        assert_eq!(
            m.ensure(),
            Some(MpsDirs {
                pipe: running.path().to_path_buf(),
                log: None
            })
        );
        m.shutdown();
        assert!(
            !bin.path().join("calls").exists(),
            "neither started nor stopped"
        );
    }

    #[test]
    fn without_a_gpu_no_daemon_is_started() {
        let dir = tempfile::tempdir().unwrap();
        let m = MpsManager::with(dir.path(), 0, Some(fake_control(dir.path())), vec![]);
        assert_eq!(m.ensure(), None);
        m.shutdown();
        assert!(!dir.path().join("pipe").exists(), "nothing was created");
        assert!(
            !dir.path().join("calls").exists(),
            "the control program was not run"
        );
    }
}
