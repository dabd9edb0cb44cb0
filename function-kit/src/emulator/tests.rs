//! Tests of the emulator (the parent module).
#![allow(clippy::unwrap_used)]
use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| m.get(k).cloned()
}

#[test]
fn hardware_follows_the_runtime_environment() {
    assert_eq!(
        hardware_from_env(env(&[("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "30")]), 8),
        Hardware::Gpu { share_pct: 30 }
    );
    assert_eq!(
        hardware_from_env(env(&[("OMP_NUM_THREADS", "2")]), 8),
        Hardware::Cpu { cores: 2 }
    );
    assert_eq!(hardware_from_env(env(&[]), 4), Hardware::Cpu { cores: 4 });
    // Garbage falls back instead of failing the function.
    assert_eq!(
        hardware_from_env(
            env(&[
                ("OMP_NUM_THREADS", "x"),
                ("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", "0")
            ]),
            1
        ),
        Hardware::Cpu { cores: 1 }
    );
}

#[test]
fn timing_is_the_profile_scaled() {
    let set = ProfileSet::paper();
    let hw = Hardware::Cpu { cores: 2 };
    let e = Emulator::new(&set, "speechrecognition", hw, 0.1).unwrap();
    let p = set.get("speechrecognition").unwrap();
    let want = p.infer_time(hw, 1) * 0.1;
    assert!((e.compute_time().as_secs_f64() - want).abs() < 1e-9);
    // u1 = e^{-1/2}, u2 = 0 → z = 1: mean + std, scaled.
    let i = p.init(hw);
    let d = e.init_delay((-0.5f64).exp(), 0.0).as_secs_f64();
    assert!((d - (i.mean_s + i.std_s) * 0.1).abs() < 1e-9, "{d}");
    // A GPU share uses the GPU model.
    let g = Emulator::new(
        &set,
        "speechrecognition",
        Hardware::Gpu { share_pct: 50 },
        1.0,
    )
    .unwrap();
    assert!(
        (g.compute_time().as_secs_f64() - p.infer_time(Hardware::Gpu { share_pct: 50 }, 1)).abs()
            < 1e-9
    );
}

#[test]
fn a_batched_call_takes_the_profiles_batch_time() {
    let set = ProfileSet::paper();
    let hw = Hardware::Cpu { cores: 1 };
    let e = Emulator::new(&set, "texttospeech", hw, 0.5).unwrap();
    let p = set.get("texttospeech").unwrap();
    assert!((e.batch_time(8).as_secs_f64() - p.infer_time(hw, 8) * 0.5).abs() < 1e-9);
    assert!(e.batch_time(8) > e.batch_time(1));
    assert_eq!(e.batch_time(1), e.compute_time());
    assert_eq!(batch_from(Some(" 8 ")), 8);
    for bad in [None, Some("0"), Some("x"), Some("100000")] {
        assert_eq!(batch_from(bad), 1, "{bad:?}");
    }
}

#[test]
fn bad_inputs_are_readable_errors() {
    assert!(parse_time_scale(Some("0")).is_err());
    assert!(parse_time_scale(Some("abc")).is_err());
    assert_eq!(parse_time_scale(None).unwrap(), 1.0);
    assert_eq!(parse_time_scale(Some("0.25")).unwrap(), 0.25);
    let err = Emulator::new(
        &ProfileSet::paper(),
        "nope",
        Hardware::Cpu { cores: 1 },
        1.0,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("nope") && err.contains("speechrecognition"),
        "{err}"
    );
}

#[test]
fn only_the_emulator_takes_warm_ups() {
    assert!(is_emulator("smiless-fn --profile x"));
    let listen: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
    assert_eq!(listen_addr(listen, None).unwrap(), listen);
    assert_eq!(listen_addr(listen, Some(" ")).unwrap(), listen);
    assert_eq!(
        listen_addr(listen, Some("40123")).unwrap(),
        "127.0.0.1:40123".parse().unwrap()
    );
    assert!(matches!(
        listen_addr(listen, Some("http")),
        Err(EmulatorError::ListenPort(_))
    ));
    assert!(is_emulator("/usr/local/bin/smiless-fn --profile x"));
    assert!(!is_emulator("cat"));
    assert!(!is_emulator("python3 smiless-fn.py"));
    assert!(!is_emulator(""));
}

#[test]
fn classic_mode_initialises_once_per_replica() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Emulator::new(
        &ProfileSet::paper(),
        "texttospeech",
        Hardware::Cpu { cores: 1 },
        1e-4,
    )
    .unwrap();
    e.profile.init.cpu.std_s = 0.0;
    let first = classic_init(&e, dir.path());
    assert!(
        matches!(first, Init::Paid(d) if d > Duration::ZERO),
        "{first:?}"
    );
    assert!(dir.path().join(READY_MARKER).exists());
    assert!(!dir.path().join(INIT_MARKER).exists());
    assert_eq!(classic_init(&e, dir.path()), Init::Warm);
}

#[test]
fn a_call_during_initialisation_waits_instead_of_initialising_again() {
    let dir = tempfile::tempdir().unwrap();
    // Another call holds the initialising marker; it finishes a moment later.
    std::fs::write(dir.path().join(INIT_MARKER), b"").unwrap();
    let e = Emulator::new(
        &ProfileSet::paper(),
        "texttospeech",
        Hardware::Cpu { cores: 1 },
        1.0,
    )
    .unwrap();
    let ready = dir.path().join(READY_MARKER);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(ready, b"").unwrap();
    });
    let got = classic_init(&e, dir.path());
    t.join().unwrap();
    assert!(matches!(got, Init::Waited(_)), "{got:?}");
}

#[test]
fn a_framed_batch_is_one_call_of_the_batch_time() {
    use crate::batch::{self as format, Part};
    let set = ProfileSet::paper();
    let hw = Hardware::Cpu { cores: 1 };
    let e = Emulator::new(&set, "texttospeech", hw, 0.001).unwrap();
    let inputs: Vec<Part> = (0..4)
        .map(|k| Part::request(None, bytes::Bytes::from(vec![b'x'; k + 1])))
        .collect();
    let body = format::encode(&inputs).unwrap();
    let items = batched::items(Some(format::CONTENT_TYPE), Some("4"), &body)
        .unwrap()
        .unwrap();
    // An ordinary call (and the profiler's JSON-array batch) is not a framed batch.
    assert!(batched::items(Some("application/json"), Some("4"), &body).is_none());
    assert!(
        batched::items(Some(format::CONTENT_TYPE), Some("3"), &body)
            .unwrap()
            .is_err()
    );
    let n = u32::try_from(items.len()).unwrap();
    let out = e.serve_batch(batched::input_bytes(&items), Duration::ZERO, n);
    // One call of t(4), which is less than four calls of t(1): batching saves time per item.
    assert!((out.compute_ms - e.batch_time(4).as_secs_f64() * 1e3).abs() < 1e-9);
    assert!(e.batch_time(4) < e.compute_time() * 4);
    let answer = batched::answer(&out, &items).unwrap();
    let parts = format::decode(&answer, 4, true).unwrap();
    for (k, p) in parts.iter().enumerate() {
        assert_eq!(p.status, 200);
        let v: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(
            (v["batch"].as_u64(), v["input_bytes"].as_u64()),
            (Some(4), Some(k as u64 + 1))
        );
    }
}
