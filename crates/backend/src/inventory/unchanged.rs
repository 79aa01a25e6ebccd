//! The unchanged sync's one read, coalesced: concurrent `GET /api/inventory` requests of one process wait for
//! the next batch, and each batch is one query for every session in it (the session's holder and the stored
//! inventory version, [`crate::link::sessions::holders_and_versions`]). Under load one database round trip
//! answers dozens of players; alone, a request is its own batch and waits for nothing.
//!
//! Correct across processes: a request joins only a batch whose query has not been sent, so its answer is
//! read after it arrived, from the database. On PostgreSQL a player read twice within a lease is then
//! answered from [`super::leased`]'s memory, which every writer revokes before it commits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use super::leased::LeasedAnswers;
use crate::link::sessions::{self, HOLDER_BATCH_SIZES, SessionHolder};

/// Requests waiting for a batch, at most (more wait to be queued).
const QUEUE: usize = 1024;

/// What a read answers: the session's holder and version, `None` for no live session.
type Answer = Result<Option<(SessionHolder, i64)>, Arc<sqlx::Error>>;

/// What the batching task needs, until the first read starts it.
type NotStarted = Option<(AnyPool, mpsc::Receiver<Pending>)>;

struct Pending {
    token_hash: String,
    answer: oneshot::Sender<Answer>,
}

/// The process's coalescing reader (cheap to clone; the batching task starts at the first read, inside the
/// server's runtime, and ends with the last clone).
#[derive(Clone)]
pub struct UnchangedReads {
    sender: mpsc::Sender<Pending>,
    idle: Arc<Mutex<NotStarted>>,
    leased: Option<LeasedAnswers>,
}

impl UnchangedReads {
    /// A reader of `pool`, remembering answers under read leases of `lease` (PostgreSQL; zero: never).
    pub fn new(pool: AnyPool, lease: Duration) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let leased = LeasedAnswers::new(pool.clone(), lease);
        Self { sender, idle: Arc::new(Mutex::new(Some((pool, receiver)))), leased }
    }

    /// The memory of leased answers, when there is one.
    pub fn leased(&self) -> Option<&LeasedAnswers> {
        self.leased.as_ref()
    }

    /// The holder of the session whose token hashes to `token_hash`, and their inventory version.
    pub(crate) async fn holder_and_version(
        &self,
        token_hash: String,
    ) -> Result<Option<(SessionHolder, i64)>, sqlx::Error> {
        if let Some((pool, receiver)) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).take() {
            tokio::spawn(batches(pool, receiver));
            self.leased.iter().for_each(LeasedAnswers::start);
        }
        let Some(leased) = &self.leased else { return self.read(token_hash).await };
        if let Some(found) = leased.answer(&token_hash) {
            crate::telemetry::unchanged_read_from_lease();
            return Ok(Some(found));
        }
        let found = self.read(token_hash.clone()).await?;
        if let Some((holder, _)) = &found {
            leased.read_from_database(&token_hash, holder);
        }
        Ok(found)
    }

    /// The coalesced read from the database.
    async fn read(&self, token_hash: String) -> Result<Option<(SessionHolder, i64)>, sqlx::Error> {
        let (answer, answered) = oneshot::channel();
        let closed = || sqlx::Error::PoolClosed;
        self.sender.send(Pending { token_hash, answer }).await.map_err(|_| closed())?;
        match answered.await.map_err(|_| closed())? {
            Ok(found) => Ok(found),
            Err(error) => Err(sqlx::Error::Protocol(format!("batched session read failed: {error}"))),
        }
    }
}

/// Takes what is waiting (up to the largest batch) and reads it, one batch at a time. While batches follow one
/// another the connection is kept: sqlx tests a connection given back to the pool with a round trip of its
/// own (a `Sync`), which per batch cost as much as the read. It goes back when the queue runs dry.
async fn batches(pool: AnyPool, mut receiver: mpsc::Receiver<Pending>) {
    let largest = HOLDER_BATCH_SIZES[HOLDER_BATCH_SIZES.len() - 1];
    let mut held: Option<PoolConnection<Any>> = None;
    loop {
        let first = match receiver.try_recv() {
            Ok(first) => first,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {
                held = None;
                let Some(first) = receiver.recv().await else { return };
                first
            }
        };
        let mut batch = vec![first];
        while batch.len() < largest
            && let Ok(next) = receiver.try_recv()
        {
            batch.push(next);
        }
        crate::telemetry::unchanged_read_batch(batch.len());
        read(&pool, &mut held, batch).await;
    }
}

