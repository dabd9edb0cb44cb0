//! Batched members of a DAG (docs/batching.md): where the plan gives a member that declares batching
//! (`com.smiless.batch`) a batch cap B > 1, its requests are gathered and sent as one framed call, and
//! the answer's parts go back to their requests.
//!
//! One gatherer task per member ([`crate::dag::gather`] holds its queue), spawned on first use. It
//! follows the executor's rule ([`optimizer::exec::gather`]): while fewer batch calls are in flight
//! than the function has replicas (at least one), the queue is sent as soon as B requests wait or the
//! oldest has waited the gather window (in profile seconds, times the time scale). Every request gets
//! its own answer or its own error: a failed call, a wrong number of parts or a malformed answer fails
//! each request of the batch with a 502 naming the member; an item's own non-2xx status fails that
//! request alone. A request dropped while it waits (its DAG request failed elsewhere) is left out.
//!
//! Events: each request reports `Queued` as usual; a batch call reports one `CallEnded` (the executor
//! counts calls, and a call serves up to B tasks), and so does each request dropped before its batch.
//! Batch calls are not observation samples for the online profile refresh (it fits per-request times).
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::web;
use bytes::Bytes;
use function_kit::batch::{self as format, Part};
use http_body_util::{BodyExt, Full};
use optimizer::exec::gather::{self, Gather};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{MemberError, Output};
use crate::dag::gather::{Item, QUEUE_LIMIT, Reply};
use crate::events::What;
use crate::state::AppState;

thread_local! {
    // The gatherer's own pooled client, per thread (its connection tasks live on that runtime). Batch
    // calls are not retried like single member calls (`super::deliver`): docs/batching.md.
    static CLIENT: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    > = {
        let mut conn = hyper_util::client::legacy::connect::HttpConnector::new();
        conn.set_nodelay(true);
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(conn)
    };
}

/// The batch cap for member `i`: the plan's, bounded by what the member declares; 1 (no batching) when
/// it declares nothing, whatever a plan says.
pub(super) fn cap(state: &AppState, dag: &optimizer::Dag, i: usize) -> u32 {
    let Some(max) = dag.nodes.get(i).and_then(|n| n.max_batch) else {
        return 1;
    };
    state
        .dags
        .live
        .batch_of(&dag.namespace, &dag.name, &dag.nodes[i].name)
        .min(max)
}

/// Sends `input` to member `i` as part of a batch of at most `cap` requests; its own answer.
pub(super) async fn submit(
    state: &web::Data<AppState>,
    dag: &optimizer::Dag,
    i: usize,
    cap: u32,
    input: Output,
) -> Result<Output, MemberError> {
    let f = &dag.nodes[i].name;
    let fail = |status: StatusCode, message: String| MemberError {
        status,
        message: format!("member {f} failed: {message}"),
    };
    let (reply, answer) = oneshot::channel();
    let item = Item {
        part: Part::request(input.content_type, input.body),
        cap,
        queued: Instant::now(),
        reply,
    };
    let key = (dag.namespace.clone(), dag.name.clone(), i);
    let spawn = |rx| {
        tokio::spawn(gatherer(state.clone(), Arc::new(dag.clone()), i, rx));
    };
    if state.dags.gatherers.send(key, item, spawn).is_err() {
        // Reported as ended, since it never joins a call.
        end(state, dag, i);
        return Err(fail(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("its batch queue is full ({QUEUE_LIMIT} requests)"),
        ));
    }
    match answer.await {
        Ok(Ok(part)) => Ok(Output {
            body: part.body,
            content_type: part.content_type,
        }),
        Ok(Err((status, message))) => Err(fail(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            message,
        )),
        Err(_) => Err(fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "its batch gatherer ended".into(),
        )),
    }
}

/// Reports one call of member `i` ended.
fn end(state: &AppState, dag: &optimizer::Dag, i: usize) {
    let key = (dag.namespace.clone(), dag.name.clone());
    state.dags.events.send(&key, What::CallEnded { member: i });
}

