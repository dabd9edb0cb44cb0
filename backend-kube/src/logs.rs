//! Function logs from the pods (contract §1.10): every pod labelled `faas_function=<name>` (or the one
//! named by `instance`), its function container, with the kubelet's timestamps, merged as lines arrive.
use futures::StreamExt;
use futures::io::AsyncBufReadExt;
use futures::stream::{self, BoxStream};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};

use contract::backend::LogRequest;
use contract::types::{LABEL_FAAS_FUNCTION, LogMessage};

/// Splits a kubelet log line `RFC3339NANO text` into its time and text (a line without a readable time
/// keeps all of its text and gets the time it was read).
pub fn parse_line(line: &str) -> (jiff::Timestamp, String) {
    if let Some((ts, text)) = line.split_once(' ')
        && let Ok(t) = ts.parse::<jiff::Timestamp>()
    {
        return (t, text.to_owned());
    }
    (jiff::Timestamp::now(), line.to_owned())
}

/// The log lines of a function's pods; ends when every pod's stream ends (or at once when the pods cannot
/// be listed, which the caller sees as no lines).
pub fn stream(client: kube::Client, q: LogRequest) -> BoxStream<'static, LogMessage> {
    stream::once(async move {
        let pods: Api<Pod> = Api::namespaced(client, &q.namespace);
        let lp = ListParams::default().labels(&format!("{LABEL_FAAS_FUNCTION}={}", q.name));
        let list = match pods.list(&lp).await {
            Ok(l) => l.items,
            Err(e) => {
                tracing::warn!("logs of {}.{}: cannot list pods: {e}", q.name, q.namespace);
                Vec::new()
            }
        };
        let params = LogParams {
            container: Some(q.name.clone()),
            follow: q.follow,
            timestamps: true,
            tail_lines: q.tail.and_then(|t| i64::try_from(t).ok()),
            since_time: q.since,
            ..Default::default()
        };
        let mut per_pod = Vec::new();
        for pod in list {
            let Some(pod_name) = pod.metadata.name.clone() else {
                continue;
            };
            if q.instance.as_ref().is_some_and(|i| *i != pod_name) {
                continue;
            }
            let reader = match pods.log_stream(&pod_name, &params).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!("logs of pod {pod_name}: {e}");
                    continue;
                }
            };
            let (name, namespace) = (q.name.clone(), q.namespace.clone());
            per_pod.push(
                reader
                    .lines()
                    .take_while(|l| std::future::ready(l.is_ok()))
                    .filter_map(move |l| {
                        let msg = l.ok().map(|l| {
                            let (timestamp, text) = parse_line(&l);
                            LogMessage {
                                name: name.clone(),
                                namespace: namespace.clone(),
                                instance: pod_name.clone(),
                                timestamp,
                                text,
                            }
                        });
                        std::future::ready(msg)
                    })
                    .boxed(),
            );
        }
        stream::select_all(per_pod)
    })
    .flatten()
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_timestamps_are_split_off() {
        let (t, text) = parse_line("2026-11-28T10:00:00.123456789Z hello world");
        assert_eq!(t.to_string(), "2026-11-28T10:00:00.123456789Z");
        assert_eq!(text, "hello world");
        let (_, text) = parse_line("no timestamp here");
        assert_eq!(text, "no timestamp here");
    }
}
