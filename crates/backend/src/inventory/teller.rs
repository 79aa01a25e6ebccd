//! The teller: one connection per database and process, outside the pool, on which writers tell read-lease
//! holders to forget a player ([`super::leases::clear`]). A writer already holds a pooled connection while it
//! tells; were telling to take a second one, writers holding every pooled connection would wait for holders
//! no one could tell. The teller sends what writers hand it in batches, one `pg_notify` statement each.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

/// The application name the teller's connection shows in `pg_stat_activity`.
pub const TELLER_NAME: &str = "rewards-backend read lease teller";

/// Players one statement names at most.
const MAX_BATCH: usize = 512;

/// Writers waiting for the teller at most (more wait for room).
const QUEUE: usize = 4096;

/// How long a writer waits for its notification to go out before it waits the leases out instead.
const TELL_WITHIN: Duration = Duration::from_secs(1);

/// A player to name on a channel, and where to say whether the notification went out.
type Request = (&'static str, String, oneshot::Sender<bool>);

/// Each database's teller, by URL. A teller lives in the runtime that first needed it; one whose runtime has
/// stopped (its receiver gone) is replaced by the next writer.
static TELLERS: OnceLock<Mutex<HashMap<String, mpsc::Sender<Request>>>> = OnceLock::new();

/// Sends `payload` on `channel` of `pool`'s database through its teller; whether it went out. Best effort:
/// the caller waits out a holder not told.
pub(crate) async fn tell(pool: &AnyPool, channel: &'static str, payload: &str) -> bool {
    let (reply, told) = oneshot::channel();
    let request = (channel, payload.to_owned(), reply);
    let sent = async { teller_of(pool).send(request).await.is_ok() && told.await.unwrap_or(false) };
    tokio::time::timeout(TELL_WITHIN, sent).await.unwrap_or(false)
}

fn teller_of(pool: &AnyPool) -> mpsc::Sender<Request> {
    let url = pool.connect_options().database_url.to_string();
    let mut tellers = TELLERS.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(teller) = tellers.get(&url).filter(|teller| !teller.is_closed()) {
        return teller.clone();
    }
    let (teller, requests) = mpsc::channel(QUEUE);
    tokio::spawn(serve(url.clone(), requests));
    tellers.insert(url, teller.clone());
    teller
}

/// Sends each batch of waiting requests in one statement, connecting when it has no connection.
async fn serve(url: String, mut requests: mpsc::Receiver<Request>) {
    let mut connection: Option<PgConnection> = None;
    let mut batch = Vec::new();
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let told = tokio::time::timeout(TELL_WITHIN, send(&url, &mut connection, &batch)).await;
        let told = match told {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::debug!(%error, "the read lease teller could not tell; holders are waited out");
                false
            }
            Err(_) => false,
        };
        if !told {
            connection = None;
        }
        for (_, _, reply) in batch.drain(..) {
            let _ = reply.send(told);
        }
    }
}

async fn send(url: &str, connection: &mut Option<PgConnection>, batch: &[Request]) -> Result<(), sqlx::Error> {
    let connection = match connection {
        Some(connection) => connection,
        None => {
            let options = url.parse::<PgConnectOptions>()?.application_name(TELLER_NAME);
            connection.insert(PgConnection::connect_with(&options).await?)
        }
    };
    let channels: Vec<&str> = batch.iter().map(|(channel, _, _)| *channel).collect();
    let payloads: Vec<&str> = batch.iter().map(|(_, payload, _)| payload.as_str()).collect();
    sqlx::query("SELECT count(*) FROM (SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)) AS told")
        .bind(&channels)
        .bind(&payloads)
        .execute(&mut *connection)
        .await?;
    Ok(())
}
