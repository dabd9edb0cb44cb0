//! DAGs for tests, benchmarks and the simulator: the paper's three applications (reference:
//! smiless-artifact §8) and seeded random DAGs of given shapes over the paper's profiles. Deterministic
//! (own splitmix64 generator), so a failing case can be replayed from its seed.
use crate::dag::Dag;
use crate::profile::ProfileSet;

/// Shape of a random DAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Chain,
    /// Entry, parallel middle, join.
    Diamond,
    /// Entry fans out to all others, which are sinks... joined by a last node so there is one sink.
    FanOut,
    /// Several chains joined at the end.
    FanIn,
    /// Random edges forward in a random order (each node gets at least one predecessor).
    Random,
}

pub const SHAPES: [Shape; 5] = [
    Shape::Chain,
    Shape::Diamond,
    Shape::FanOut,
    Shape::FanIn,
    Shape::Random,
];

/// splitmix64.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// A random DAG of `n` (≥ 1) functions with profiles drawn from the paper's set.
pub fn random_dag(seed: u64, n: usize, shape: Shape) -> Dag {
    let n = n.max(1);
    let mut rng = Rng::new(seed);
    let names: Vec<String> = ProfileSet::paper().names().map(String::from).collect();
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    match shape {
        Shape::Chain => (1..n).for_each(|i| next[i - 1].push(i)),
        Shape::Diamond if n >= 3 => {
            for i in 1..n - 1 {
                next[0].push(i);
                next[i].push(n - 1);
            }
        }
        Shape::FanOut if n >= 3 => {
            // 0 → 1..n-1 all, then 1..n-2 → n-1 so there is one sink; a wide, shallow DAG.
            for i in 1..n - 1 {
                next[0].push(i);
                next[i].push(n - 1);
            }
            next[0].push(n - 1);
        }
        Shape::FanIn if n >= 3 => {
            // 0 → several short chains of random length, all joining at n-1.
            let mut i = 1;
            while i < n - 1 {
                let len = 1 + rng.below(3).min(n - 1 - i - 1);
                next[0].push(i);
                for (j, succ) in next.iter_mut().enumerate().skip(i).take(len - 1) {
                    succ.push(j + 1);
                }
                next[i + len - 1].push(n - 1);
                i += len;
            }
        }
        Shape::Random => {
            for j in 1..n {
                let p = rng.below(j);
                next[p].push(j);
                if j >= 2 && rng.below(3) == 0 {
                    let q = rng.below(j);
                    if q != p {
                        next[q].push(j);
                    }
                }
            }
        }
        _ => (1..n).for_each(|i| next[i - 1].push(i)),
    }
    let members: Vec<(String, Option<String>, Vec<String>)> = (0..n)
        .map(|i| {
            let profile = names[rng.below(names.len())].clone();
            (
                format!("f{i}"),
                Some(profile),
                next[i].iter().map(|j| format!("f{j}")).collect(),
            )
        })
        .collect();
    // Every construction above is acyclic with node 0 as the only entry.
    Dag::build(
        &format!("random-{shape:?}-{n}-{seed}"),
        "openfaas-fn",
        &members,
        None,
    )
    .expect("random_dag builds valid DAGs")
}

/// The paper's applications by name: `voice-assistant`, `amber-alert`, `image-query`.
pub fn paper_dag(name: &str) -> Option<Dag> {
    let (fns, edges): (&[&str], &[(&str, &str)]) = match name {
        "voice-assistant" => (
            &[
                "speechrecognition",
                "topicmodeling",
                "nameentityrecognition",
                "textgeneration",
                "texttospeech",
            ],
            &[
                ("speechrecognition", "topicmodeling"),
                ("speechrecognition", "nameentityrecognition"),
                ("topicmodeling", "textgeneration"),
                ("nameentityrecognition", "textgeneration"),
                ("textgeneration", "texttospeech"),
            ],
        ),
        "amber-alert" => (
            &[
                "objectdetection",
                "humanactivitypose",
                "facerecognition",
                "imagerecognition",
                "translation",
            ],
            &[
                ("objectdetection", "humanactivitypose"),
                ("humanactivitypose", "facerecognition"),
                ("facerecognition", "imagerecognition"),
                ("objectdetection", "imagerecognition"),
                ("imagerecognition", "translation"),
            ],
        ),
        "image-query" => (
            &["imagerecognition", "distilbert", "questionanswering"],
            &[
                ("imagerecognition", "distilbert"),
                ("distilbert", "questionanswering"),
            ],
        ),
        _ => return None,
    };
    let members: Vec<(String, Option<String>, Vec<String>)> = fns
        .iter()
        .map(|&f| {
            let next = edges
                .iter()
                .filter(|(a, _)| *a == f)
                .map(|(_, b)| b.to_string())
                .collect();
            (f.to_string(), Some(f.to_string()), next)
        })
        .collect();
    Dag::build(name, "openfaas-fn", &members, None).ok()
}

pub const PAPER_DAGS: [&str; 3] = ["voice-assistant", "amber-alert", "image-query"];

/// The paper's DAG `name` as `stack.yml` deploys it: every member's name prefixed (`va-`, `aa-`,
/// `iq-`), its profile the unprefixed name, so no function is shared between DAGs.
pub fn stack_dag(name: &str) -> Option<Dag> {
    let dag = paper_dag(name)?;
    let prefix: String = name
        .split('-')
        .filter_map(|w| w.chars().next())
        .chain(std::iter::once('-'))
        .collect();
    let members: Vec<(String, Option<String>, Vec<String>)> = dag
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let next = dag.succ[i]
                .iter()
                .map(|&j| format!("{prefix}{}", dag.nodes[j].name))
                .collect();
            (format!("{prefix}{}", n.name), n.profile.clone(), next)
        })
        .collect();
    Dag::build(name, "openfaas-fn", &members, Some(2.0)).ok()
}

/// A hand-made plan for `dag` (tests of what a plan means at run time): member `i` gets `choices[i]`
/// (policy, hardware, replicas) with batch 1; the predicted numbers are placeholders.
pub fn plan_of(dag: &Dag, choices: &[(crate::ColdStart, crate::Hardware, u32)]) -> crate::Plan {
    crate::Plan {
        dag: dag.name.clone(),
        policy: "hand-made".into(),
        sla_s: 5.0,
        functions: dag
            .nodes
            .iter()
            .zip(choices)
            .map(|(n, &(policy, hardware, replicas))| crate::FunctionPlan {
                name: n.name.clone(),
                choice: crate::Choice {
                    hardware,
                    batch: 1,
                    replicas,
                    policy,
                },
                start_s: 0.0,
                finish_s: 1.0,
                cost_per_hour: 0.0,
                alternatives: Vec::new(),
            })
            .collect(),
        predicted_latency_s: 3.0,
        cost_per_hour: 0.0,
        meets_sla: true,
        stats: Default::default(),
    }
}

/// Environment variable that sets how many cases each fuzz target runs (`docs/fuzzing.md`).
pub const FUZZ_CASES_ENV: &str = "SMILESS_FUZZ_CASES";

/// The number of cases a fuzz target runs: [`FUZZ_CASES_ENV`] when it is set to a positive integer, else
/// `default` (small, so `cargo test --workspace` stays fast; long runs set the variable).
pub fn fuzz_cases(default: u32) -> u32 {
    std::env::var(FUZZ_CASES_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}
