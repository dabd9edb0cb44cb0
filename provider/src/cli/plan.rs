//! `smiless plan`: plan one DAG of a stack file with any planner (the co-optimiser, the exhaustive
//! optimum or a baseline) and print the plan as a table or, with `--json`, as one JSON object; without
//! `--dag`, plan every DAG of the file jointly against a cluster's capacity ([`joint`]).
//!
//! The stack file is faas-cli's `stack.yml`; DAGs come from the `com.smiless.*` annotations (DESIGN §4)
//! and each function's profile from `com.smiless.profile` (default: the paper's re-fitted profiles, or a
//! file in the smiless profile format with `--profiles`).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use optimizer::{
    ColdStart, FunctionSpec, GapModel, Load, POLICY_NAMES, Plan, PlanInput, ProfileSet,
    dags_from_functions, parse_duration_s, policy_by_name,
};
use serde::{Deserialize, Serialize};

mod joint;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  smiless plan --stack stack.yml --dag voice-assistant --sla 2s
  smiless plan --stack stack.yml --dag amber-alert --sla 4s --interarrival 60s --policy opt --json
  smiless plan --dag image-query --sla 3s --rate 8 --interarrival 2s --policy grandslam
  smiless plan --stack stack.yml --sla 8s --interarrival 20s            # every DAG, jointly, on this host
  smiless plan --interarrival 20s --nodes e2e/kube/fake-nodes.json --json  # ... on a cluster's nodes

Without --dag every DAG of the stack file is planned jointly (the co-optimiser) against the capacity of
this host (--cores, --gpus: default its affinity cores and GPUs) or of a cluster (--nodes: a JSON list
of {\"name\", \"cpu_millis\", \"gpu_units\", \"units_per_gpu\"}, a Node's allocatable); a DAG the capacity
cannot hold at its SLA is degraded by the rule of docs/capacity.md, and the output says which and why.

Load: --rate is DAG requests per second, --interarrival the mean gap between bursts of requests
(default 1/rate; with neither, one request per second). Policies: smiless (the co-optimiser), opt (the
exhaustive optimum), orion, icebreaker, aquatope, grandslam, homo (CPU only), no-dag.")]
pub struct Args {
    /// faas-cli stack file whose functions carry the com.smiless.* annotations.
    #[arg(long, default_value = "stack.yml")]
    pub stack: PathBuf,
    /// The DAG to plan (its com.smiless.dag name); without it, every DAG jointly against the capacity.
    #[arg(long)]
    pub dag: Option<String>,
    /// End-to-end SLA, e.g. 2s or 1500ms (default: the entry's com.smiless.sla).
    #[arg(long)]
    pub sla: Option<String>,
    /// DAG requests per second.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Mean time between bursts of requests, e.g. 10s.
    #[arg(long)]
    pub interarrival: Option<String>,
    /// Treat the inter-arrival time as exact (perfectly predicted arrivals) instead of exponential.
    #[arg(long)]
    pub deterministic: bool,
    /// The planner.
    #[arg(long, default_value = "smiless", value_parser = clap::builder::PossibleValuesParser::new(POLICY_NAMES))]
    pub policy: String,
    /// Profiles in the smiless JSON format (default: the paper's 16 functions, re-fitted).
    #[arg(long)]
    pub profiles: Option<PathBuf>,
    /// Prices as JSON {"cpu_core_hour": .., "gpu_hour": ..} (default: the paper's AWS table).
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub capacity: joint::CapacityArgs,
}

/// The parts of a faas-cli stack file smiless reads.
#[derive(Debug, Deserialize)]
struct Stack {
    #[serde(default)]
    functions: BTreeMap<String, StackFunction>,
}

#[derive(Debug, Deserialize)]
struct StackFunction {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Reads a faas-cli stack file into the function list the optimizer's DAG builder takes.
pub fn load_stack(path: &Path) -> Result<Vec<FunctionSpec>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading stack file {}", path.display()))?;
    let stack: Stack = serde_saphyr::from_str(&text).map_err(|e| {
        anyhow!(
            "{}: not a valid stack file (annotation values must be strings): {e}",
            path.display()
        )
    })?;
    Ok(stack
        .functions
        .into_iter()
        .map(|(name, f)| FunctionSpec {
            name,
            namespace: f.namespace.unwrap_or_else(|| "openfaas-fn".to_string()),
            annotations: f.annotations,
        })
        .collect())
}

/// The `--json` output.
#[derive(Debug, Serialize)]
struct JsonPlan<'a> {
    dag: &'a str,
    sla_s: f64,
    policy: &'a str,
    predicted_latency_s: f64,
    cost_per_hour: f64,
    functions: Vec<JsonFunction<'a>>,
}

#[derive(Debug, Serialize)]
struct JsonFunction<'a> {
    name: &'a str,
    hardware: String,
    batch: u32,
    policy: JsonPolicy,
    replicas: u32,
}

