//! The process's memory of unchanged syncs' answers, each held under a read lease ([`super::leases`], PostgreSQL
//! only): while the lease lasts, a player's repeated `GET /api/inventory` is answered here, without the
//! database. A writer in any process revokes the lease before it commits, so the memory is never stale.
//!
//! Three background tasks serve it: the **listener** (its own connection, `LISTEN`ing on [`leases::CHANNEL`]
//! and [`leases::PINGS`]) forgets each player a writer names and releases the lease on that connection, and
//! renews the process's life when its own ping comes back; the **pinger** sends those pings; the **leaser**
//! takes leases, in batches, for players read twice within a lease's length (a player synced once is not
//! worth a write). While the process is not alive (no ping back within [`leases::ALIVE_FOR`]) nothing is
//! answered from memory: a writer's word might not reach it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::AnyPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::leases;
use crate::link::sessions::SessionHolder;

/// Answers remembered at most; past it, players are answered from the database until some expire.
const MAX_ANSWERS: usize = 100_000;

/// Players waiting for a lease, at most.
const QUEUE: usize = 256;

/// How often the leaser deletes leases long run out.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

struct Answer {
    user_id: String,
    holder: SessionHolder,
    version: i64,
    /// The lease's end by this process's clock, started before the lease was taken, less a margin.
    until: Instant,
    /// The access token's own end (seconds).
    token_expires_at: i64,
}

#[derive(Default)]
struct Memory {
    answers: HashMap<String, Answer>,
    tokens_of: HashMap<String, Vec<String>>,
    /// Tokens read from the database once, and when: a second read within a lease takes one.
    seen: HashMap<String, Instant>,
    queued: HashSet<String>,
    listening: bool,
    /// Until when this process's own clock says writers can reach it (its last ping back, renewed).
    alive_until: Option<Instant>,
    /// Pings sent and not yet back: number, sent at.
    pings: VecDeque<(u64, Instant)>,
    /// Bumped whenever the listener stops: a lease taken across it is not remembered.
    epoch: u64,
    /// The players whose leases are being taken, and whether a writer named each meanwhile.
    taking: HashMap<String, bool>,
}

impl Memory {
    fn forget(&mut self, user_id: &str) {
        for token in self.tokens_of.remove(user_id).unwrap_or_default() {
            self.answers.remove(&token);
        }
        if let Some(named) = self.taking.get_mut(user_id) {
            *named = true;
        }
    }

    fn alive(&self, now: Instant) -> bool {
        self.listening && self.alive_until.is_some_and(|until| until > now)
    }

    fn forget_all(&mut self) {
        self.alive_until = None;
        self.pings.clear();
        self.answers.clear();
        self.tokens_of.clear();
        self.epoch += 1;
        self.taking.values_mut().for_each(|named| *named = true);
    }

    fn remember(&mut self, token_hash: String, answer: Answer) {
        if self.answers.len() >= MAX_ANSWERS {
            let now = Instant::now();
            self.answers.retain(|_, answer| answer.until > now);
            let answers = &self.answers;
            self.tokens_of.values_mut().for_each(|tokens| tokens.retain(|token| answers.contains_key(token)));
            self.tokens_of.retain(|_, tokens| !tokens.is_empty());
            if self.answers.len() >= MAX_ANSWERS {
                return;
            }
        }
        self.tokens_of.entry(answer.user_id.clone()).or_default().push(token_hash.clone());
        self.answers.insert(token_hash, answer);
    }
}

struct Shared {
    pool: AnyPool,
    holder: String,
    lease: Duration,
    memory: Mutex<Memory>,
}

