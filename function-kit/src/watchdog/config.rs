//! The watchdog's configuration, read from the OpenFaaS watchdogs' environment variable names, and the
//! splitting of `fprocess` into a program and its arguments.

use std::collections::BTreeMap;
use std::time::Duration;

use super::WatchdogError;

/// Environment variables the local runtime sets for its own use; they are not passed to `fprocess`.
pub const INTERNAL_ENV: &[&str] = &[
    ENV_PARENT_PID,
    ENV_CPUS,
    ENV_SECRETS_SRC,
    ENV_HOST_MNT_NS,
    ENV_BIND,
];
/// The pid the watchdog expects as its parent; if the parent is already gone at start, it exits.
pub const ENV_PARENT_PID: &str = "SMILESS_PARENT_PID";
/// Comma-separated cores the watchdog pins itself (and so its children) to.
pub const ENV_CPUS: &str = "SMILESS_CPUS";
/// A directory to bind read-only onto `/var/openfaas/secrets` (only inside a private mount namespace).
pub const ENV_SECRETS_SRC: &str = "SMILESS_SECRETS_SRC";
/// The provider's mount namespace (`/proc/self/ns/mnt` link text); the bind mount is refused in it.
pub const ENV_HOST_MNT_NS: &str = "SMILESS_HOST_MNT_NS";
/// The address to listen on (the local runtime uses loopback); default all interfaces, like a container.
pub const ENV_BIND: &str = "SMILESS_BIND";

/// Logged (at the end of a line on stderr) when the watchdog becomes ready, so a supervisor reading the
/// output can health-check at once instead of waiting for its next poll.
pub const READY_MARKER: &str = "smiless watchdog: ready";

/// Where a replica's secrets are visible, as in an OpenFaaS container.
pub const SECRETS_MOUNT: &str = "/var/openfaas/secrets";

/// How requests reach the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Fork `fprocess` per request (the classic watchdog; of-watchdog's `streaming`/`serializing`).
    Classic,
    /// Start `fprocess` once and forward every request to `upstream_url`.
    Http { upstream_url: String },
}

/// How to start `fprocess`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessPlan {
    /// A program and its arguments, split on whitespace like the watchdogs do.
    Direct { program: String, args: Vec<String> },
    /// The command uses shell syntax (pipes, redirections, quotes, variables…): run it with `sh -c`.
    Shell(String),
}

/// The watchdog's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub process: ProcessPlan,
    pub fprocess: String,
    pub mode: Mode,
    pub port: u16,
    pub bind: String,
    /// Per request (classic) or time to the upstream's response head (http); zero means none.
    pub exec_timeout: Duration,
    /// Time to read a request's head, and (classic) its body; zero means none.
    pub read_timeout: Duration,
    /// Time from a request's head to the response; zero means none.
    pub write_timeout: Duration,
    pub write_debug: bool,
    pub combine_output: bool,
    pub content_type: Option<String>,
    /// Requests served at once; more get 429. `None` means unlimited.
    pub max_inflight: Option<usize>,
    pub suppress_lock: bool,
    pub cgi_headers: bool,
    /// http mode: the upstream path that must answer 2xx before the replica is ready.
    pub ready_path: Option<String>,
    /// The function answers framed batch calls itself (docs/batching.md); otherwise the watchdog splits
    /// them into one request per item.
    pub batch_native: bool,
}

/// The watchdogs' default for each timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Config {
    /// Reads the configuration from environment variables (given as a map so it can be tested).
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Self, WatchdogError> {
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let fprocess = get("fprocess")
            .ok_or_else(|| WatchdogError::Config("fprocess is not set".into()))?
            .to_string();
        let process = split_fprocess(&fprocess)?;
        let mode = match get("mode").map(str::to_ascii_lowercase).as_deref() {
            None | Some("classic" | "streaming" | "serializing") => Mode::Classic,
            Some("http") => Mode::Http {
                upstream_url: get("upstream_url")
                    .ok_or_else(|| WatchdogError::Config("mode=http needs upstream_url".into()))?
                    .trim_end_matches('/')
                    .to_string(),
            },
            Some(other) => {
                return Err(WatchdogError::Config(format!(
                    "mode={other} is not supported (use http, streaming or leave unset)"
                )));
            }
        };
        let port = match get("port") {
            None => 8080,
            Some(p) => p
                .parse()
                .map_err(|_| WatchdogError::Config(format!("port={p} is not a port number")))?,
        };
        let timeout = |k: &str| match get(k) {
            None => Ok(DEFAULT_TIMEOUT),
            Some(v) => parse_duration(v).ok_or_else(|| {
                WatchdogError::Config(format!("{k}={v} is not a duration (e.g. 10s, 500ms, 10)"))
            }),
        };
        let flag = |k: &str, default: bool| match get(k) {
            None => Ok(default),
            Some(v) => parse_bool(v)
                .ok_or_else(|| WatchdogError::Config(format!("{k}={v} is not true or false"))),
        };
        let max_inflight = match get("max_inflight") {
            None => None,
            Some(v) => match v.parse::<usize>() {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(_) => {
                    return Err(WatchdogError::Config(format!(
                        "max_inflight={v} is not a number"
                    )));
                }
            },
        };
        Ok(Self {
            process,
            fprocess,
            mode,
            port,
            bind: get(ENV_BIND).unwrap_or("0.0.0.0").to_string(),
            exec_timeout: timeout("exec_timeout")?,
            read_timeout: timeout("read_timeout")?,
            write_timeout: timeout("write_timeout")?,
            write_debug: flag("write_debug", false)?,
            combine_output: flag("combine_output", true)?,
            content_type: get("content_type").map(str::to_string),
            max_inflight,
            suppress_lock: flag("suppress_lock", false)?,
            cgi_headers: flag("cgi_headers", true)?,
            ready_path: get("ready_path").map(str::to_string),
            batch_native: flag("batch_native", false)?,
        })
    }
}

