//! Provider configuration: clap flags that also read faas-netes' environment names (contract §1, §5.3),
//! so the chart's env block and faasd-style setups work unchanged.
//!
//! Environment names that faas-netes reads but that mean nothing on the local backend (`http_probe`,
//! `set_nonroot_user`, `image_pull_policy`, `readiness_probe_*`, `liveness_probe_*`, `cluster_role`,
//! `profiles_namespace`) are accepted simply by not being rejected.
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Errors in the configuration; shown at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "invalid duration {0:?}: expected an integer number of seconds or a Go duration like 1m5s"
    )]
    Duration(String),
    #[error("no state directory: set --state-dir, XDG_DATA_HOME or HOME")]
    NoStateDir,
    #[error("basic_auth=true but {path} cannot be read: {source}")]
    AuthFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("basic_auth=true but {0} is empty")]
    EmptyAuthFile(PathBuf),
    #[error("invalid namespace {0:?} (must be a DNS-1123 label)")]
    Namespace(String),
    #[error(
        "refusing to listen on {0} without basic auth: on the local backend every deployment runs its \
         process on this host, so anyone who can reach the port could run commands here. Set \
         basic_auth=true and secret_mount_path=DIR (files basic-auth-user and basic-auth-password, the \
         gateway's credentials), or bind 127.0.0.1 (the default) and put the gateway on this host"
    )]
    InsecureBind(IpAddr),
    #[error("SMILESS_PRICES / --prices {path}: {message}")]
    Prices { path: PathBuf, message: String },
}

/// `smiless serve` flags. Each long flag also reads the faas-netes environment variable named beside it.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TCP port of the provider API (env `port`).
    #[arg(long, env = "port", default_value_t = 8081)]
    pub port: u16,
    /// Address to bind [default: 127.0.0.1 on the local backend, 0.0.0.0 (every address of the pod) on
    /// Kubernetes]. The local backend refuses an address other than loopback without basic auth: a
    /// deployment runs its process on this host, so an open port would let anyone run commands here.
    #[arg(long, env = "SMILESS_BIND")]
    pub bind: Option<IpAddr>,
    /// Read timeout; also the proxy's upstream timeout and the wait for a ready replica.
    /// An integer means seconds, otherwise a Go duration (env `read_timeout`).
    #[arg(long, env = "read_timeout", default_value = "10s", value_parser = parse_go_duration)]
    pub read_timeout: Duration,
    /// Write timeout; bounds `follow=true` log streams (env `write_timeout`).
    #[arg(long, env = "write_timeout", default_value = "10s", value_parser = parse_go_duration)]
    pub write_timeout: Duration,
    /// HTTP basic auth on the protected routes; only the exact string "true" enables it (env `basic_auth`).
    #[arg(long, env = "basic_auth", default_value = "false")]
    pub basic_auth: String,
    /// Directory holding `basic-auth-user` and `basic-auth-password` (env `secret_mount_path`).
    #[arg(long, env = "secret_mount_path", default_value = "/run/secrets/")]
    pub secret_mount_path: PathBuf,
    /// The default function namespace (env `function_namespace`).
    #[arg(long, env = "function_namespace", default_value = "openfaas-fn")]
    pub function_namespace: String,
    /// Extra namespaces that exist from the start, comma-separated (env `SMILESS_NAMESPACES`).
    #[arg(long, env = "SMILESS_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Idle keep-alive connections the proxy keeps in total (env `max_idle_conns`).
    #[arg(long, env = "max_idle_conns", default_value_t = 1024)]
    pub max_idle_conns: usize,
    /// Idle keep-alive connections the proxy keeps per replica (env `max_idle_conns_per_host`).
    #[arg(long, env = "max_idle_conns_per_host", default_value_t = 1024)]
    pub max_idle_conns_per_host: usize,
    /// Where the catalog (functions, secrets, namespaces) is persisted
    /// [default: $XDG_DATA_HOME/smiless, else ~/.local/share/smiless].
    #[arg(long, env = "SMILESS_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Prices the planner minimises: a JSON file `{"cpu_core_hour": 0.034, "gpu_hour": 3.06}` ($ per
    /// CPU core-hour and per whole-GPU-hour; a GPU share costs its fraction). Default: the SMIless
    /// paper's AWS prices. `GET /system/plan` shows the prices in force.
    #[arg(long, env = "SMILESS_PRICES")]
    pub prices: Option<PathBuf>,
    /// Largest replica count a function may ask for.
    #[arg(long, env = "SMILESS_MAX_REPLICAS", default_value_t = 64)]
    pub max_replicas: u32,
    /// Largest request body the API accepts, in bytes (bigger → 413).
    #[arg(long, env = "SMILESS_MAX_BODY", default_value_t = 4 << 20)]
    pub max_body_bytes: usize,
    /// HTTP worker threads [default: number of CPUs].
    #[arg(long, env = "SMILESS_WORKERS")]
    pub workers: Option<usize>,
}

