//! `e2e/gpu-check.sh` without a GPU: its "no GPU found" exit, and its `--cpu-dry-run`, which runs the
//! whole flow (co-runner, measurements per share, fit, markdown and JSON report) on the CPU emulation.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/gpu-check.sh")
}

fn check(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("bash");
    c.arg(script())
        .args(["--smiless", env!("CARGO_BIN_EXE_smiless")])
        .args(["--smiless-fn", env!("CARGO_BIN_EXE_smiless-fn")])
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn without_a_gpu_the_check_says_so_and_exits_non_zero() {
    // An empty CUDA_VISIBLE_DEVICES hides every device, so this path is the same on a GPU host.
    let o = check(&[], &[("CUDA_VISIBLE_DEVICES", "")]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("gpu-check: no GPU found"), "{}", text(&o));
    assert!(!err.contains("panicked"), "{}", text(&o));
}

#[test]
fn the_cpu_dry_run_measures_fits_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("gpu.md");
    std::fs::write(&doc, "# GPU\n\nhand-written text stays\n").unwrap();
    let out = dir.path().join("out");
    let o = check(
        &["--cpu-dry-run", "--doc", doc.to_str().unwrap()],
        &[("OUT", out.to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", text(&o));

    let md = std::fs::read_to_string(&doc).unwrap();
    assert!(md.starts_with("# GPU\n\nhand-written text stays\n"), "{md}");
    assert!(
        md.contains(function_kit::gpu::report::BEGIN)
            && md.contains(function_kit::gpu::report::END)
    );
    for share in [10, 30, 50, 100] {
        for label in ["alone", "corun"] {
            assert!(md.contains(&format!("| {label} | {share} | 5 |")), "{md}");
        }
    }
    assert!(md.contains("Fit of `t = a/share + c`"), "{md}");
    assert!(
        md.contains("engine: `cpu`") && md.contains("not used (CPU dry run)"),
        "{md}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("gpu-check.json")).unwrap())
            .unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    for r in rows {
        let share = r["share_pct"].as_f64().unwrap() / 100.0;
        // The script's model (a = 40 ms, b + c = 6 ms) at its dry-run time scale 0.05.
        let model = 0.05 * (40.0 / share + 6.0);
        assert!(
            (r["model_ms"].as_f64().unwrap() - model).abs() < 1e-6,
            "{r}"
        );
        // The CPU emulation busies at least the model's time for every request.
        assert!(r["min_ms"].as_f64().unwrap() >= model * 0.999, "{r}");
        assert!(r["fit_ms"].as_f64().unwrap() > 0.0, "{r}");
    }
    for cond in ["alone", "corun"] {
        let f = &json["fits"][cond];
        assert!(f["a_ms"].as_f64().unwrap() > 0.0, "{f}");
        assert_eq!(f["points"], 4);
    }
    assert_eq!(json["engine"], "cpu");
    // The raw measurements come back too.
    let lines = std::fs::read_to_string(out.join("gpu-check-measurements.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 8);
}
