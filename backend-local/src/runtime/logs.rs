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
pub struct LogBuffer {
    lines: Mutex<VecDeque<LogLine>>,
    capacity: usize,
    tx: broadcast::Sender<LogLine>,
}

impl LogBuffer {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(FOLLOW_BACKLOG);
        Self {
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity,
            tx,
        }
    }

    /// Appends a line and hands it to followers.
    pub fn push(&self, line: LogLine) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        // Sent under the lock so a new follower sees each line exactly once: either in its snapshot or
        // from the channel.
        let _ = self.tx.send(line.clone());
        lines.push_back(line);
    }

    /// The lines matching `q` (history first, then new lines if `q.follow`).
    pub fn query(&self, q: &LogQuery) -> BoxStream<'static, LogLine> {
        let since = q.since;
        let keep = move |l: &LogLine| since.is_none_or(|s| l.timestamp >= s);
        let (history, rx) = {
            let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
            let rx = q.follow.then(|| self.tx.subscribe());
            let matching: Vec<LogLine> = lines.iter().filter(|l| keep(l)).cloned().collect();
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
}