#[derive(Debug, Serialize)]
struct JsonPolicy {
    kind: &'static str,
    seconds: Option<f64>,
}

fn policy_text(p: &ColdStart) -> String {
    match p.seconds() {
        Some(s) => format!("{} {:.2}s", p.kind(), s),
        None => p.kind().to_string(),
    }
}

/// The stack file's DAGs.
fn stack_dags(args: &Args) -> Result<Vec<optimizer::Dag>> {
    let functions = load_stack(&args.stack)?;
    dags_from_functions(&functions)
        .with_context(|| format!("invalid DAG in {}", args.stack.display()))
}

/// Builds the planning input of the one DAG `--dag` names.
pub fn input_from_args(args: &Args) -> Result<PlanInput> {
    let name = args
        .dag
        .as_deref()
        .ok_or_else(|| anyhow!("--dag is needed to plan one DAG"))?;
    let dags = stack_dags(args)?;
    let Some(dag) = dags.iter().find(|d| d.name == name).cloned() else {
        let known: Vec<&str> = dags.iter().map(|d| d.name.as_str()).collect();
        bail!(
            "no DAG named {:?} in {}; DAGs there: {}",
            name,
            args.stack.display(),
            known.join(", ")
        );
    };
    input_for(args, dag)
}

/// The planning input of `dag` with the arguments' SLA (else the entry's), load, profiles and prices.
fn input_for(args: &Args, dag: optimizer::Dag) -> Result<PlanInput> {
    let sla_s = match (&args.sla, dag.sla_s) {
        (Some(s), _) => parse_duration_s(s)?,
        (None, Some(s)) => s,
        (None, None) => bail!(
            "no SLA for {:?}: pass --sla or set com.smiless.sla on its entry",
            dag.name
        ),
    };
    let interarrival = args
        .interarrival
        .as_deref()
        .map(parse_duration_s)
        .transpose()?;
    let mut load = Load::new(args.rate, interarrival)?;
    if args.deterministic {
        load = load.with_gaps(GapModel::Deterministic);
    }
    let profiles = match &args.profiles {
        Some(p) => ProfileSet::from_json(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => ProfileSet::paper(),
    };
    let mut input = PlanInput::new(dag, &profiles, sla_s, load)?;
    if let Some(p) = &args.prices {
        input.prices = contract::config::read_prices(p)?;
    }
    Ok(input)
}

pub fn run(args: Args) -> Result<()> {
    if args.dag.is_none() {
        let dags = stack_dags(&args)?;
        let inputs = dags
            .into_iter()
            .map(|d| input_for(&args, d))
            .collect::<Result<Vec<_>>>()?;
        return joint::run(&args, inputs);
    }
    let input = input_from_args(&args)?;
    let planner =
        policy_by_name(&args.policy).ok_or_else(|| anyhow!("unknown policy {:?}", args.policy))?;
    let plan = planner.plan(&input)?;
    if args.json {
        println!("{}", serde_json::to_string(&json_plan(&input, &plan))?);
    } else {
        print!("{}", table(&input, &plan));
    }
    Ok(())
}

/// The plan's functions in the DAG's topological order (entry first).
fn in_dag_order<'a>(
    input: &PlanInput,
    plan: &'a Plan,
) -> impl Iterator<Item = &'a optimizer::FunctionPlan> {
    input
        .dag
        .topo
        .clone()
        .into_iter()
        .filter_map(|i| plan.functions.get(i))
}

fn json_plan<'a>(input: &PlanInput, plan: &'a Plan) -> JsonPlan<'a> {
    JsonPlan {
        dag: &plan.dag,
        sla_s: plan.sla_s,
        policy: &plan.policy,
        predicted_latency_s: plan.predicted_latency_s,
        cost_per_hour: plan.cost_per_hour,
        functions: in_dag_order(input, plan)
            .map(|f| JsonFunction {
                name: &f.name,
                hardware: f.choice.hardware.to_string(),
                batch: f.choice.batch,
                policy: JsonPolicy {
                    kind: f.choice.policy.kind(),
                    seconds: f.choice.policy.seconds(),
                },
                replicas: f.choice.replicas,
            })
            .collect(),
    }
}

