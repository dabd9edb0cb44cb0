//! The DAG runner's batch queues (docs/batching.md): one per batched member, keyed by (namespace, DAG,
//! member). This module holds only the map and what travels through a queue; the gatherer task that
//! empties a queue into batch calls is the request path's (`proxy::runner::batch`), spawned on first use.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use function_kit::batch::Part;
use tokio::sync::{mpsc, oneshot};

/// The most requests waiting at one member's gatherer; more are refused (bounded memory).
pub const QUEUE_LIMIT: usize = 4096;

/// (namespace, DAG, member index).
pub type MemberKey = (String, String, usize);

/// A request's answer: its own part, or (HTTP status, message) for this request alone.
pub type Reply = Result<Part, (u16, String)>;

/// One request waiting to join a batch.
#[derive(Debug)]
pub struct Item {
    /// The member's input for this request (status 0).
    pub part: Part,
    /// The plan's batch cap when the request was queued (the newest request's cap rules).
    pub cap: u32,
    pub queued: Instant,
    pub reply: oneshot::Sender<Reply>,
}

/// The queues, by member.
#[derive(Debug, Default)]
pub struct Gatherers {
    map: Mutex<HashMap<MemberKey, mpsc::Sender<Item>>>,
}

impl Gatherers {
    /// Queues `item` at `key`'s gatherer; `spawn` starts one (with its receiving end) when there is none
    /// or the last one ended. The item comes back when the queue is full.
    pub fn send(
        &self,
        key: MemberKey,
        item: Item,
        spawn: impl FnOnce(mpsc::Receiver<Item>),
    ) -> Result<(), Item> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = match map.get(&key).filter(|tx| !tx.is_closed()) {
            Some(tx) => tx.clone(),
            None => {
                let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
                spawn(rx);
                map.insert(key, tx.clone());
                tx
            }
        };
        drop(map);
        tx.try_send(item).map_err(|e| match e {
            mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
        })
    }
}
