//! Process plumbing of the watchdog: how `fprocess` is started so it cannot outlive the watchdog, and the
//! watchdog's own start-up (parent-death signal, CPU affinity, the secrets bind mount).
//!
//! Orphan protection without `unsafe`: a child cannot be given a parent-death signal between fork and exec
//! from safe Rust, so the watchdog starts `fprocess` through itself (`smiless watchdog --exec-child PID --
//! PROGRAM ARGS…`), which sets `PR_SET_PDEATHSIG` = SIGKILL on its own process, checks that its parent is
//! still the watchdog, and then `exec`s the program in place (the setting survives `exec`).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;

use rustix::process::{Pid, Signal};

use super::WatchdogError;
use super::config::{
    ENV_CPUS, ENV_HOST_MNT_NS, ENV_PARENT_PID, ENV_SECRETS_SRC, ProcessPlan, SECRETS_MOUNT,
};

/// Builds the command that runs `plan` under the parent-death shim, in its own process group (so a
/// timeout can kill the whole tree the function started).
pub fn command(exe: &Path, plan: &ProcessPlan) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("watchdog")
        .arg("--exec-child")
        .arg(std::process::id().to_string())
        .arg("--");
    match plan {
        ProcessPlan::Direct { program, args } => {
            cmd.arg(program).args(args);
        }
        ProcessPlan::Shell(line) => {
            cmd.arg("/bin/sh").arg("-c").arg(line);
        }
    }
    cmd.process_group(0);
    cmd
}

/// The shim: arm the parent-death signal, make sure the parent is still `parent`, then become `command`.
/// Returns only on failure.
pub fn exec_child(parent: u32, command: &[OsString]) -> WatchdogError {
    let Some((program, args)) = command.split_first() else {
        return WatchdogError::Config("--exec-child needs a command after --".into());
    };
    if let Err(e) = arm_parent_death(Some(parent)) {
        return e;
    }
    let err = std::process::Command::new(program).args(args).exec();
    WatchdogError::Start(format!("cannot run {}: {err}", program.to_string_lossy()))
}

/// Asks the kernel to SIGKILL this process when its parent dies, then closes the race where the parent
/// died before the request: if the parent is no longer the expected one, exit.
pub fn arm_parent_death(expected_parent: Option<u32>) -> Result<(), WatchdogError> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
        .map_err(|e| WatchdogError::Start(format!("prctl(PR_SET_PDEATHSIG): {e}")))?;
    if let Some(expected) = expected_parent {
        let actual = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
        if i64::from(actual) != i64::from(expected) {
            return Err(WatchdogError::Start(format!(
                "parent {expected} is gone (parent is now {actual}); not starting"
            )));
        }
    }
    Ok(())
}

/// Signals a process group; a group that is already gone is not an error.
pub fn kill_group(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Start-up of the watchdog process itself, before any thread exists (so every thread and child inherits
/// the CPU affinity): parent-death signal, CPU pinning, secrets bind mount.
pub fn prepare_self(env: &std::collections::BTreeMap<String, String>) -> Result<(), WatchdogError> {
    let parent = match env.get(ENV_PARENT_PID) {
        None => None,
        Some(p) => Some(
            p.parse::<u32>()
                .map_err(|_| WatchdogError::Config(format!("{ENV_PARENT_PID}={p} is not a pid")))?,
        ),
    };
    arm_parent_death(parent)?;
    if let Some(cpus) = env.get(ENV_CPUS).filter(|c| !c.trim().is_empty()) {
        pin_cpus(cpus)?;
    }
    if let Some(src) = env.get(ENV_SECRETS_SRC) {
        bind_secrets(Path::new(src), env.get(ENV_HOST_MNT_NS).map(String::as_str))?;
    }
    Ok(())
}

/// Parses `0,2,3` into core numbers.
pub fn parse_cpus(cpus: &str) -> Result<Vec<usize>, WatchdogError> {
    cpus.split(',')
        .map(|c| {
            c.trim().parse::<usize>().map_err(|_| {
                WatchdogError::Config(format!("{ENV_CPUS}={cpus} is not a list of cores"))
            })
        })
        .collect()
}

fn pin_cpus(cpus: &str) -> Result<(), WatchdogError> {
    let mut set = rustix::thread::CpuSet::new();
    for cpu in parse_cpus(cpus)? {
        if cpu >= rustix::thread::CpuSet::MAX_CPU {
            return Err(WatchdogError::Config(format!("core {cpu} is out of range")));
        }
        set.set(cpu);
    }
    rustix::thread::sched_setaffinity(None, &set)
        .map_err(|e| WatchdogError::Start(format!("sched_setaffinity({cpus}): {e}")))
}

/// Binds `src` read-only onto `/var/openfaas/secrets`. Only allowed in a mount namespace other than the
/// provider's: the runtime starts the watchdog under `unshare --mount`, and a bind in the host namespace
/// would change the machine for every process.
fn bind_secrets(src: &Path, host_ns: Option<&str>) -> Result<(), WatchdogError> {
    let own_ns = std::fs::read_link("/proc/self/ns/mnt")
        .map_err(|e| WatchdogError::Start(format!("cannot read /proc/self/ns/mnt: {e}")))?;
    let host_ns = host_ns.ok_or_else(|| {
        WatchdogError::Config(format!("{ENV_SECRETS_SRC} needs {ENV_HOST_MNT_NS}"))
    })?;
    if own_ns.to_string_lossy() == host_ns {
        return Err(WatchdogError::Start(
            "refusing to bind secrets in the provider's mount namespace (start under `unshare --mount`)".into(),
        ));
    }
    rustix::mount::mount_bind(src, SECRETS_MOUNT).map_err(|e| {
        WatchdogError::Start(format!("bind {} on {SECRETS_MOUNT}: {e}", src.display()))
    })?;
    rustix::mount::mount_remount(
        SECRETS_MOUNT,
        rustix::mount::MountFlags::BIND | rustix::mount::MountFlags::RDONLY,
        "",
    )
    .map_err(|e| WatchdogError::Start(format!("remount {SECRETS_MOUNT} read-only: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_core_lists() {
        assert_eq!(parse_cpus("0, 2,3").unwrap(), vec![0, 2, 3]);
        assert!(parse_cpus("0,x").is_err());
    }

    #[test]
    fn shell_plans_run_under_sh_through_the_shim() {
        let cmd = command(
            Path::new("/bin/smiless"),
            &ProcessPlan::Shell("cat | wc -c".into()),
        );
        let std = cmd.as_std();
        let args: Vec<_> = std
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(std.get_program(), "/bin/smiless");
        assert_eq!(args[0], "watchdog");
        assert_eq!(args[1], "--exec-child");
        assert_eq!(args[2], std::process::id().to_string());
        assert_eq!(&args[3..], ["--", "/bin/sh", "-c", "cat | wc -c"]);
    }
}
