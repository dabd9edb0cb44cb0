//! Fuzzing of what the watchdog and the emulator read from outside: the request → environment mapping of
//! classic mode (`cgi_env`, `canonical_header`: headers, method, path, query), the watchdog's environment
//! configuration (`Config::from_env`, durations, booleans, `fprocess` splitting, CPU lists, the http-mode
//! upstream URL) and the emulator's header and variable parsers. Cases: `SMILESS_FUZZ_CASES`.
use std::collections::{BTreeMap, BTreeSet};

use function_kit::emulator::{MAX_BATCH, batch_from, listen_addr, parse_time_scale};
use function_kit::watchdog::classic::{RequestMeta, canonical_header, cgi_env};
use function_kit::watchdog::config::{parse_duration, split_fprocess};
use function_kit::watchdog::process::parse_cpus;
use function_kit::watchdog::upstream::Upstream;
use function_kit::watchdog::{Config, Mode, ProcessPlan};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Uri};
use optimizer::testkit::fuzz_cases;
use proptest::prelude::*;

fn config(default: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: fuzz_cases(default),
        ..proptest::test_runner::Config::default()
    }
}

/// Values that break parsers: signs, NaN, out-of-range numbers, odd units, unicode, shell syntax.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&[
            "", " ", "0", "1", "-1", "10s", "-10s", "500ms", "1.5", "NaN", "inf", "1e999", "1e308",
            "18446744073709551616", "99999999999999999999h", "1h30m", "0x10", "true", "FALSE", "yes",
            "off", "http", "classic", "streaming", "HTTP", "http://", "http://127.0.0.1:0",
            "http://[::1]:8080/", "https://x", "http://user@:99999", "cat", "env", "sh -c 'x'", "a=b cat",
            "cat | wc", "0,1", "0,,1", ",", "65536", "é", "🦀", "\t",
        ][..]).prop_map(str::to_owned),
        2 => "[ -~]{0,16}",
        1 => any::<String>(),
    ]
}

/// Header names as a client may send them (any token bytes), and values (any bytes a header may hold).
fn headers() -> impl Strategy<Value = HeaderMap> {
    let name = prop_oneof![
        prop::sample::select(
            &[
                "content-type",
                "content-length",
                "transfer-encoding",
                "x-call-id",
                "x-smiless-batch",
                "host"
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 1..24),
        "[!#$%&'*+.^_`|~0-9a-zA-Z-]{1,24}".prop_map(String::into_bytes),
    ];
    let value = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        prop::sample::select(&["chunked", " 12 ", "-1", "abc", "é"][..])
            .prop_map(|s| s.as_bytes().to_vec()),
    ];
    prop::collection::vec((name, value), 0..8).prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(&n), HeaderValue::from_bytes(&v)) {
                map.append(n, v);
            }
        }
        map
    })
}

/// Request targets: origin forms with arbitrary path and query characters a URI may carry.
fn target() -> impl Strategy<Value = Uri> {
    prop_oneof![
        "/[-a-zA-Z0-9._~%!$&'()*+,;=:@/]{0,30}(\\?[-a-zA-Z0-9._~%!$&'()*+,;=:@/?]{0,30})?",
        any::<String>(),
    ]
    .prop_filter_map("a parseable request target", |s| s.parse::<Uri>().ok())
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(
            &[
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::HEAD
            ][..]
        ),
        "[A-Z]{1,10}".prop_filter_map("a method token", |m| Method::from_bytes(m.as_bytes()).ok()),
    ]
}