/// Basic-auth credentials read from `secret_mount_path` (contract §3).
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub bind: IpAddr,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub credentials: Option<Credentials>,
    pub default_namespace: String,
    pub namespaces: Vec<String>,
    pub max_idle_conns_per_host: usize,
    pub state_dir: PathBuf,
    pub max_replicas: u32,
    pub max_body_bytes: usize,
    pub workers: usize,
    /// The prices the control loop plans and bills with.
    pub prices: optimizer::Prices,
}

impl Config {
    /// A configuration for in-process tests and benchmarks: no auth, short timeouts.
    pub fn for_tests(state_dir: PathBuf) -> Self {
        Config {
            port: 0,
            bind: IpAddr::from([127, 0, 0, 1]),
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            credentials: None,
            default_namespace: "openfaas-fn".into(),
            namespaces: Vec::new(),
            max_idle_conns_per_host: 1024,
            state_dir,
            max_replicas: 64,
            max_body_bytes: 4 << 20,
            workers: 1,
            prices: optimizer::Prices::default(),
        }
    }
}

impl TryFrom<ServeArgs> for Config {
    type Error = ConfigError;

    fn try_from(a: ServeArgs) -> Result<Self, ConfigError> {
        let credentials = if a.basic_auth == "true" {
            Some(read_credentials(&a.secret_mount_path)?)
        } else {
            None
        };
        let state_dir = match a.state_dir {
            Some(d) => d,
            None => default_state_dir().ok_or(ConfigError::NoStateDir)?,
        };
        for ns in std::iter::once(&a.function_namespace).chain(&a.namespaces) {
            if !crate::catalog::is_dns1123_label(ns) {
                return Err(ConfigError::Namespace(ns.clone()));
            }
        }
        let prices = match &a.prices {
            Some(path) => read_prices(path)?,
            None => optimizer::Prices::default(),
        };
        let workers = a.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        Ok(Config {
            port: a.port,
            bind: a.bind.unwrap_or(LOOPBACK),
            read_timeout: a.read_timeout,
            write_timeout: a.write_timeout,
            credentials,
            default_namespace: a.function_namespace,
            namespaces: a.namespaces,
            max_idle_conns_per_host: a.max_idle_conns_per_host.min(a.max_idle_conns),
            state_dir,
            max_replicas: a.max_replicas,
            max_body_bytes: a.max_body_bytes,
            workers: workers.max(1),
            prices,
        })
    }
}

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// The address to listen on: the one given, else loopback on the local backend and every address
/// (the pod's) on Kubernetes, where the gateway reaches the provider over the cluster network. A
/// local backend without basic auth may only listen on loopback (see [`ConfigError::InsecureBind`]).
pub fn listen_address(
    given: Option<IpAddr>,
    local_backend: bool,
    basic_auth: bool,
) -> Result<IpAddr, ConfigError> {
    let bind = given.unwrap_or(if local_backend {
        LOOPBACK
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    });
    if local_backend && !basic_auth && !bind.is_loopback() {
        return Err(ConfigError::InsecureBind(bind));
    }
    Ok(bind)
}

