//! What the local backend needs to give a replica a real GPU share: the MPS daemon (see [`super::mps`])
//! and a calibration file shared by the replicas' `smiless-fn` GPU engines, both under the provider's
//! state directory (`<state>/gpu/`).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::mps::{MpsManager, share_env};

/// GPU support of the local backend on a host with GPUs.
#[derive(Debug)]
pub struct LocalGpu {
    mps: MpsManager,
    calibration: PathBuf,
}

impl LocalGpu {
    /// Support for `gpus` GPUs with its files under `state_dir/gpu`.
    pub fn new(state_dir: &Path, gpus: u32) -> LocalGpu {
        Self::with_mps(
            state_dir,
            MpsManager::new(&state_dir.join("gpu").join("mps"), gpus),
        )
    }

    /// [`LocalGpu::new`] with a given MPS manager (tests).
    pub fn with_mps(state_dir: &Path, mps: MpsManager) -> LocalGpu {
        LocalGpu {
            mps,
            calibration: state_dir.join("gpu").join("calibration.json"),
        }
    }

    /// GPU support when this host has a GPU; `None` otherwise (GPU shares placed on a host without a
    /// GPU, e.g. with `SMILESS_GPUS` for planning experiments, stay timing-only emulation).
    pub fn discover(state_dir: &Path) -> Option<LocalGpu> {
        let n = super::visible_count();
        (n > 0).then(|| LocalGpu::new(state_dir, n))
    }

    /// The environment of a replica holding `percent` % of device `device`: the share, the MPS daemon's
    /// directories (starting the daemon on first use) and the calibration file.
    pub fn replica_env(&self, device: u32, percent: u8) -> BTreeMap<String, String> {
        let mut env = share_env(device, percent, self.mps.ensure().as_ref());
        env.insert(
            crate::gpu::calibrate::ENV_CALIBRATION.to_owned(),
            self.calibration.display().to_string(),
        );
        env
    }

    /// Stops the MPS daemon if it was started here.
    pub fn shutdown(&self) {
        self.mps.shutdown();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::gpu::mps::{ENV_LOG, ENV_PERCENT, ENV_PIPE, ENV_VISIBLE};

    #[test]
    fn a_replica_gets_its_share_the_daemon_and_the_calibration() {
        let state = tempfile::tempdir().unwrap();
        // A daemon "answers" at this pipe directory (a listening control socket).
        let running = tempfile::tempdir().unwrap();
        let _sock = std::os::unix::net::UnixListener::bind(running.path().join("control")).unwrap();
        let mps = MpsManager::with(
            &state.path().join("gpu/mps"),
            1,
            None,
            vec![running.path().into()],
        );
        let g = LocalGpu::with_mps(state.path(), mps);
        let env = g.replica_env(0, 40);
        assert_eq!(env[ENV_VISIBLE], "0");
        assert_eq!(env[ENV_PERCENT], "40");
        assert_eq!(env[ENV_PIPE], running.path().display().to_string());
        assert!(
            !env.contains_key(ENV_LOG),
            "not our daemon: its logs are its own"
        );
        assert_eq!(
            env[crate::gpu::calibrate::ENV_CALIBRATION],
            state
                .path()
                .join("gpu/calibration.json")
                .display()
                .to_string()
        );
        g.shutdown();
    }

    #[test]
    fn without_a_daemon_or_the_program_only_the_share_is_set() {
        let state = tempfile::tempdir().unwrap();
        let mps = MpsManager::with(&state.path().join("gpu/mps"), 1, None, vec![]);
        let env = LocalGpu::with_mps(state.path(), mps).replica_env(1, 10);
        assert_eq!(env[ENV_VISIBLE], "1");
        assert!(!env.contains_key(ENV_PIPE));
    }
}