proptest! {
    #![proptest_config(config(1000))]

    /// The classic mapping: one `Http_*` variable per header name (Transfer-Encoding aside), names an
    /// environment can hold (no `=`, no NUL, no `-`), values without NUL, and the fixed variables present.
    #[test]
    fn request_to_environment(h in headers(), uri in target(), m in method()) {
        let meta = RequestMeta { method: &m, path: uri.path(), query: uri.query(), headers: &h };
        let env = cgi_env(&meta);
        for (k, v) in &env {
            prop_assert!(k.starts_with("Http_"), "{k}");
            prop_assert!(!k.contains(['=', '\0', '-']), "{k:?}");
            prop_assert!(!v.contains('\0'), "{k}={v:?}");
        }
        let names: BTreeSet<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        let header_vars = h.keys().filter(|n| *n != hyper::header::TRANSFER_ENCODING).count();
        // Header variables plus Method and the two content lengths, plus Query/Path/Transfer_Encoding when set.
        let extra = usize::from(uri.query().is_some_and(|q| !q.is_empty()))
            + usize::from(!uri.path().is_empty())
            + usize::from(h.contains_key(hyper::header::TRANSFER_ENCODING));
        prop_assert_eq!(env.len(), header_vars + 3 + extra);
        prop_assert!(names.contains("Http_Method"));
        prop_assert_eq!(env.iter().find(|(k, _)| k == "Http_Method").map(|(_, v)| v.as_str()), Some(m.as_str()));
    }

    /// Go's canonical form: only the case of ASCII letters changes.
    #[test]
    fn canonical_header_only_changes_case(name in any::<String>()) {
        let c = canonical_header(&name);
        prop_assert_eq!(c.chars().count(), name.chars().count());
        prop_assert_eq!(c.to_ascii_lowercase(), name.to_ascii_lowercase());
    }

    /// Any environment: a configuration or a configuration error, and what is accepted is consistent.
    #[test]
    fn watchdog_environment(pairs in prop::collection::vec((prop::sample::select(&[
        "fprocess", "mode", "upstream_url", "port", "exec_timeout", "read_timeout", "write_timeout",
        "write_debug", "combine_output", "content_type", "max_inflight", "suppress_lock", "cgi_headers",
        "ready_path", "SMILESS_BIND",
    ][..]), hostile()), 0..10)) {
        let env: BTreeMap<String, String> = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        match Config::from_env(&env) {
            Ok(cfg) => {
                prop_assert!(!cfg.fprocess.is_empty());
                if let Mode::Http { upstream_url } = &cfg.mode {
                    prop_assert!(!upstream_url.ends_with('/') || upstream_url.is_empty());
                }
                prop_assert_ne!(cfg.max_inflight, Some(0));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn durations(v in hostile()) {
        if let Some(d) = parse_duration(&v) {
            let t = v.trim();
            if let Ok(secs) = t.parse::<f64>() {
                prop_assert!(secs >= 0.0 && (d.as_secs_f64() - secs).abs() <= secs * 1e-9 + 1e-9, "{v:?} -> {d:?}");
            }
        }
    }

    /// `fprocess` splitting: a direct command has no shell syntax left in it; anything else runs in a shell.
    #[test]
    fn fprocess_splitting(v in hostile()) {
        match split_fprocess(&v) {
            Ok(ProcessPlan::Direct { program, args }) => {
                prop_assert!(!program.is_empty() && !program.contains('='));
                for w in std::iter::once(&program).chain(&args) {
                    prop_assert!(!w.contains(|c: char| c.is_whitespace() || "|&;<>()$`\\\"'*?[#~".contains(c)), "{w:?} from {v:?}");
                }
            }
            Ok(ProcessPlan::Shell(s)) => prop_assert_eq!(s.as_str(), v.trim()),
            Err(_) => prop_assert!(v.trim().is_empty()),
        }
    }

    #[test]
    fn emulator_inputs(v in hostile()) {
        let b = batch_from(Some(&v));
        prop_assert!((1..=MAX_BATCH).contains(&b));
        if let Ok(s) = parse_time_scale(Some(&v)) {
            prop_assert!(s.is_finite() && s > 0.0);
        }
        let base: std::net::SocketAddr = ([127, 0, 0, 1], 8080).into();
        if let Ok(a) = listen_addr(base, Some(&v)) {
            prop_assert_eq!(a.ip(), base.ip());
        }
        if let Ok(cpus) = parse_cpus(&v) {
            prop_assert!(!cpus.is_empty());
        }
    }

    /// The http-mode upstream URL: accepted only as an http URL with a host.
    #[test]
    fn upstream_urls(v in prop_oneof![hostile(), "http://[a-z0-9.:@\\[\\]%-]{0,20}(/[a-z]{0,4})?"]) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let _guard = rt.enter();
        if Upstream::new(&v).is_ok() {
            let uri: Uri = v.parse().map_err(|_| TestCaseError::fail("accepted an unparseable URL"))?;
            prop_assert_eq!(uri.scheme_str(), Some("http"));
            prop_assert!(uri.host().is_some());
        }
    }
}