impl Shared {
    fn memory(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Ends the background tasks with the last handle.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// The memory of leased answers (cheap to clone). Its tasks start with [`LeasedAnswers::start`].
#[derive(Clone)]
pub struct LeasedAnswers {
    shared: Arc<Shared>,
    wanted: mpsc::Sender<(String, String)>,
    receiver: Arc<Mutex<Option<mpsc::Receiver<(String, String)>>>>,
    tasks: Arc<Mutex<Option<Tasks>>>,
}

impl LeasedAnswers {
    /// A memory of answers read from `pool`, each kept for at most `lease` ([`leases::MAX_LEASE`] at most).
    /// `None` when `pool` is not PostgreSQL or `lease` is zero.
    pub fn new(pool: AnyPool, lease: Duration) -> Option<Self> {
        let postgres = pool.connect_options().database_url.scheme().starts_with("postgres");
        if !postgres || lease.is_zero() {
            return None;
        }
        let holder = format!("{}-{}", std::process::id(), crate::random_hex(8));
        let lease = lease.min(leases::MAX_LEASE);
        let shared = Arc::new(Shared { pool, holder, lease, memory: Mutex::default() });
        let (wanted, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(Some(receiver)));
        Some(Self { shared, wanted, receiver, tasks: Arc::new(Mutex::new(None)) })
    }

    /// Starts the listener and the leaser (once; inside the server's runtime).
    pub(crate) fn start(&self) {
        let Some(receiver) = self.receiver.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        let listener = tokio::spawn(listen(self.shared.clone()));
        let pinger = tokio::spawn(ping(self.shared.clone()));
        let leaser = tokio::spawn(take_leases(self.shared.clone(), receiver));
        *self.tasks.lock().unwrap_or_else(|e| e.into_inner()) = Some(Tasks(vec![listener, pinger, leaser]));
    }

    /// The remembered answer for `token_hash`, while its lease and its token last.
    pub(crate) fn answer(&self, token_hash: &str) -> Option<(SessionHolder, i64)> {
        let memory = self.shared.memory();
        let answer = memory.answers.get(token_hash)?;
        let now = Instant::now();
        let live = memory.alive(now) && answer.until > now && answer.token_expires_at > crate::now_secs();
        live.then(|| (answer.holder.clone(), answer.version))
    }

    /// `token_hash`'s session was just read from the database: a second read within a lease asks for one.
    pub(crate) fn read_from_database(&self, token_hash: &str, holder: &SessionHolder) {
        if holder.link_broken || holder.amazon_user_id.is_none() {
            return;
        }
        let mut memory = self.shared.memory();
        let now = Instant::now();
        if !memory.alive(now) || memory.queued.contains(token_hash) {
            return;
        }
        let lease = self.shared.lease;
        match memory.seen.get(token_hash) {
            Some(at) if now.duration_since(*at) < lease => {
                memory.seen.remove(token_hash);
                if self.wanted.try_send((token_hash.to_owned(), holder.user_id.clone())).is_ok() {
                    memory.queued.insert(token_hash.to_owned());
                }
            }
            _ => {
                if memory.seen.len() >= MAX_ANSWERS {
                    memory.seen.retain(|_, at| now.duration_since(*at) < lease);
                }
                if memory.seen.len() < MAX_ANSWERS {
                    memory.seen.insert(token_hash.to_owned(), now);
                }
            }
        }
    }

    /// Whether a lease-backed answer for `token_hash` is remembered (for tests).
    #[doc(hidden)]
    pub fn remembers(&self, token_hash: &str) -> bool {
        self.answer(token_hash).is_some()
    }
}

/// The leaser: takes leases for the players asked for (those waiting, in one transaction), and remembers each
/// answer unless a writer named the player, or the listener stopped, while it was being taken.
async fn take_leases(shared: Arc<Shared>, mut wanted: mpsc::Receiver<(String, String)>) {
    let mut swept = Instant::now();
    loop {
        if swept.elapsed() >= SWEEP_EVERY {
            swept = Instant::now();
            if let Err(error) = leases::sweep(&shared.pool).await {
                tracing::warn!(%error, "could not delete leases run out");
            }
        }
        let first = match tokio::time::timeout(SWEEP_EVERY, wanted.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => return,
            Err(_) => continue,
        };
        let mut batch = vec![first];
        while batch.len() < leases::MAX_ACQUIRED
            && let Ok(next) = wanted.try_recv()
        {
            batch.push(next);
        }
        take_batch(&shared, batch).await;
    }
}

async fn take_batch(shared: &Shared, batch: Vec<(String, String)>) {
    let epoch = {
        let mut memory = shared.memory();
        for (token_hash, user_id) in &batch {
            memory.queued.remove(token_hash);
            memory.taking.insert(user_id.clone(), false);
        }
        if !memory.alive(Instant::now()) {
            memory.taking.clear();
            return;
        }
        memory.epoch
    };
    let started = Instant::now();
    let wanted: Vec<(String, String)> = batch.into_iter().map(|(token_hash, user_id)| (user_id, token_hash)).collect();
    let taken = leases::acquire(&shared.pool, &shared.holder, shared.lease, &wanted).await;
    let mut memory = shared.memory();
    let named = std::mem::take(&mut memory.taking);
    let taken = match taken {
        Ok(taken) if memory.epoch == epoch => taken,
        Ok(_) => return,
        Err(error) => return tracing::warn!(%error, "could not take read leases"),
    };
    // The margin covers the two clocks' drift over a lease.
    let until = started + shared.lease - shared.lease / 10;
    for (token_hash, (holder, version, token_expires_at)) in taken {
        let user_id = holder.user_id.clone();
        if named.get(&user_id) == Some(&false) && !holder.link_broken && holder.amazon_user_id.is_some() {
            memory.remember(token_hash, Answer { user_id, holder, version, until, token_expires_at });
        }
    }
}

/// The listener: while its connection lasts, forgets each player a writer names and releases the lease; when
/// it is lost, forgets everything and connects again.
async fn listen(shared: Arc<Shared>) {
    let url = shared.pool.connect_options().database_url.to_string();
    loop {
        match listener_on(&url).await {
            Ok(mut listener) => {
                // A lost connection is noticed here, and a fresh listener made, rather than reconnected behind
                // our back: notifications sent meanwhile are lost, so the memory must be forgotten first.
                listener.eager_reconnect(false);
                let listening = async {
                    listener.listen_all([leases::CHANNEL, leases::PINGS]).await?;
                    // Leases of an earlier connection are of a memory since forgotten.
                    leases::release_all(&mut listener, &shared.holder).await?;
                    shared.memory().listening = true;
                    serve_notifications(&shared, &mut listener).await
                };
                if let Err(error) = listening.await {
                    tracing::warn!(%error, "read lease listener lost its connection; answering from the database");
                }
            }
            Err(error) => tracing::warn!(%error, "read lease listener cannot connect; answering from the database"),
        }
        {
            let mut memory = shared.memory();
            memory.listening = false;
            memory.forget_all();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The application name the listener's connection shows in `pg_stat_activity`.
pub const LISTENER_NAME: &str = "rewards-backend read leases";

async fn listener_on(url: &str) -> Result<PgListener, sqlx::Error> {
    let options = url.parse::<sqlx::postgres::PgConnectOptions>()?.application_name(LISTENER_NAME);
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_lazy_with(options);
    PgListener::connect_with(&pool).await
}

/// Forgets each player named, then releases all their leases in one statement; a ping is answered only after
/// the releases of the notifications that arrived before it, since its coming back vouches for them.
async fn serve_notifications(shared: &Shared, listener: &mut PgListener) -> Result<(), sqlx::Error> {
    let mut named = Vec::new();
    loop {
        let Some(first) = listener.try_recv().await? else {
            return Err(sqlx::Error::Protocol("the listener's connection closed".into()));
        };
        let mut arrived = vec![first];
        while arrived.len() < leases::MAX_RELEASED {
            let Some(next) = listener.next_buffered() else { break };
            arrived.push(next);
        }
        for notification in arrived {
            if notification.channel() == leases::PINGS {
                release_named(shared, listener, &mut named).await?;
                ping_back(shared, listener, notification.payload()).await?;
            } else {
                named.push(notification.payload().to_owned());
            }
        }
        release_named(shared, listener, &mut named).await?;
    }
}

async fn release_named(shared: &Shared, listener: &mut PgListener, named: &mut Vec<String>) -> Result<(), sqlx::Error> {
    if named.is_empty() {
        return Ok(());
    }
    {
        let mut memory = shared.memory();
        for user_id in named.iter() {
            memory.forget(user_id);
        }
    }
    leases::release(&mut *listener, &shared.holder, named).await?;
    named.clear();
    Ok(())
}

/// A ping came back: if it is this holder's, every notification sent before it has arrived, so the process is
/// alive — recorded in the database first, then in its own deadline, started when the ping was sent.
async fn ping_back(shared: &Shared, listener: &mut PgListener, payload: &str) -> Result<(), sqlx::Error> {
    let Some((holder, number)) = payload.split_once(' ') else { return Ok(()) };
    let Ok(number) = number.parse::<u64>() else { return Ok(()) };
    if holder != shared.holder {
        return Ok(());
    }
    let sent = {
        let mut memory = shared.memory();
        while memory.pings.front().is_some_and(|(sent, _)| *sent < number) {
            memory.pings.pop_front();
        }
        match memory.pings.front() {
            Some((sent, at)) if *sent == number => *at,
            _ => return Ok(()),
        }
    };
    leases::alive(&mut *listener, &shared.holder).await?;
    let mut memory = shared.memory();
    if memory.listening {
        memory.alive_until = Some(sent + leases::ALIVE_FOR - leases::ALIVE_FOR / 10);
    }
    Ok(())
}

/// The pinger: while the listener listens, a ping every [`leases::PING_EVERY`].
async fn ping(shared: Arc<Shared>) {
    const KEPT: usize = 16;
    let mut every = tokio::time::interval(leases::PING_EVERY);
    for number in 0u64.. {
        every.tick().await;
        {
            let mut memory = shared.memory();
            if !memory.listening {
                continue;
            }
            if memory.pings.len() >= KEPT {
                memory.pings.pop_front();
            }
            memory.pings.push_back((number, Instant::now()));
        }
        if let Err(error) = leases::ping(&shared.pool, &shared.holder, number).await {
            tracing::warn!(%error, "could not ping the read lease listener");
        }
    }
}

#[cfg(test)]
mod tests {
    use amazon_rewards_protocol::catalog::ItemStack;

    use super::*;
    use crate::inventory::ledger::{self, Change, ChangeKind};
    use crate::inventory::unchanged::UnchangedReads;
    use crate::link::sessions::token_hash;

    async fn grant(pool: &AnyPool, user_id: &str, key: &str) {
        let gems = [ItemStack { item: "gem".into(), quantity: 1 }];
        let change =
            Change { kind: ChangeKind::Grant, source: "TEST", key, sku: None, items: &gems, active_until: None };
        ledger::apply(pool, user_id, change).await.unwrap();
    }

    /// Reads `hash` on `reads` until its answer is remembered under a lease (the leaser works in the
    /// background), and answers the version read.
    async fn until_leased(reads: &UnchangedReads, hash: &str) -> i64 {
        let leased = reads.leased().expect("PostgreSQL and a lease");
        for _ in 0..500 {
            let (_, version) = reads.holder_and_version(hash.to_owned()).await.unwrap().unwrap();
            if leased.remembers(hash) {
                return version;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no lease was taken in 5 s");
    }

    async fn live_leases(pool: &AnyPool, user_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM inventory_leases WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_in_another_process_is_seen_by_the_next_read_of_a_leased_answer() {
        let server = test_postgres::TestPostgres::start();
        let url = server.fresh_database();
        let (pool, other) = (crate::db::open(&url).await.unwrap(), crate::db::open(&url).await.unwrap());
        let session = crate::link::session_without_link(&pool, "amzn1.account.LEASED", "game").await.unwrap();
        let (user_id, hash) = (session.user_id.clone(), token_hash(&session.tokens.access_token));
        let reads = UnchangedReads::new(pool.clone(), Duration::from_secs(10));
        for round in 1..=15 {
            assert_eq!(until_leased(&reads, &hash).await, round - 1);
            assert_eq!(live_leases(&other, &user_id).await, 1);
            // The other process's write: it returns only once this one has forgotten.
            grant(&other, &user_id, &format!("round-{round}")).await;
            assert!(!reads.leased().unwrap().remembers(&hash), "round {round}: forgotten before the commit");
            let (_, version) = reads.holder_and_version(hash.clone()).await.unwrap().unwrap();
            assert_eq!(version, round, "round {round}");
        }
        // A broken link and a session's end are writes too.
        until_leased(&reads, &hash).await;
        crate::accounts::mark_link_broken(&other, &user_id).await.unwrap();
        let (holder, _) = reads.holder_and_version(hash.clone()).await.unwrap().unwrap();
        assert!(holder.link_broken);
        crate::accounts::clear_link_broken(&mut other.acquire().await.unwrap(), &user_id).await.unwrap();
        until_leased(&reads, &hash).await;
        crate::link::sessions::sign_out(&other, &session.tokens.access_token).await.unwrap();
        assert!(reads.holder_and_version(hash.clone()).await.unwrap().is_none(), "signed out");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_holder_that_cannot_be_told_delays_a_write_until_its_life_runs_out_not_its_lease() {
        let server = test_postgres::TestPostgres::start();
        let pool = crate::db::open(&server.fresh_database()).await.unwrap();
        let user_id = crate::link::session_without_link(&pool, "amzn1.account.GONE", "game").await.unwrap().user_id;
        grant(&pool, &user_id, "before").await;
        // A process that took a lease of a minute and is gone (its last ping came back just now, so it counts
        // as alive for 1.5 s more): no listener answers.
        sqlx::query(
            "WITH now AS (SELECT CAST(floor(extract(epoch FROM clock_timestamp()) * 1000) AS BIGINT) AS ms),
             lease AS (INSERT INTO inventory_leases (user_id, holder, expires_at) SELECT $1, 'gone', ms + 60000 FROM now),
             holder AS (INSERT INTO lease_holders (holder, alive_until) SELECT 'gone', ms + 1500 FROM now)
             UPDATE inventory_versions SET leased_until = 0 WHERE user_id = $1",
        )
        .bind(&user_id)
        .execute(&pool)
        .await
        .unwrap();
        let started = Instant::now();
        grant(&pool, &user_id, "after").await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(1300) && waited < Duration::from_secs(5), "{waited:?}");
        assert_eq!(live_leases(&pool, &user_id).await, 0);
        let leased: Option<i64> = sqlx::query_scalar("SELECT leased_until FROM inventory_versions WHERE user_id = $1")
            .bind(&user_id)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(leased, None, "the next write need not ask");
        // Without a lease, a write waits for nothing.
        let started = Instant::now();
        grant(&pool, &user_id, "later").await;
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_listener_cut_off_forgets_everything_and_remembers_again_once_back() {
        let server = test_postgres::TestPostgres::start();
        let pool = crate::db::open(&server.fresh_database()).await.unwrap();
        let session = crate::link::session_without_link(&pool, "amzn1.account.CUT", "game").await.unwrap();
        let (user_id, hash) = (session.user_id.clone(), token_hash(&session.tokens.access_token));
        let reads = UnchangedReads::new(pool.clone(), Duration::from_secs(60));
        until_leased(&reads, &hash).await;
        let cut: Vec<i32> = sqlx::query_scalar(
            "WITH listening AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE application_name = $1)
             SELECT pid FROM listening WHERE pg_terminate_backend(pid)",
        )
        .bind(LISTENER_NAME)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(cut.len(), 1, "one listener");
        let started = Instant::now();
        while reads.leased().unwrap().remembers(&hash) {
            assert!(started.elapsed() < leases::ALIVE_FOR, "still answering from memory");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Its leases went with its memory (or run out with its life): a write does not wait for it.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let started = Instant::now();
        grant(&pool, &user_id, "after the cut").await;
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
        assert_eq!(until_leased(&reads, &hash).await, 1, "leased again, with the write");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn more_writers_on_leased_players_than_pooled_connections_all_commit_at_once() {
        let server = test_postgres::TestPostgres::start();
        let url = server.fresh_database();
        let (pool, other) = (crate::db::open(&url).await.unwrap(), crate::db::open(&url).await.unwrap());
        let reads = UnchangedReads::new(pool.clone(), Duration::from_secs(30));
        let mut players = Vec::new();
        for n in 0..24 {
            let session =
                crate::link::session_without_link(&pool, &format!("amzn1.account.BUSY{n}"), "game").await.unwrap();
            let hash = token_hash(&session.tokens.access_token);
            until_leased(&reads, &hash).await;
            players.push(session.user_id);
        }
        // Every pooled connection of the writers' process is a writer's, waiting for the holder to forget: the
        // holder must still be told.
        let started = Instant::now();
        let writes = players.iter().map(|user_id| {
            let (other, user_id) = (other.clone(), user_id.clone());
            tokio::spawn(async move { grant(&other, &user_id, "busy").await })
        });
        for write in writes.collect::<Vec<_>>() {
            write.await.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_teller_cut_off_connects_again_and_the_holder_is_told_again() {
        let server = test_postgres::TestPostgres::start();
        let url = server.fresh_database();
        let (pool, other) = (crate::db::open(&url).await.unwrap(), crate::db::open(&url).await.unwrap());
        let session = crate::link::session_without_link(&pool, "amzn1.account.RETOLD", "game").await.unwrap();
        let (user_id, hash) = (session.user_id.clone(), token_hash(&session.tokens.access_token));
        let reads = UnchangedReads::new(pool.clone(), Duration::from_secs(60));
        until_leased(&reads, &hash).await;
        grant(&other, &user_id, "the teller connects").await;
        until_leased(&reads, &hash).await;
        let cut: Vec<i32> = sqlx::query_scalar(
            "WITH telling AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE application_name = $1)
             SELECT pid FROM telling WHERE pg_terminate_backend(pid)",
        )
        .bind(crate::inventory::teller::TELLER_NAME)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(cut.len(), 1, "one teller");
        // The first tell fails on the lost connection; the next one, a tenth of a second later, connects again.
        let started = Instant::now();
        grant(&other, &user_id, "the teller was cut off").await;
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert!(!reads.leased().unwrap().remembers(&hash));
        assert_eq!(until_leased(&reads, &hash).await, 2);
    }

    #[tokio::test]
    async fn sqlite_and_a_zero_lease_remember_nothing() {
        let (_dir, sqlite) = crate::db::test_database().await;
        assert!(LeasedAnswers::new(sqlite, Duration::from_secs(10)).is_none());
        let server = test_postgres::TestPostgres::start();
        let pool = crate::db::open(&server.fresh_database()).await.unwrap();
        assert!(LeasedAnswers::new(pool.clone(), Duration::ZERO).is_none());
        assert!(LeasedAnswers::new(pool, Duration::from_secs(1)).is_some());
    }
}
