//! Invoking a DAG as `/function/<dag>` (DESIGN §4): the entry gets the request body, every other member
//! starts as soon as all its predecessors are done (successors run concurrently), a member with several
//! predecessors gets a JSON object `{pred_name: pred_output, …}` (an output that is JSON is embedded as
//! JSON, anything else as a string), and the response is the sink's output (several sinks: an object of
//! their outputs). A failing member fails the request with a 5xx whose body names it.
//!
//! Members are called replica-direct (not through the proxy route), scaled from zero like the proxy does,
//! on the proxy's per-worker connection pool and with its retry rule ([`deliver`]): a member call that
//! no replica saw goes to another one; one that was sent is never replayed. A member the plan batches
//! (and that declares batching) is called through its gatherer ([`batch`]).
mod batch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use http_body_util::{Either, Full};

use crate::dag::{DagEntry, DagState};
use crate::events::{CallGuard, RequestGuard};
use crate::proxy::Pool;
use crate::proxy::deliver::{self, DeliverError};
use crate::state::AppState;

/// A member's output.
#[derive(Debug, Clone)]
struct Output {
    body: Bytes,
    content_type: Option<String>,
}

/// When one member's call of a DAG request ran, in ms from the request's start (real time): for the log
/// line that explains a request over its SLA.
#[derive(Debug, Clone, Default)]
struct Step {
    /// Called (all predecessors done).
    called_ms: f64,
    /// A ready replica found (after a scale-from-zero or a pre-warm's initialisation).
    ready_ms: f64,
    /// Answered.
    done_ms: f64,
    /// Scaled from zero for this call.
    cold: bool,
    /// It had replicas but none ready: it waited for one initialising (a pre-warm, a scale-up).
    waited: bool,
}

/// Why a member failed.
#[derive(Debug)]
struct MemberError {
    status: StatusCode,
    message: String,
}

/// The DAG called `name` in `ns` (any state), when there is one. Called only when no function has that
/// name, so the proxy's hot path never pays for it.
pub fn lookup(state: &AppState, ns: &str, name: &str) -> Option<Arc<DagEntry>> {
    state.dags.current(&state.catalog).get(ns, name).cloned()
}

fn plain(status: StatusCode, msg: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("X-OpenFaaS-Internal", "smiless-dag"))
        .content_type("text/plain; charset=utf-8")
        .body(msg)
}

/// Serves one DAG request.
pub async fn serve(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    entry: Arc<DagEntry>,
) -> HttpResponse {
    let (ns, name) = (entry.namespace.clone(), entry.name.clone());
    let Some(pool) = req.app_data::<std::rc::Rc<Pool>>().cloned() else {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "proxy client missing".into(),
        );
    };
    let dag = match (&entry.state, &entry.dag) {
        (DagState::Ready, Some(d)) => d.clone(),
        (DagState::Pending { reason } | DagState::Invalid { reason }, _) => {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("DAG {name} is not ready: {reason}"),
            );
        }
        (DagState::Ready, None) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("DAG {name} has no graph"),
            );
        }
    };
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(c) if body.len() + c.len() <= state.max_body_bytes => body.extend_from_slice(&c),
            Ok(_) => {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body over {} bytes", state.max_body_bytes),
                );
            }
            Err(e) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {e}"),
                );
            }
        }
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let call_id = req
        .headers()
        .get("x-call-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(crate::proxy::uuid_v4, str::to_owned);

    let start = Instant::now();
    state.dags.live.arrival(&ns, &name);
    // Reports the arrival to the control loop; on every way out, the members never reached.
    let mut request = state
        .dags
        .events
        .request(&(ns.clone(), name.clone()), dag.len());
    let mut steps = vec![None; dag.len()];
    let result = run(
        &state,
        &pool,
        &dag,
        &mut request,
        body.freeze(),
        content_type,
        &call_id,
        start,
        &mut steps,
    )
    .await;
    drop(request);
    let e2e_ms = start.elapsed().as_secs_f64() * 1e3;
    state
        .dags
        .live
        .finished(&ns, &name, e2e_ms, result.is_ok(), dag.sla_s);
    let scale = state.dags.live.time_scale;
    if let Some(sla) = dag.sla_s.filter(|sla| e2e_ms > sla * 1e3 * scale) {
        tracing::info!(
            "DAG {name} request {call_id} took {:.3} s, over its {sla} s SLA (profile time); members \
             (called +s / waited for a replica s / ran s): {}",
            e2e_ms / 1e3 / scale,
            timeline(&dag, &steps, scale)
        );
    } else {
        tracing::debug!(
            "DAG {name} request {call_id} took {:.3} s (profile time); members: {}",
            e2e_ms / 1e3 / scale,
            timeline(&dag, &steps, scale)
        );
    }
    match result {
        Ok(out) => {
            let mut r = HttpResponse::Ok();
            r.insert_header(("X-Call-Id", call_id))
                .insert_header(("X-Smiless-Dag", name))
                .insert_header(("X-Duration-Seconds", format!("{:.6}", e2e_ms / 1e3)));
            if let Some(ct) = out.content_type {
                r.content_type(ct);
            }
            r.body(out.body)
        }
        Err(e) => {
            // A failed DAG request is rare and worth a line an operator sees at the default level.
            tracing::warn!(
                "DAG {name} request {call_id} failed ({}): {}",
                e.status.as_u16(),
                e.message
            );
            plain(e.status, e.message)
        }
    }
}

