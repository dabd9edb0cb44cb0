//! `smiless plan` without `--dag`: every DAG of the stack file planned jointly against a capacity
//! (`optimizer::capacity::joint`, docs/capacity.md): this host's cores and GPUs, or a cluster's nodes
//! from a JSON file. Prints each DAG's plan (or why it is degraded) and what every node is asked for
//! against what it has; `--json` prints the joint plan as the optimizer serialises it.
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use optimizer::PlanInput;
use optimizer::capacity::joint::{JointInput, JointPlan, plan_all};
use optimizer::capacity::{Capacity, KubeNode};

use super::{Args, in_dag_order, policy_text};

/// Where the joint plan must fit.
#[derive(Debug, Default, clap::Args)]
pub struct CapacityArgs {
    /// Cores of the host the joint plan must fit (default: this host's affinity cores).
    #[arg(long, conflicts_with = "nodes")]
    pub cores: Option<u32>,
    /// Whole GPUs of the host, each 100 MPS units of 1 % (default: the GPUs discovered, or SMILESS_GPUS).
    #[arg(long, conflicts_with = "nodes")]
    pub gpus: Option<u32>,
    /// A cluster's nodes instead of this host: a JSON list of {"name", "cpu_millis", "gpu_units",
    /// "units_per_gpu"} (a Node's allocatable CPU in millicores, its `nvidia.com/gpu` count and the
    /// device plugin's MPS replicas per GPU).
    #[arg(long)]
    pub nodes: Option<PathBuf>,
    /// CPU overcommit factor (≥ 1; GPU units are never overcommitted).
    #[arg(long, default_value_t = 1.0)]
    pub overcommit: f64,
}

/// The capacity the arguments describe.
pub fn capacity(a: &CapacityArgs) -> Result<Capacity> {
    let cap = match &a.nodes {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let nodes: Vec<KubeNode> = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: expected a JSON list of {{\"name\", \"cpu_millis\", \"gpu_units\", \"units_per_gpu\"}}",
                    path.display()
                )
            })?;
            Capacity::from_kube_nodes(&nodes).with_context(|| path.display().to_string())?
        }
        None => {
            let host = contract::backend::host::host();
            let cores = a
                .cores
                .unwrap_or_else(|| u32::try_from(host.cpus).unwrap_or(u32::MAX));
            let gpus = a.gpus.unwrap_or(host.gpus);
            Capacity::host(cores, &vec![100; gpus as usize])
        }
    };
    Ok(cap.with_overcommit(a.overcommit)?)
}

pub fn run(args: &Args, mut inputs: Vec<PlanInput>) -> Result<()> {
    let cap = capacity(&args.capacity)?;
    // The planner may only choose hardware some node can give one replica.
    for i in &mut inputs {
        i.space.hardware = cap.space(&i.space.hardware);
    }
    let joint = plan_all(&JointInput {
        prices: inputs.first().map(|i| i.prices).unwrap_or_default(),
        ..JointInput::new(inputs.clone(), cap.clone())
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&joint)?);
    } else {
        print!("{}", report(&inputs, &joint, &cap));
    }
    Ok(())
}

