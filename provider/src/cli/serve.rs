//! `smiless serve`: the OpenFaaS provider on the local backend (child processes) or on Kubernetes.
//!
//! Start-up order keeps `/healthz` fast: open the catalog (one small file), create the runtime, bind,
//! and restore the persisted functions in the background while already serving.
use std::sync::Arc;

use actix_web::{HttpServer, web};
use anyhow::Context;

use backend_kube::KubeBackend;
use backend_local::local::LocalBackend;
use backend_local::runtime::{Runtime, RuntimeConfig};
use contract::api::{self, AppState};
use contract::backend::Backend;
use contract::catalog::Catalog;
use contract::config::{Config, ServeArgs};

/// Which backend runs the functions.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BackendKind {
    /// Child processes on this machine (`smiless watchdog` per replica).
    Local,
    /// A Deployment and a Service per function on a Kubernetes cluster (KUBECONFIG, ~/.kube/config or
    /// the pod's service account).
    Kubernetes,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  smiless serve                                   # 127.0.0.1:8081, state in ~/.local/share/smiless
  smiless serve --port 8081 --state-dir /var/lib/smiless --read-timeout 1m5s
  basic_auth=true secret_mount_path=/var/secrets smiless serve --bind 0.0.0.0   # reachable, with auth
  KUBECONFIG=~/.kube/config smiless serve --backend kubernetes --state-dir /var/lib/smiless

The first line on stdout is `smiless: listening on ADDR` (useful with --port 0).")]
pub struct Args {
    #[command(flatten)]
    pub config: ServeArgs,
    /// The backend.
    #[arg(long, value_enum, default_value = "local", env = "SMILESS_BACKEND")]
    pub backend: BackendKind,
    #[command(flatten)]
    pub kube: backend_kube::KubeArgs,
    /// The control loop's policy: smiless, always-on, or keepalive:<duration> (OpenFaaS' fixed
    /// scale-to-zero window, profile time), for comparisons on the same machine.
    #[arg(long, env = control::policy::ENV_POLICY, default_value = "smiless")]
    pub policy: control::LivePolicy,
    /// The load estimate the planner gets: recent (the simulator's recent-window estimator, the default)
    /// or forecaster (the predictor's hybrid histogram, then its LSTM). The forecaster is scored either way.
    #[arg(long, env = control::estimator::ENV_ESTIMATOR, default_value = "recent")]
    pub estimator: control::EstimatorKind,
    /// CPU overcommit factor (≥ 1) of the capacity every DAG is planned against jointly: the plans'
    /// summed requests may reach this many times the allocatable cores (the host's, or each node's).
    /// 1 (the default) never requests more cores than there are; above 1 trades latency for fitting.
    #[arg(long, env = control::ENV_OVERCOMMIT, default_value_t = 1.0)]
    pub overcommit: f64,
}

/// How long [`restore`] watches for the restored functions to serve, to report it.
const RESTORE_REPORT_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Restores the persisted desired state in the backend (after a restart, including after kill -9), then
/// logs how long after `started` every restored function with replicas had one serving: the restart's
/// outage as the provider sees it (docs/local-backend.md, "Restart").
async fn restore(catalog: Arc<Catalog>, backend: Arc<dyn Backend>, started: std::time::Instant) {
    let all = catalog.all_functions();
    for rec in &all {
        if let Err(e) = backend.deploy(rec).await {
            tracing::error!("cannot restore {}.{}: {e}", rec.name(), rec.namespace());
        }
    }
    let deployed = started.elapsed();
    let wanted: Vec<_> = all.iter().filter(|r| r.replicas > 0).collect();
    if wanted.is_empty() {
        return;
    }
    let limit = tokio::time::Instant::now() + RESTORE_REPORT_LIMIT;
    while !wanted
        .iter()
        .all(|r| backend.status(r.namespace(), r.name()).available > 0)
    {
        if tokio::time::Instant::now() >= limit {
            tracing::warn!(
                "restore: not every restored function serves {} s after start",
                RESTORE_REPORT_LIMIT.as_secs()
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tracing::info!(
        "restore: {} functions deployed {} ms after start; every one serving {} ms after start",
        all.len(),
        deployed.as_millis(),
        started.elapsed().as_millis()
    );
}

/// Kubernetes start-up: import the cluster's functions into the catalog (until the API server answers),
/// then restore the catalog into the cluster.
async fn take_over(catalog: Arc<Catalog>, kube: KubeBackend) {
    let mut warned = false;
    loop {
        match kube.import(&catalog).await {
            Ok(n) => {
                tracing::info!(
                    "kubernetes: imported {} namespaces, {} functions, {} secrets from the cluster",
                    n.namespaces,
                    n.functions,
                    n.secrets
                );
                break;
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(
                        "kubernetes: cannot import the cluster's state yet (retrying): {e}"
                    );
                    warned = true;
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }
    restore(catalog, Arc::new(kube), std::time::Instant::now()).await;
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let given_bind = args.config.bind;
    let mut config = Config::try_from(args.config)?;
    config.bind = contract::config::listen_address(
        given_bind,
        matches!(args.backend, BackendKind::Local),
        config.credentials.is_some(),
    )?;
    let catalog = Arc::new(
        Catalog::open(
            &config.state_dir,
            &config.default_namespace,
            &config.namespaces,
            config.max_replicas,
        )
        .with_context(|| format!("opening the catalog in {}", config.state_dir.display()))?,
    );
    // Process supervision runs on its own small runtime, apart from the HTTP workers.
    let backend_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("smiless-backend")
        .enable_all()
        .build()?;
    let backend: Arc<dyn Backend> = match args.backend {
        BackendKind::Local => {
            let _guard = backend_rt.enter();
            let rt = Runtime::new(RuntimeConfig {
                exe: std::env::current_exe().context("locating the smiless binary")?,
                work_dir: config.state_dir.join("run"),
            })?;
            Arc::new(
                LocalBackend::new(rt, catalog.secrets_root(), config.read_timeout).with_gpu(
                    function_kit::gpu::local::LocalGpu::discover(&config.state_dir),
                ),
            )
        }
        BackendKind::Kubernetes => {
            let kube = backend_rt
                .block_on(KubeBackend::connect(
                    &args.kube,
                    catalog.secrets_root(),
                    &config.default_namespace,
                ))
                .context("starting the kubernetes backend")?;
            // Learn what the cluster already runs, then apply the catalog (retrying while the API
            // server is unreachable), so neither side's functions are lost.
            backend_rt.spawn(take_over(Arc::clone(&catalog), kube.clone()));
            Arc::new(kube)
        }
    };
    if matches!(args.backend, BackendKind::Local) {
        backend_rt.spawn(restore(Arc::clone(&catalog), Arc::clone(&backend), started));
    }
    let state = web::Data::new(AppState::new(
        Arc::clone(&catalog),
        Arc::clone(&backend),
        &config,
    ));
    // The DAG control loop (every second: observe, plan, scale, pre-warm).
    backend_rt.spawn(control::run_with(
        state.clone().into_inner(),
        args.policy,
        args.estimator,
        args.overcommit,
    ));

    let result = actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || api::app(state.clone()))
            .workers(config.workers)
            .backlog(4096)
            .client_request_timeout(config.read_timeout)
            .bind((config.bind, config.port))
            .with_context(|| format!("binding {}:{}", config.bind, config.port))?;
        for addr in server.addrs() {
            println!("smiless: listening on {addr}");
        }
        tracing::info!("state in {}", config.state_dir.display());
        server.run().await.context("serving")
    });
    backend_rt.block_on(backend.shutdown());
    result
}
