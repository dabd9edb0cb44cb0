//! Fuzzing of the optimizer's outside inputs: the DAG annotations of a stack file or a deployment
//! (`dags_from_functions`, `parse_duration_s`), profile files (`ProfileSet::from_json`), price files
//! (`Prices::from_json`), and the planners fed with whatever those parsers accept. Every input gives a value
//! or a typed error, never a panic; what is accepted satisfies the documented invariants.
//! Cases: `SMILESS_FUZZ_CASES` (see `docs/fuzzing.md`).
use std::collections::BTreeMap;

use optimizer::dag::{ANN_DAG, ANN_NEXT, ANN_PROFILE, ANN_SLA};
use optimizer::testkit::fuzz_cases;
use optimizer::{
    FunctionSpec, Load, PlanInput, Prices, ProfileSet, dags_from_functions, parse_duration_s,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config(default: u32) -> Config {
    Config {
        cases: fuzz_cases(default),
        ..Config::default()
    }
}

/// Strings that break parsers: numbers out of range, NaN, signs, odd units, unicode, separators.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&[
            "", " ", "2s", "800ms", "1.5", "0", "0s", "-1s", "-0", "NaN", "nan s", "inf", "infs", "1e308",
            "1e308s", "1e-320ms", "1e-400", "5 s", "5ss", "5msms", "ms", "s", "1_000s", "+2s", "0x1s",
            "2S", "2m", "a,b", ",", " a , b ,", "a,a", "é", "🦀",
        ][..]).prop_map(str::to_owned),
        2 => "[a-e ,.0-9sm-]{0,10}",
        1 => any::<String>(),
    ]
}

/// A function list with `com.smiless.*` annotations over a small pool of names, so the members of one
/// DAG refer to each other; sometimes hostile values.
fn functions() -> impl Strategy<Value = Vec<FunctionSpec>> {
    const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];
    let next = prop_oneof![
        4 => prop::sample::subsequence(&NAMES[..], 0..4).prop_map(|v| v.join(",")),
        1 => hostile(),
    ];
    let one = (
        prop::sample::select(&NAMES[..]),
        prop_oneof![4 => Just("ns".to_owned()), 1 => Just("other".to_owned())],
        prop_oneof![4 => Just("x".to_owned()), 1 => Just("y".to_owned()), 1 => hostile()],
        prop::option::of(next),
        prop::option::of(prop_oneof![3 => Just("2s".to_owned()), 2 => hostile()]),
        prop::option::of(hostile()),
    )
        .prop_map(|(name, namespace, dag, next, sla, profile)| {
            let mut annotations = BTreeMap::new();
            annotations.insert(ANN_DAG.to_owned(), dag);
            for (k, v) in [(ANN_NEXT, next), (ANN_SLA, sla), (ANN_PROFILE, profile)] {
                if let Some(v) = v {
                    annotations.insert(k.to_owned(), v);
                }
            }
            FunctionSpec {
                name: name.to_owned(),
                namespace,
                annotations,
            }
        });
    prop::collection::vec(one, 0..7)
}

/// A coefficient or time: ordinary, zero, tiny, huge, negative, or not a number at all; with `hostile`
/// false, only values a profile may hold (so cases reach the planners), extremes included.
fn number(hostile: bool) -> BoxedStrategy<String> {
    let edges: &'static [&'static str] = if hostile {
        &[
            "0",
            "-0",
            "1e-300",
            "5e-324",
            "1e308",
            "1.7976931348623157e308",
            "-1",
            "1e999",
            "\"1\"",
            "null",
            "[]",
        ]
    } else {
        &["0", "1e-300", "5e-324", "1e-9", "1e6", "999999.999"]
    };
    prop_oneof![
        3 => (0.0f64..5.0).prop_map(|f| f.to_string()),
        2 => prop::sample::select(edges).prop_map(str::to_owned),
    ]
    .boxed()
}