/// Parses a watchdog duration: Go-style (`10s`, `1m30s`, `500ms`) or a bare number of seconds.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    humantime::parse_duration(v).ok()
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Characters that only mean something to a shell; a command holding any of them runs under `sh -c`.
const SHELL_SYNTAX: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', '#', '~', '\n',
];

/// Splits `fprocess` like the watchdogs do (on whitespace), unless it needs a shell.
pub fn split_fprocess(fprocess: &str) -> Result<ProcessPlan, WatchdogError> {
    let trimmed = fprocess.trim();
    let mut words = trimmed.split_whitespace();
    let Some(program) = words.next() else {
        return Err(WatchdogError::Config("fprocess is empty".into()));
    };
    // A leading `NAME=value` is a shell variable assignment, not a program.
    if trimmed.contains(SHELL_SYNTAX) || program.contains('=') {
        return Ok(ProcessPlan::Shell(trimmed.to_string()));
    }
    Ok(ProcessPlan::Direct {
        program: program.to_string(),
        args: words.map(str::to_string).collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn splits_plain_commands_on_whitespace() {
        assert_eq!(
            split_fprocess("  sha512sum  ").unwrap(),
            ProcessPlan::Direct {
                program: "sha512sum".into(),
                args: vec![]
            }
        );
        assert_eq!(
            split_fprocess("cat /var/openfaas/secrets/secret-string").unwrap(),
            ProcessPlan::Direct {
                program: "cat".into(),
                args: vec!["/var/openfaas/secrets/secret-string".into()]
            }
        );
        assert_eq!(
            split_fprocess("python3\tindex.py  --flag").unwrap(),
            ProcessPlan::Direct {
                program: "python3".into(),
                args: vec!["index.py".into(), "--flag".into()]
            }
        );
    }

    #[test]
    fn uses_a_shell_only_for_shell_syntax() {
        for cmd in [
            "cat | wc -c",
            "echo \"a b\"",
            "echo $HOME",
            "FOO=1 env",
            "ls *.txt",
            "a && b",
            "x > y",
        ] {
            assert_eq!(
                split_fprocess(cmd).unwrap(),
                ProcessPlan::Shell(cmd.into()),
                "{cmd}"
            );
        }
        assert!(split_fprocess("   ").is_err());
    }

    #[test]
    fn reads_defaults_and_overrides() {
        let c = Config::from_env(&env(&[("fprocess", "cat")])).unwrap();
        assert_eq!(c.mode, Mode::Classic);
        assert_eq!(c.port, 8080);
        assert_eq!(c.exec_timeout, DEFAULT_TIMEOUT);
        assert!(c.combine_output && c.cgi_headers && !c.write_debug && !c.suppress_lock);
        assert_eq!(c.max_inflight, None);

        let c = Config::from_env(&env(&[
            ("fprocess", "node index.js"),
            ("mode", "http"),
            ("upstream_url", "http://127.0.0.1:3000/"),
            ("port", "9000"),
            ("exec_timeout", "1m30s"),
            ("read_timeout", "5"),
            ("write_timeout", "250ms"),
            ("write_debug", "true"),
            ("combine_output", "false"),
            ("content_type", "application/json"),
            ("max_inflight", "3"),
        ]))
        .unwrap();
        assert_eq!(
            c.mode,
            Mode::Http {
                upstream_url: "http://127.0.0.1:3000".into()
            }
        );
        assert_eq!(c.port, 9000);
        assert_eq!(c.exec_timeout, Duration::from_secs(90));
        assert_eq!(c.read_timeout, Duration::from_secs(5));
        assert_eq!(c.write_timeout, Duration::from_millis(250));
        assert!(c.write_debug && !c.combine_output);
        assert_eq!(c.content_type.as_deref(), Some("application/json"));
        assert_eq!(c.max_inflight, Some(3));
    }

    #[test]
    fn rejects_bad_settings_with_a_reason() {
        for (pairs, needle) in [
            (vec![], "fprocess"),
            (vec![("fprocess", "cat"), ("mode", "http")], "upstream_url"),
            (vec![("fprocess", "cat"), ("mode", "static")], "static"),
            (vec![("fprocess", "cat"), ("port", "http")], "port"),
            (
                vec![("fprocess", "cat"), ("exec_timeout", "soon")],
                "exec_timeout",
            ),
            (
                vec![("fprocess", "cat"), ("write_debug", "maybe")],
                "write_debug",
            ),
            (
                vec![("fprocess", "cat"), ("max_inflight", "-1")],
                "max_inflight",
            ),
        ] {
            let err = Config::from_env(&env(&pairs)).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }
}