/// Empties one member's queue into batch calls (see the module documentation).
async fn gatherer(
    state: web::Data<AppState>,
    dag: Arc<optimizer::Dag>,
    i: usize,
    mut rx: mpsc::Receiver<Item>,
) {
    let scale = Some(state.dags.live.time_scale)
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0);
    let epoch = Instant::now();
    // Profile seconds since the gatherer started: the rule's clock.
    let clock = |t: Instant| t.saturating_duration_since(epoch).as_secs_f64() / scale;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let freed = Arc::new(Notify::new());
    let mut queue: VecDeque<Item> = VecDeque::new();
    let mut open = true;
    loop {
        // Requests whose caller went away leave the queue (and end, for the executor's books).
        let before = queue.len();
        queue.retain(|it| !it.reply.is_closed());
        for _ in queue.len()..before {
            end(&state, &dag, i);
        }
        if !open && queue.is_empty() {
            return;
        }
        let slots = state
            .catalog
            .function(&dag.namespace, &dag.nodes[i].name)
            .map_or(1, |r| r.replicas.max(1) as usize);
        let free = in_flight.load(Ordering::Acquire) < slots;
        let now = Instant::now();
        let decision = match (free, queue.front(), queue.back()) {
            (true, Some(oldest), Some(newest)) => gather::decide(
                newest.cap,
                u32::try_from(queue.len()).unwrap_or(u32::MAX),
                clock(oldest.queued),
                clock(now),
            ),
            _ => Gather::Idle,
        };
        let deadline = match decision {
            Gather::Send(n) => {
                let batch: Vec<Item> = queue.drain(..(n as usize).min(queue.len())).collect();
                in_flight.fetch_add(1, Ordering::AcqRel);
                let (state, dag, in_flight, freed) =
                    (state.clone(), dag.clone(), in_flight.clone(), freed.clone());
                tokio::spawn(async move {
                    let answers = call(&state, &dag, i, &batch).await;
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                    freed.notify_one();
                    end(&state, &dag, i);
                    deliver(batch, answers);
                });
                continue;
            }
            Gather::Until(at) => std::time::Duration::try_from_secs_f64(at * scale)
                .ok()
                .and_then(|d| epoch.checked_add(d))
                // An unrepresentable time (an absurd time scale): decide again at once.
                .or(Some(now)),
            Gather::Idle => None,
        };
        tokio::select! {
            item = rx.recv(), if open && queue.len() < QUEUE_LIMIT => match item {
                Some(it) => queue.push_back(it),
                None => open = false,
            },
            () = sleep_until(deadline), if deadline.is_some() => {}
            () = freed.notified(), if !free => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Hands each request its answer (or the batch's error).
fn deliver(batch: Vec<Item>, answers: Result<Vec<Part>, (u16, String)>) {
    match answers {
        Ok(parts) => {
            for (item, part) in batch.into_iter().zip(parts) {
                let reply: Reply = if (200..300).contains(&part.status) {
                    Ok(part)
                } else {
                    let text = String::from_utf8_lossy(&part.body[..part.body.len().min(512)])
                        .trim()
                        .to_owned();
                    Err((502, format!("HTTP {}: {text}", part.status)))
                };
                let _ = item.reply.send(reply);
            }
        }
        Err(e) => {
            for item in batch {
                let _ = item.reply.send(Err(e.clone()));
            }
        }
    }
}

/// One batch call of member `i`: scale from zero when needed, wait for a ready replica, POST the framed
/// inputs, check and split the framed answer.
async fn call(
    state: &AppState,
    dag: &optimizer::Dag,
    i: usize,
    batch: &[Item],
) -> Result<Vec<Part>, (u16, String)> {
    let (ns, f) = (&dag.namespace, &dag.nodes[i].name);
    let n = batch.len();
    let Some(rec) = state.catalog.function(ns, f) else {
        return Err((503, "not deployed".into()));
    };
    if rec.replicas == 0 {
        state.dags.live.cold_start(ns, &dag.name);
        state
            .scale(ns, f, 1)
            .await
            .map_err(|e| (503, format!("cannot scale from zero: {e}")))?;
    }
    let deadline = tokio::time::Instant::now() + state.read_timeout;
    let addr = crate::backend::wait_endpoint(state.backend.as_ref(), ns, f, deadline, || true)
        .await
        .ok_or_else(|| (503, "no ready replica".to_owned()))?;
    let parts: Vec<Part> = batch.iter().map(|it| it.part.clone()).collect();
    let body = format::encode(&parts).map_err(|e| (500, e.to_string()))?;
    let up = hyper::Request::builder()
        .method(hyper::Method::POST)
        .uri(format!("http://{addr}/"))
        .header("x-call-id", crate::proxy::uuid_v4())
        .header(format::HEADER, n)
        .header("content-type", format::CONTENT_TYPE)
        .body(Full::new(body))
        .map_err(|e| (500, e.to_string()))?;
    let client = CLIENT.with(Clone::clone);
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let resp = match tokio::time::timeout(left, client.request(up)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err((502, format!("cannot reach its replica: {e}"))),
        Err(_) => return Err((504, "timed out".into())),
    };
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, count) = (header("content-type"), header(format::HEADER));
    // Bounded like n request bodies.
    let limit = state.max_body_bytes.saturating_mul(n);
    let body: Bytes = http_body_util::Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map_err(|e| (502, format!("reading its batch answer: {e}")))?
        .to_bytes();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        return Err((502, format!("HTTP {}: {}", status.as_u16(), text.trim())));
    }
    split(n, content_type.as_deref(), count.as_deref(), &body)
}

/// The `n` parts of a batch answer, or why it is not one.
pub(super) fn split(
    n: usize,
    content_type: Option<&str>,
    count: Option<&str>,
    body: &Bytes,
) -> Result<Vec<Part>, (u16, String)> {
    if !format::is_batch_type(content_type) {
        return Err((
            502,
            format!(
                "it answered a batch of {n} without the batch format (content type {})",
                content_type.unwrap_or("none")
            ),
        ));
    }
    let got = count.map(format::count_from);
    match got {
        Some(Ok(m)) if m == n => {}
        Some(Ok(m)) => {
            return Err((502, format!("it answered a batch of {n} with {m} parts")));
        }
        Some(Err(e)) => return Err((502, format!("its batch answer: {e}"))),
        None => {
            return Err((
                502,
                format!("its batch answer has no {} header", format::HEADER),
            ));
        }
    }
    format::decode(body, n, true).map_err(|e| {
        (
            502,
            format!("it answered a batch of {n} with a malformed body: {e}"),
        )
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_with_the_wrong_shape_fails_the_batch() {
        let ok = Part {
            status: 200,
            content_type: None,
            body: Bytes::from_static(b"x"),
        };
        let two = format::encode(&[ok.clone(), ok.clone()]).unwrap();
        let ct = Some(format::CONTENT_TYPE);
        assert_eq!(split(2, ct, Some("2"), &two).unwrap().len(), 2);
        let (status, msg) = split(3, ct, Some("2"), &two).unwrap_err();
        assert_eq!(
            (status, msg.as_str()),
            (502, "it answered a batch of 3 with 2 parts")
        );
        // The header says 3 but the body holds 2.
        assert!(
            split(3, ct, Some("3"), &two)
                .unwrap_err()
                .1
                .contains("malformed")
        );
        assert!(
            split(2, Some("application/json"), Some("2"), &two)
                .unwrap_err()
                .1
                .contains("without the batch format")
        );
        assert!(
            split(2, ct, None, &two)
                .unwrap_err()
                .1
                .contains("no X-Smiless-Batch")
        );
    }
}