/// `name +called/waited/ran[ cold][ waited]` per member that was called, in profile seconds.
fn timeline(dag: &optimizer::Dag, steps: &[Option<Step>], scale: f64) -> String {
    let s = |ms: f64| ms / 1e3 / scale;
    steps
        .iter()
        .enumerate()
        .filter_map(|(i, st)| {
            let st = st.as_ref()?;
            Some(format!(
                "{} +{:.2}/{:.2}/{:.2}{}{}",
                dag.nodes[i].name,
                s(st.called_ms),
                s(st.ready_ms - st.called_ms),
                s(st.done_ms - st.ready_ms),
                if st.cold { " cold" } else { "" },
                if st.waited { " waited" } else { "" }
            ))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the graph: each node as soon as its predecessors are done. A member's failure returns at once;
/// the calls still in flight are dropped, and their guards report their end.
#[allow(clippy::too_many_arguments)]
async fn run<'e>(
    state: &web::Data<AppState>,
    pool: &std::rc::Rc<Pool>,
    dag: &optimizer::Dag,
    request: &mut RequestGuard<'e>,
    body: Bytes,
    content_type: Option<String>,
    call_id: &str,
    start: Instant,
    steps: &mut [Option<Step>],
) -> Result<Output, MemberError> {
    let n = dag.len();
    let mut waiting: Vec<usize> = dag.pred.iter().map(Vec::len).collect();
    let mut outputs: Vec<Option<Output>> = vec![None; n];
    let mut running = FuturesUnordered::new();
    let first = Output { body, content_type };
    running.push(call_node(
        state,
        pool,
        dag,
        dag.entry,
        request.call(dag.entry),
        first,
        call_id,
        start,
    ));
    while let Some((i, res, step)) = running.next().await {
        steps[i] = Some(step);
        let out = res.map_err(|e| MemberError {
            status: e.status,
            message: format!("DAG {}: {}", dag.name, e.message),
        })?;
        outputs[i] = Some(out);
        for &j in &dag.succ[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                let input = input_of(dag, j, &outputs);
                running.push(call_node(
                    state,
                    pool,
                    dag,
                    j,
                    request.call(j),
                    input,
                    call_id,
                    start,
                ));
            }
        }
    }
    let sinks: Vec<usize> = dag.sinks().collect();
    match sinks.as_slice() {
        [s] => outputs[*s].take().ok_or_else(|| missing(dag, *s)),
        _ => Ok(Output {
            body: Bytes::from(join(dag, &sinks, &outputs)),
            content_type: Some("application/json".into()),
        }),
    }
}

fn missing(dag: &optimizer::Dag, i: usize) -> MemberError {
    MemberError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!(
            "DAG {}: member {} produced no output",
            dag.name, dag.nodes[i].name
        ),
    }
}

/// A node's input: its only predecessor's output as is, or a JSON object of all of them.
fn input_of(dag: &optimizer::Dag, j: usize, outputs: &[Option<Output>]) -> Output {
    match dag.pred[j].as_slice() {
        [p] => outputs[*p].clone().unwrap_or(Output {
            body: Bytes::new(),
            content_type: None,
        }),
        preds => Output {
            body: Bytes::from(join(dag, preds, outputs)),
            content_type: Some("application/json".into()),
        },
    }
}

/// `{name: output}` over `nodes`; a JSON output is embedded as JSON, anything else as a string.
fn join(dag: &optimizer::Dag, nodes: &[usize], outputs: &[Option<Output>]) -> Vec<u8> {
    let mut m = BTreeMap::new();
    for &p in nodes {
        let body = outputs[p]
            .as_ref()
            .map(|o| o.body.clone())
            .unwrap_or_default();
        let v = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&body).into_owned())
        });
        m.insert(dag.nodes[p].name.clone(), v);
    }
    serde_json::to_vec(&m).unwrap_or_default()
}

/// Calls member `i`; `guard` reports the call's end however it ends (answered, failed, dropped).
#[allow(clippy::too_many_arguments)]
async fn call_node(
    state: &web::Data<AppState>,
    pool: &std::rc::Rc<Pool>,
    dag: &optimizer::Dag,
    i: usize,
    guard: CallGuard<'_>,
    input: Output,
    call_id: &str,
    start: Instant,
) -> (usize, Result<Output, MemberError>, Step) {
    let f = &dag.nodes[i].name;
    let mut step = Step {
        called_ms: start.elapsed().as_secs_f64() * 1e3,
        ..Step::default()
    };
    let cap = batch::cap(state, dag, i);
    let r = if cap > 1 {
        // The batch call reports its end, once for all its requests.
        guard.into_batch();
        let r = batch::submit(state, dag, i, cap, input).await;
        step.ready_ms = step.called_ms;
        r
    } else {
        let r = call(state, pool, dag, f, input, call_id, start, &mut step).await;
        drop(guard);
        r
    };
    step.done_ms = start.elapsed().as_secs_f64() * 1e3;
    (i, r, step)
}