/// A profile file with the right structure and hostile numbers (or, with `hostile` false, acceptable
/// extremes), or any text.
fn profile_text(hostile: bool) -> BoxedStrategy<String> {
    let init = move || {
        (number(hostile), number(hostile))
            .prop_map(|(m, s)| format!(r#"{{"mean_s": {m}, "std_s": {s}}}"#))
    };
    let infer = move || {
        (number(hostile), number(hostile), number(hostile))
            .prop_map(|(a, b, c)| format!(r#"{{"a": {a}, "b": {b}, "c": {c}}}"#))
    };
    let memory: &'static [&'static str] = if hostile {
        &["4096", "0", "-1", "4294967296", "1.5"]
    } else {
        &["4096"]
    };
    let profile = (init(), init(), infer(), infer(), prop::sample::select(memory))
        .prop_map(|(ic, ig, xc, xg, mem)| {
            format!(r#"{{"init": {{"cpu": {ic}, "gpu": {ig}}}, "infer": {{"cpu": {xc}, "gpu": {xg}}}, "memory_mb": {mem}}}"#)
        });
    let files = prop::collection::vec(profile, 1..4).prop_map(|ps| {
        let body: Vec<String> = ps
            .iter()
            .enumerate()
            .map(|(i, p)| format!(r#""p{i}": {p}"#))
            .collect();
        format!(
            r#"{{"source": "fuzz", "profiles": {{{}}}}}"#,
            body.join(", ")
        )
    });
    if hostile {
        prop_oneof![5 => files, 1 => any::<String>()].boxed()
    } else {
        files.boxed()
    }
}

/// The seconds `parse_duration_s` should give, by an independent reading.
fn reference_duration(text: &str) -> Option<f64> {
    let t = text.trim();
    let (num, scale) = match t.strip_suffix("ms") {
        Some(n) => (n, 1e-3),
        None => (t.strip_suffix('s').unwrap_or(t), 1.0),
    };
    let v: f64 = num.trim().parse().ok()?;
    (v.is_finite() && v > 0.0).then_some(v * scale)
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn durations(text in hostile()) {
        match (parse_duration_s(&text), reference_duration(&text)) {
            (Ok(s), Some(want)) => prop_assert_eq!(s, want),
            (Err(e), None) => prop_assert!(e.to_string().contains("invalid duration")),
            (got, want) => prop_assert!(false, "{text:?}: {got:?} vs {want:?}"),
        }
    }

    /// `--hardware` strings: an accepted one prints back to itself and has a positive speed.
    #[test]
    fn hardware_strings(s in prop_oneof![hostile(), "(cpu|gpu|tpu| cpu)?:?[ 0-9+-]{0,5}"]) {
        if let Ok(hw) = s.parse::<optimizer::Hardware>() {
            prop_assert_eq!(hw.to_string().parse::<optimizer::Hardware>(), Ok(hw));
            prop_assert!(hw.speed() > 0.0);
        }
    }

    /// Whatever the annotations, the result is a typed error or DAGs that hold the invariants the planner
    /// and the runner rely on.
    #[test]
    fn dag_annotations(fs in functions()) {
        match dags_from_functions(&fs) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(dags) => {
                for d in &dags {
                    let n = d.nodes.len();
                    prop_assert!(n > 0);
                    prop_assert_eq!(d.succ.len(), n);
                    prop_assert_eq!(d.pred.len(), n);
                    let entries: Vec<usize> = (0..n).filter(|&i| d.pred[i].is_empty()).collect();
                    prop_assert_eq!(entries, vec![d.entry]);
                    let mut topo = d.topo.clone();
                    prop_assert_eq!(topo.first().copied(), Some(d.entry));
                    // Every edge goes forward in the topological order.
                    let pos: Vec<usize> = {
                        let mut p = vec![0; n];
                        for (k, &i) in d.topo.iter().enumerate() { p[i] = k; }
                        p
                    };
                    for i in 0..n {
                        for &j in &d.succ[i] {
                            prop_assert!(pos[i] < pos[j]);
                            prop_assert!(d.pred[j].contains(&i));
                        }
                    }
                    topo.sort_unstable();
                    prop_assert_eq!(topo, (0..n).collect::<Vec<_>>());
                    if let Some(sla) = d.sla_s {
                        prop_assert!(sla.is_finite() && sla > 0.0, "SLA {}", sla);
                    }
                }
            }
        }
    }

    #[test]
    fn price_files(c in number(true), g in number(true), text in any::<String>(), structured in any::<bool>()) {
        let text = if structured { format!(r#"{{"cpu_core_hour": {c}, "gpu_hour": {g}}}"#) } else { text };
        if let Ok(p) = Prices::from_json(&text) {
            prop_assert!(p.cpu_core_hour.is_finite() && p.cpu_core_hour > 0.0);
            prop_assert!(p.gpu_hour.is_finite() && p.gpu_hour > 0.0);
        }
    }

    /// Profile files: an accepted profile predicts finite, non-negative times on every hardware.
    #[test]
    fn profile_files(text in profile_text(true)) {
        if let Ok(set) = ProfileSet::from_json(&text) {
            for name in set.names() {
                let p = set.get(name).map_err(|e| TestCaseError::fail(e.to_string()))?;
                for hw in optimizer::HardwareSpace::default().all() {
                    for batch in [1, 16, 1024] {
                        let t = p.infer_time(hw, batch);
                        prop_assert!(t.is_finite() && t >= 0.0, "{name} on {hw}, batch {batch}: {t} s from {text}");
                    }
                    let i = p.init(hw).estimate(3.0);
                    prop_assert!(i.is_finite() && i >= 0.0, "{name} init on {hw}: {i} s");
                }
            }
        }
    }
}

proptest! {
    // Planning is the expensive step: fewer cases by default.
    #![proptest_config(config(12))]

    /// The planners fed with whatever the profile, SLA and load parsers accept: a plan or a typed error.
    #[test]
    fn planners_on_accepted_inputs(
        text in profile_text(false),
        len in 1usize..4,
        sla in prop_oneof![
            3 => prop::sample::select(&["0.001", "0.5s", "2s", "30s", "1e6", "1e-300", "5e-324", "1e308"][..]).prop_map(str::to_owned),
            1 => hostile(),
        ],
        rate in prop::sample::select(&[1e-9, 0.01, 1.0, 50.0, 1e6, 1e300][..]),
        policy in prop::sample::select(&optimizer::POLICY_NAMES[..]),
    ) {
        // Rejected inputs do not count as cases (proptest fails if too many are), so every counted case plans.
        let set = ProfileSet::from_json(&text);
        prop_assume!(set.is_ok());
        let set = set.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let sla_s = parse_duration_s(&sla);
        prop_assume!(sla_s.is_ok());
        let sla_s = sla_s.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let load = Load::new(Some(rate), None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let names: Vec<String> = set.names().map(str::to_owned).collect();
        let members: Vec<(String, Option<String>, Vec<String>)> = (0..len)
            .map(|i| (format!("m{i}"), Some(names[i % names.len()].clone()), if i + 1 < len { vec![format!("m{}", i + 1)] } else { vec![] }))
            .collect();
        let dag = optimizer::Dag::build("fuzz", "ns", &members, Some(sla_s))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut input = PlanInput::new(dag, &set, sla_s, load).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Small search budgets: the point is the planners' arithmetic on extreme inputs, not plan quality.
        input.polish_nodes = 2_000;
        input.exact_node_limit = 20_000;
        let planner = optimizer::policy_by_name(policy).ok_or_else(|| TestCaseError::fail("policy"))?;
        if let Ok(plan) = planner.plan(&input) {
            prop_assert_eq!(plan.functions.len(), len);
            prop_assert!(!plan.cost_per_hour.is_nan() && !plan.predicted_latency_s.is_nan(), "{policy}: {plan:?}");
        }
    }
}

/// Replays the corpus in `tests/fuzz-seeds/`: every `profile-*.json` and `prices-*.json` file is either
/// refused with a typed error or accepted with the invariants the fuzz targets check.
#[test]
fn corpus_replays_cleanly() {
    // Relative to the package root, where `cargo test` runs integration tests: a path baked in at
    // compile time would name wherever the (shared, cached) test binary was first built.
    let dir = std::path::Path::new("tests/fuzz-seeds");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir)
        .expect("tests/fuzz-seeds exists")
        .flatten()
    {
        let path = entry.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(&path).expect("a readable seed");
        if name.starts_with("profile-") {
            if let Ok(set) = ProfileSet::from_json(&text) {
                for p in set.profiles.values() {
                    for hw in optimizer::HardwareSpace::default().all() {
                        let t = p.infer_time(hw, u32::MAX);
                        assert!(t.is_finite() && t >= 0.0, "{name}: {t} s on {hw}");
                        assert!(p.init(hw).estimate(3.0).is_finite(), "{name}: init on {hw}");
                    }
                }
            }
            seen += 1;
        } else if name.starts_with("prices-") {
            if let Ok(p) = Prices::from_json(&text) {
                assert!(p.cpu_core_hour > 0.0 && p.gpu_hour > 0.0, "{name}: {p:?}");
            }
            seen += 1;
        }
    }
    assert!(seen >= 10, "the corpus is in the tree ({seen} seeds)");
}
