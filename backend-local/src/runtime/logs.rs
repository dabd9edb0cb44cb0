//! Per-function log history: a bounded ring buffer of replica output lines plus a broadcast channel for
//! followers, so `logs` can answer `since`, `tail` and `follow` without a journal.

use std::collections::VecDeque;
use std::sync::Mutex;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use super::{LogLine, LogQuery};

/// Lines kept per function; older lines are dropped first.
pub const HISTORY_LINES: usize = 10_000;
/// How far a slow follower may fall behind before it skips lines.
const FOLLOW_BACKLOG: usize = 1024;

/// The log history of one function.
///
/// Why nothing is allocated up front: a provider holds one buffer per deployed function, most of them at
/// zero replicas and never followed. A preallocated ring (1,024 lines) and a broadcast channel (whose
/// 1,024 slots are written at creation) cost about 150 KiB per function, which was most of the provider's
/// memory at 1,000 functions. The ring grows with the lines actually logged (up to `capacity`), and the
/// channel exists only while someone follows.
pub struct LogBuffer {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    lines: VecDeque<LogLine>,
    /// Present while at least one follower may be listening; dropped on the next push after the last
    /// follower went away.
    tx: Option<broadcast::Sender<LogLine>>,
}

impl LogBuffer {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                lines: VecDeque::new(),
                tx: None,
            }),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends a line and hands it to followers.
    pub fn push(&self, line: LogLine) {
        let mut inner = self.lock();
        if inner.lines.len() >= self.capacity {
            inner.lines.pop_front();
        }
        // Sent under the lock so a new follower sees each line exactly once: either in its snapshot or
        // from the channel.
        if let Some(tx) = &inner.tx {
            if tx.receiver_count() == 0 {
                inner.tx = None;
            } else {
                let _ = tx.send(line.clone());
            }
        }
        if self.capacity > 0 {
            inner.lines.push_back(line);
        }
    }

    /// Whether a follower channel is allocated (for the memory test).
    #[cfg(test)]
    fn following(&self) -> bool {
        self.lock().tx.is_some()
    }

    /// The lines matching `q` (history first, then new lines if `q.follow`).
    pub fn query(&self, q: &LogQuery) -> BoxStream<'static, LogLine> {
        let since = q.since;
        let keep = move |l: &LogLine| since.is_none_or(|s| l.timestamp >= s);
        let (history, rx) = {
            let mut inner = self.lock();
            let rx = q.follow.then(|| {
                inner
                    .tx
                    .get_or_insert_with(|| broadcast::channel(FOLLOW_BACKLOG).0)
                    .subscribe()
            });
            let matching: Vec<LogLine> = inner.lines.iter().filter(|l| keep(l)).cloned().collect();
            (matching, rx)
        };
        let skip = q.tail.map_or(0, |t| history.len().saturating_sub(t));
        let history = futures::stream::iter(history.into_iter().skip(skip));
        match rx {
            None => history.boxed(),
            Some(rx) => history
                .chain(follow(rx).filter(move |l| std::future::ready(keep(l))))
                .boxed(),
        }
    }
}

/// New lines until the function is gone (the sender is dropped).
fn follow(rx: broadcast::Receiver<LogLine>) -> BoxStream<'static, LogLine> {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(line) => return Some((line, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::runtime::FunctionKey;

    fn line(i: i64) -> LogLine {
        LogLine {
            name: "f".into(),
            namespace: "ns".into(),
            instance: "f-1".into(),
            timestamp: jiff::Timestamp::from_second(1_000 + i).unwrap(),
            text: format!("line {i}"),
        }
    }

    fn query(since: Option<i64>, tail: Option<usize>, follow: bool) -> LogQuery {
        LogQuery {
            key: FunctionKey::new("ns", "f"),
            since: since.map(|s| jiff::Timestamp::from_second(1_000 + s).unwrap()),
            tail,
            follow,
        }
    }

    fn texts(lines: Vec<LogLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    #[tokio::test]
    async fn bounded_history_with_since_and_tail() {
        let buf = LogBuffer::new(5);
        for i in 0..8 {
            buf.push(line(i));
        }
        let all = texts(buf.query(&query(None, None, false)).collect().await);
        assert_eq!(all, ["line 3", "line 4", "line 5", "line 6", "line 7"]);
        let tail = texts(buf.query(&query(None, Some(2), false)).collect().await);
        assert_eq!(tail, ["line 6", "line 7"]);
        let since = texts(buf.query(&query(Some(6), None, false)).collect().await);
        assert_eq!(since, ["line 6", "line 7"]);
        let both = texts(buf.query(&query(Some(4), Some(10), false)).collect().await);
        assert_eq!(both, ["line 4", "line 5", "line 6", "line 7"]);
    }

    #[tokio::test]
    async fn followers_get_history_then_new_lines_and_end_with_the_buffer() {
        let buf = LogBuffer::new(100);
        buf.push(line(0));
        let stream = buf.query(&query(None, Some(1), true));
        buf.push(line(1));
        buf.push(line(2));
        drop(buf);
        let got = texts(stream.collect().await);
        assert_eq!(got, ["line 0", "line 1", "line 2"]);
    }

    #[tokio::test]
    async fn the_follower_channel_exists_only_while_followed() {
        let buf = LogBuffer::new(100);
        buf.push(line(0));
        assert!(!buf.following(), "no channel before anyone follows");
        let stream = buf.query(&query(None, None, true));
        assert!(buf.following());
        drop(stream);
        buf.push(line(1));
        assert!(
            !buf.following(),
            "dropped on the first push after the last follower left"
        );
        // A new follower after that still gets the history and new lines.
        let stream = buf.query(&query(None, None, true));
        buf.push(line(2));
        drop(buf);
        let got = texts(stream.collect().await);
        assert_eq!(got, ["line 0", "line 1", "line 2"]);
    }
}