/// Calls one member: scale from zero when needed, wait for a ready replica, POST the input.
#[allow(clippy::too_many_arguments)]
async fn call(
    state: &web::Data<AppState>,
    pool: &std::rc::Rc<Pool>,
    dag: &optimizer::Dag,
    f: &str,
    input: Output,
    call_id: &str,
    start: Instant,
    step: &mut Step,
) -> Result<Output, MemberError> {
    let ns = &dag.namespace;
    let fail = |status, message: String| MemberError {
        status,
        message: format!("member {f} failed: {message}"),
    };
    let Some(rec) = state.catalog.function(ns, f) else {
        return Err(fail(StatusCode::SERVICE_UNAVAILABLE, "not deployed".into()));
    };
    // Observed times for the online profile refresh (control::refresh): cold from the scale-up.
    let (started, cold) = (Instant::now(), rec.replicas == 0);
    // Ended on every path: an early return drops it without a sample.
    let call = state.dags.live.refresh.calls.begin();
    step.cold = cold;
    if rec.replicas == 0 {
        state.dags.live.cold_start(ns, &dag.name);
        if let Err(e) = state.scale(ns, f, 1).await {
            return Err(fail(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot scale from zero: {e}"),
            ));
        }
    }
    let deadline = tokio::time::Instant::now() + state.read_timeout;
    let Some(addr) =
        crate::backend::wait_endpoint(state.backend.as_ref(), ns, f, deadline, || true).await
    else {
        return Err(fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "no ready replica".into(),
        ));
    };
    step.ready_ms = start.elapsed().as_secs_f64() * 1e3;
    // A replica that was still initialising when the call came (a pre-warm, a scale-up): the call
    // waited for it, so its time may include initialisation.
    step.waited = !cold && step.ready_ms - step.called_ms > 1.0;
    let mut b = hyper::Request::builder()
        .method(hyper::Method::POST)
        .uri("/")
        .header("x-call-id", call_id);
    if let Some(ct) = &input.content_type {
        b = b.header("content-type", ct);
    }
    let up = b
        .body(Either::Left(Full::new(input.body)))
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let posted = Instant::now();
    let to = deliver::Target {
        backend: state.backend.as_ref(),
        namespace: ns,
        name: f,
    };
    let (parts, resp) = match deliver::deliver(pool, to, addr, up, deadline, || true).await {
        Ok(r) => r,
        Err(e @ DeliverError::Unreachable(_)) => {
            return Err(fail(StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
        }
        Err(DeliverError::Failed(e)) => {
            return Err(fail(
                StatusCode::BAD_GATEWAY,
                format!("cannot reach its replica: {e}"),
            ));
        }
        Err(DeliverError::TimedOut) => {
            return Err(fail(StatusCode::GATEWAY_TIMEOUT, "timed out".into()));
        }
    };
    let status = parts.status;
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Bounded like a request body: a member cannot make the provider buffer without limit.
    let limit = state.max_body_bytes;
    let body = read_limited(resp, limit).await.map_err(|e| {
        let why = match e {
            None => format!("its response is over {limit} bytes (SMILESS_MAX_BODY)"),
            Some(e) => format!("reading its response: {e}"),
        };
        fail(StatusCode::BAD_GATEWAY, why)
    })?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        return Err(fail(
            StatusCode::BAD_GATEWAY,
            format!("HTTP {}: {}", status.as_u16(), text.trim()),
        ));
    }
    let live = &state.dags.live;
    if call.alone() {
        let scale = live.time_scale;
        if cold {
            live.refresh
                .observe(ns, f, started.elapsed().as_secs_f64(), true, scale);
        }
        // The POST alone is an inference sample when the replica was initialised before it took the call:
        // a warm replica, or an emulator replica, which the local runtime routes to only once initialised
        // (warmed up in classic mode, listening in http mode); a cold or pre-warmed replica of another
        // function may pay or wait for its initialisation on this call.
        let initialised = !(cold || step.waited)
            || function_kit::emulator::is_emulator(&rec.deployment.env_process);
        if initialised {
            live.refresh
                .observe(ns, f, posted.elapsed().as_secs_f64(), false, scale);
        }
    }
    Ok(Output { body, content_type })
}

/// A response body read whole, up to `limit` bytes; `Err(None)` past the limit.
async fn read_limited(
    mut body: crate::proxy::PooledBody,
    limit: usize,
) -> Result<Bytes, Option<hyper::Error>> {
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(Some)?;
        if buf.len() + chunk.len() > limit {
            return Err(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