async fn read(pool: &AnyPool, held: &mut Option<PoolConnection<Any>>, batch: Vec<Pending>) {
    let hashes: Vec<String> = batch.iter().map(|p| p.token_hash.clone()).collect();
    let found = async {
        let connection = match held {
            Some(connection) => connection,
            None => held.insert(pool.acquire().await?),
        };
        sessions::holders_and_versions(&mut **connection, &hashes).await
    };
    match found.await {
        Ok(mut found) => answer_each(batch, &mut found),
        Err(error) => {
            // The next batch starts on a fresh connection.
            *held = None;
            let error = Arc::new(error);
            for pending in batch {
                // A request that gave up has no one to answer.
                let _ = pending.answer.send(Err(error.clone()));
            }
        }
    }
}

fn answer_each(batch: Vec<Pending>, found: &mut HashMap<String, (SessionHolder, i64)>) {
    for pending in batch {
        let _ = pending.answer.send(Ok(found.get(&pending.token_hash).cloned()));
    }
}

#[cfg(test)]
mod tests {
    use amazon_rewards_protocol::catalog::ItemStack;

    use super::*;
    use crate::inventory::ledger::{self, Change, ChangeKind};
    use crate::link::sessions::token_hash;

    /// `count` players with live sessions, player `p` at inventory version `p % 4`: their token hashes.
    async fn players(pool: &AnyPool, count: usize) -> Vec<String> {
        let mut hashes = Vec::new();
        for p in 0..count {
            let amazon_user_id = format!("amzn1.account.READ{p}");
            let session = crate::link::session_without_link(pool, &amazon_user_id, "game").await.unwrap();
            let account = session.user_id;
            let gems = [ItemStack { item: "gem".into(), quantity: 1 }];
            for grant in 0..p % 4 {
                let key = format!("grant-{grant}");
                let change = Change {
                    kind: ChangeKind::Grant,
                    source: "TEST",
                    key: &key,
                    sku: None,
                    items: &gems,
                    active_until: None,
                };
                ledger::apply(pool, &account, change).await.unwrap();
            }
            hashes.push(token_hash(&session.tokens.access_token));
        }
        hashes
    }

    #[tokio::test]
    async fn one_query_answers_each_hash_of_a_padded_batch_and_refuses_an_oversized_one() {
        let (_dir, pool) = crate::db::test_database().await;
        let hashes = players(&pool, 65).await;
        for size in [3, 4, 5, 16, 17, 64] {
            // `size - 2` players, a hash of no session, and the first player again.
            let mut batch = hashes[..size - 2].to_vec();
            batch.extend([token_hash("rws_at_not-a-session"), hashes[0].clone()]);
            let found = sessions::holders_and_versions(&pool, &batch).await.unwrap();
            assert_eq!(found.len(), size - 2, "a batch of {size}");
            for (p, hash) in hashes[..size - 2].iter().enumerate() {
                assert_eq!(found[hash].1, (p % 4) as i64, "player {p} in a batch of {size}");
            }
        }
        let alone = sessions::holders_and_versions(&pool, &hashes[7..8]).await.unwrap();
        assert_eq!(alone[&hashes[7]].1, 3);
        assert!(sessions::holders_and_versions(&pool, &[]).await.unwrap().is_empty());
        assert!(sessions::holders_and_versions(&pool, &hashes).await.is_err(), "65 hashes: more than one batch");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_each_get_their_own_player_and_version() {
        let (_dir, pool) = crate::db::test_database().await;
        let hashes = players(&pool, 150).await;
        let reads = UnchangedReads::new(pool.clone(), Duration::ZERO);
        let mut asked: Vec<String> = hashes.iter().chain(hashes.iter().rev()).cloned().collect();
        asked.push(token_hash("rws_at_not-a-session"));
        let answers = futures::future::join_all(asked.iter().map(|hash| reads.holder_and_version(hash.clone()))).await;
        for (hash, answer) in asked.iter().zip(answers) {
            let answer = answer.unwrap();
            match hashes.iter().position(|h| h == hash) {
                Some(p) => assert_eq!(answer.map(|(_, version)| version), Some((p % 4) as i64), "player {p}"),
                None => assert!(answer.is_none(), "no session, no holder"),
            }
        }
    }
}
