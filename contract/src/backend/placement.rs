//! The `com.smiless.hardware` annotation: a deployment pinned to one hardware choice (`cpu:2`, `gpu:30`).
//!
//! `smiless profile` places the copy of a function it measures with this annotation, through the ordinary
//! deploy/update routes (so it also works through the stock gateway and `faas-cli`). The local backend
//! honours it when the control loop has not placed the function itself (a DAG member's planned hardware
//! wins), and rejects at deploy time hardware the host cannot give: more cores than it has, or a GPU share
//! on a host without GPUs (a 400 that says so, rather than a silently smaller placement that would
//! corrupt a profile).
use optimizer::Hardware;

use crate::backend::Placement;
use crate::types::FunctionDeployment;

/// The annotation's name.
pub const ANN_HARDWARE: &str = "com.smiless.hardware";

/// Parses the annotation against what `host` offers.
pub fn parse(text: &str, host: crate::backend::host::Host) -> Result<Hardware, String> {
    let hw: Hardware = text
        .parse()
        .map_err(|e| format!("annotation {ANN_HARDWARE}: {e}"))?;
    match hw {
        Hardware::Cpu { cores } if usize::try_from(cores).unwrap_or(usize::MAX) > host.cpus => {
            Err(format!(
                "annotation {ANN_HARDWARE} = {hw}: this host has only {} CPU cores",
                host.cpus
            ))
        }
        Hardware::Gpu { .. } if host.gpus == 0 => Err(format!(
            "annotation {ANN_HARDWARE} = {hw}: this host has no GPU the provider may use"
        )),
        _ => Ok(hw),
    }
}

/// The placement the annotation asks for (`Ok(None)` without the annotation). The cores are the first
/// ones of the host (slot 0), so every point of a profiling grid runs on the same cores.
pub fn from_annotation(d: &FunctionDeployment) -> Result<Option<Placement>, String> {
    let Some(text) = d.annotations.as_ref().and_then(|a| a.get(ANN_HARDWARE)) else {
        return Ok(None);
    };
    let host = crate::backend::host::host();
    let hw = parse(text, host)?;
    Ok(Some(crate::backend::host::placement(hw, 0, host)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::backend::host::Host;

    #[test]
    fn parses_what_the_host_offers_and_rejects_the_rest() {
        let host = Host { cpus: 2, gpus: 0 };
        assert_eq!(parse("cpu:2", host), Ok(Hardware::Cpu { cores: 2 }));
        let more = parse("cpu:4", host).unwrap_err();
        assert!(more.contains("only 2 CPU cores"), "{more}");
        assert!(parse("gpu:30", host).unwrap_err().contains("no GPU"));
        assert!(parse("tpu:1", host).unwrap_err().contains(ANN_HARDWARE));
        assert_eq!(
            parse("gpu:30", Host { cpus: 2, gpus: 1 }),
            Ok(Hardware::Gpu { share_pct: 30 })
        );
    }

    #[test]
    fn a_deployment_without_the_annotation_is_not_placed() {
        let d = FunctionDeployment::default();
        assert_eq!(from_annotation(&d), Ok(None));
        let d = FunctionDeployment {
            annotations: Some([(ANN_HARDWARE.to_owned(), "cpu:1".to_owned())].into()),
            ..Default::default()
        };
        let p = from_annotation(&d).unwrap().unwrap();
        assert_eq!(p.cpus, vec![0]);
        assert_eq!(p.gpu, None);
    }
}