/// Reads and validates a price file (the format of `smiless plan --prices`).
pub fn read_prices(path: &std::path::Path) -> Result<optimizer::Prices, ConfigError> {
    let err = |message: String| ConfigError::Prices {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    optimizer::Prices::from_json(&text).map_err(|e| err(e.to_string()))
}

/// `$XDG_DATA_HOME/smiless`, else `~/.local/share/smiless`.
pub fn default_state_dir() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(x) = nonempty("XDG_DATA_HOME") {
        return Some(PathBuf::from(x).join("smiless"));
    }
    nonempty("HOME").map(|h| PathBuf::from(h).join(".local/share/smiless"))
}

/// Reads `basic-auth-user` and `basic-auth-password`, trimmed; a missing or empty file is fatal (§3).
pub fn read_credentials(dir: &std::path::Path) -> Result<Credentials, ConfigError> {
    let read = |file: &str| {
        let path = dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(s) if s.trim().is_empty() => Err(ConfigError::EmptyAuthFile(path)),
            Ok(s) => Ok(s.trim().to_owned()),
            Err(source) => Err(ConfigError::AuthFile { path, source }),
        }
    };
    Ok(Credentials {
        user: read("basic-auth-user")?,
        password: read("basic-auth-password")?,
    })
}

/// Go's `strconv.ParseBool`: the spellings faas-provider and OpenFaaS' labels accept.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// faas-provider's timeout rule: an integer is seconds, otherwise a Go duration (`1m5s`, `500ms`, `1.5h`).
pub fn parse_go_duration(s: &str) -> Result<Duration, ConfigError> {
    let err = || ConfigError::Duration(s.to_owned());
    let t = s.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut rest = t.strip_prefix('+').unwrap_or(t);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| err())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_faas_provider() {
        assert_eq!(parse_go_duration("65").unwrap(), Duration::from_secs(65));
        assert_eq!(parse_go_duration("1m05s").unwrap(), Duration::from_secs(65));
        assert_eq!(
            parse_go_duration("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_go_duration("1.5h").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "s", "10x", "1m5", "-5s", "abc"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn credentials_are_trimmed_and_missing_file_is_fatal() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_credentials(dir.path()).is_err());
        std::fs::write(dir.path().join("basic-auth-user"), "admin\n").unwrap();
        std::fs::write(dir.path().join("basic-auth-password"), " pw \n").unwrap();
        let c = read_credentials(dir.path()).unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("admin", "pw"));
    }

    #[test]
    fn the_listen_address_is_loopback_by_default_and_open_only_with_auth_on_the_local_backend() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // (given, local backend, basic auth) -> the address, or None for a refusal.
        let table: &[(Option<IpAddr>, bool, bool, Option<&str>)] = &[
            (None, true, false, Some("127.0.0.1")),
            (None, true, true, Some("127.0.0.1")),
            (None, false, false, Some("0.0.0.0")),
            (None, false, true, Some("0.0.0.0")),
            (ip("0.0.0.0"), true, false, None),
            (ip("192.168.1.5"), true, false, None),
            (ip("::"), true, false, None),
            (ip("0.0.0.0"), true, true, Some("0.0.0.0")),
            (ip("::1"), true, false, Some("::1")),
            (ip("127.0.0.2"), true, false, Some("127.0.0.2")),
            (ip("0.0.0.0"), false, false, Some("0.0.0.0")),
        ];
        for &(given, local, auth, want) in table {
            let got = listen_address(given, local, auth);
            match want {
                Some(w) => assert_eq!(got.unwrap(), w.parse::<IpAddr>().unwrap()),
                None => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains("basic_auth=true"), "{given:?}: {e}");
                }
            }
        }
    }

    #[test]
    fn a_price_file_is_read_and_a_bad_one_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.json");
        std::fs::write(&path, r#"{"cpu_core_hour": 0.05, "gpu_hour": 2.5}"#).unwrap();
        let p = read_prices(&path).unwrap();
        assert_eq!((p.cpu_core_hour, p.gpu_hour), (0.05, 2.5));
        for bad in [
            r#"{"cpu_core_hour": -1, "gpu_hour": 2}"#,
            "{",
            r#"{"cpu": 1}"#,
        ] {
            std::fs::write(&path, bad).unwrap();
            let e = read_prices(&path).unwrap_err().to_string();
            assert!(e.contains("prices.json"), "{bad}: {e}");
        }
        let e = read_prices(&dir.path().join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.json"), "{e}");
    }
}