fn report(inputs: &[PlanInput], joint: &JointPlan, cap: &Capacity) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} DAGs planned jointly on {} node(s) (CPU overcommit {}); total {:.4} $/hour{}",
        inputs.len(),
        cap.nodes.len(),
        cap.overcommit,
        joint.cost_per_hour,
        if joint.proven_optimal {
            ", proven optimal"
        } else {
            ""
        }
    );
    for (input, plan) in inputs.iter().zip(&joint.plans) {
        let name = &input.dag.name;
        let degraded = joint.degraded.iter().find(|d| d.dag == *name);
        let _ = writeln!(out);
        match plan {
            None => {
                let _ = writeln!(out, "DAG {name}  SLA {} s: NOT DEPLOYED", input.sla_s);
            }
            Some(p) => {
                let _ = writeln!(
                    out,
                    "DAG {name}  SLA {} s  predicted {:.3} s  {:.4} $/hour",
                    input.sla_s, p.predicted_latency_s, p.cost_per_hour
                );
                for f in in_dag_order(input, p) {
                    let _ = writeln!(
                        out,
                        "  {:<26} {:<8} batch {:>2}  replicas {:>2}  {}",
                        f.name,
                        f.choice.hardware.to_string(),
                        f.choice.batch,
                        f.choice.replicas,
                        policy_text(&f.choice.policy)
                    );
                }
            }
        }
        if let Some(d) = degraded {
            let why = serde_json::to_string(&d.reason).unwrap_or_default();
            let _ = writeln!(out, "  degraded: {why}");
        }
    }
    for s in &joint.shared {
        let _ = writeln!(
            out,
            "\nshared: {} in {} planned once on {} ({:.4} $/hour)",
            s.name,
            s.dags.join(", "),
            s.choice.hardware,
            s.cost_per_hour
        );
    }
    let _ = writeln!(
        out,
        "\n{:<14} {:>16} {:>16}",
        "node", "cores req/cap", "GPU units req/cap"
    );
    for n in &joint.packing.nodes {
        let _ = writeln!(
            out,
            "{:<14} {:>16} {:>16}",
            n.node,
            format!(
                "{:.1}/{:.1}",
                n.cpu_millis_requested as f64 / 1000.0,
                n.cpu_millis_capacity as f64 / 1000.0
            ),
            format!("{}/{}", n.gpu_units_requested, n.gpu_units_capacity)
        );
    }
    if !joint.packing.fits() {
        let _ = writeln!(out, "unplaced replicas: {}", joint.packing.unplaced.len());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args_for(nodes: Option<PathBuf>, cores: Option<u32>) -> Args {
        Args {
            stack: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../stack.yml")),
            dag: None,
            sla: Some("8s".into()),
            rate: None,
            interarrival: Some("20s".into()),
            deterministic: false,
            policy: "smiless".into(),
            profiles: None,
            prices: None,
            json: true,
            capacity: CapacityArgs {
                cores,
                gpus: Some(0),
                nodes,
                overcommit: 1.0,
            },
        }
    }

    fn joint_of(args: &Args) -> (Vec<PlanInput>, JointPlan) {
        let dags = super::super::stack_dags(args).unwrap();
        let mut inputs: Vec<PlanInput> = dags
            .into_iter()
            .map(|d| super::super::input_for(args, d).unwrap())
            .collect();
        let cap = capacity(&args.capacity).unwrap();
        for i in &mut inputs {
            i.space.hardware = cap.space(&i.space.hardware);
        }
        let j = plan_all(&JointInput::new(inputs.clone(), cap)).unwrap();
        (inputs, j)
    }

    /// What every node is asked for stays within what it has, on the host and on the fake cluster.
    #[test]
    fn every_dag_of_the_stack_planned_jointly_fits_the_capacity() {
        let fake = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../e2e/kube/fake-nodes.json"
        ));
        for args in [args_for(None, Some(2)), args_for(Some(fake), None)] {
            let (inputs, j) = joint_of(&args);
            assert_eq!(inputs.len(), 3);
            assert!(j.packing.fits(), "{:?}", j.packing.unplaced);
            for n in &j.packing.nodes {
                assert!(n.cpu_millis_requested <= n.cpu_millis_capacity, "{n:?}");
                assert!(n.gpu_units_requested <= n.gpu_units_capacity, "{n:?}");
            }
            // Every DAG is either planned or reported degraded, with its reason.
            for (i, p) in inputs.iter().zip(&j.plans) {
                assert!(
                    p.is_some() || j.degraded.iter().any(|d| d.dag == i.dag.name),
                    "{} neither planned nor degraded",
                    i.dag.name
                );
            }
            let text = report(&inputs, &j, &capacity(&args.capacity).unwrap());
            assert!(text.contains("cores req/cap"), "{text}");
        }
    }

    #[test]
    fn a_bad_nodes_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nodes.json");
        std::fs::write(&p, r#"[{"name": "a", "cpus": 4}]"#).unwrap();
        let e = capacity(&args_for(Some(p.clone()), None).capacity).unwrap_err();
        assert!(format!("{e:#}").contains("nodes.json"), "{e:#}");
        std::fs::write(&p, "[]").unwrap();
        assert!(capacity(&args_for(Some(p), None).capacity).is_err());
    }
}