fn table(input: &PlanInput, plan: &Plan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let l = &input.load;
    let _ = writeln!(
        out,
        "DAG {}  SLA {} s  policy {}  load {:.3} req/s in bursts of {} every {:.2} s ({:?} gaps)",
        plan.dag,
        plan.sla_s,
        plan.policy,
        l.rate_per_s,
        l.burst_size(),
        l.interarrival_s,
        l.gaps
    );
    let _ = writeln!(
        out,
        "{:<26} {:<8} {:>5} {:>8}  {:<22} {:>7} {:>7} {:>9}",
        "function", "hardware", "batch", "replicas", "cold start", "start", "finish", "$/hour"
    );
    for f in in_dag_order(input, plan) {
        let _ = writeln!(
            out,
            "{:<26} {:<8} {:>5} {:>8}  {:<22} {:>7.3} {:>7.3} {:>9.4}",
            f.name,
            f.choice.hardware.to_string(),
            f.choice.batch,
            f.choice.replicas,
            policy_text(&f.choice.policy),
            f.start_s,
            f.finish_s,
            f.cost_per_hour
        );
    }
    let _ = writeln!(
        out,
        "predicted latency {:.3} s ({})   cost ${:.4}/hour{}",
        plan.predicted_latency_s,
        if plan.meets_sla {
            "meets the SLA"
        } else {
            "MISSES the SLA"
        },
        plan.cost_per_hour,
        if plan.stats.proven_optimal {
            "   proven optimal in its space"
        } else {
            ""
        }
    );
    if plan.functions.iter().any(|f| !f.alternatives.is_empty()) {
        let _ = writeln!(
            out,
            "rejected alternatives (one function changed; whole-plan cost and latency):"
        );
        for f in in_dag_order(input, plan) {
            let alts: Vec<String> = f
                .alternatives
                .iter()
                .map(|a| {
                    format!(
                        "{} b{} x{} {} -> ${:.4}/h {:.3} s{}",
                        a.choice.hardware,
                        a.choice.batch,
                        a.choice.replicas,
                        policy_text(&a.choice.policy),
                        a.cost_per_hour,
                        a.latency_s,
                        if a.meets_sla { "" } else { " (misses SLA)" }
                    )
                })
                .collect();
            let _ = writeln!(out, "  {:<24} {}", f.name, alts.join("; "));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(dag: &str, sla: &str, policy: &str) -> Args {
        Args {
            stack: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../stack.yml")),
            dag: Some(dag.into()),
            sla: Some(sla.into()),
            rate: None,
            interarrival: Some("10s".into()),
            deterministic: false,
            policy: policy.into(),
            profiles: None,
            prices: None,
            json: true,
            capacity: joint::CapacityArgs::default(),
        }
    }

    #[test]
    fn the_repository_stack_declares_the_three_paper_dags() {
        let fns = load_stack(&args("x", "2s", "smiless").stack).unwrap();
        let dags = dags_from_functions(&fns).unwrap();
        let names: Vec<&str> = dags.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["amber-alert", "image-query", "voice-assistant"]);
        assert!(dags.iter().all(|d| d.sla_s == Some(2.0)));
        let va = dags.iter().find(|d| d.name == "voice-assistant").unwrap();
        assert_eq!(va.nodes[va.entry].name, "va-speechrecognition");
        assert_eq!(va.len(), 5);
    }

    #[test]
    fn json_has_exactly_the_documented_fields() {
        let a = args("voice-assistant", "2s", "smiless");
        let input = input_from_args(&a).unwrap();
        let plan = policy_by_name("smiless").unwrap().plan(&input).unwrap();
        let v: serde_json::Value = serde_json::to_value(json_plan(&input, &plan)).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "cost_per_hour",
                "dag",
                "functions",
                "policy",
                "predicted_latency_s",
                "sla_s"
            ]
        );
        let f = &v["functions"][0];
        assert_eq!(f["name"], "va-speechrecognition");
        // The chosen hardware depends on the latency model; its form is what the JSON documents.
        for f in v["functions"].as_array().unwrap() {
            let hw = f["hardware"].as_str().unwrap();
            let (kind, size) = hw.split_once(':').unwrap();
            assert!(matches!(kind, "cpu" | "gpu"), "{hw}");
            assert!(size.parse::<u32>().unwrap() > 0, "{hw}");
            let policy = f["policy"]["kind"].as_str().unwrap();
            assert!(
                ["always-on", "keep-alive", "pre-warm"].contains(&policy),
                "{policy}"
            );
            // `seconds` is set exactly for the timed policies.
            assert_eq!(f["policy"]["seconds"].is_null(), policy == "always-on");
        }
    }

    #[test]
    fn errors_are_readable() {
        let err = input_from_args(&args("nope", "2s", "smiless"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("voice-assistant"), "{err}");
        let input = input_from_args(&args("image-query", "100ms", "smiless")).unwrap();
        let err = policy_by_name("smiless")
            .unwrap()
            .plan(&input)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("infeasible: the fastest plan takes"),
            "{err}"
        );
        let mut a = args("image-query", "2s", "smiless");
        let dir = std::env::temp_dir().join(format!("smiless-plan-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("stack.yml");
        std::fs::write(&bad, "functions:\n  a:\n    annotations:\n      com.smiless.dag: d\n      com.smiless.profile: resnet\n      com.smiless.sla: \"1s\"\n").unwrap();
        a.stack = bad;
        a.dag = Some("d".into());
        let err = input_from_args(&a).unwrap_err().to_string();
        assert!(
            err.contains("unknown profile \"resnet\"") && err.contains("speechrecognition"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
