//! Cross-node change notifications over Postgres `LISTEN`/`NOTIFY`.

use super::{StoreError, RESYNC_TOPIC};
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::mpsc;

/// Topics waiting for a slow subscriber before the listener task waits for it.
const BUFFER: usize = 256;
/// Pause before retrying after the listener could not reach the database.
const RETRY: Duration = Duration::from_secs(1);

/// `pg_notify` rather than `NOTIFY … 'topic'`: the topic travels as a bound parameter.
pub(super) async fn publish<'e, E>(e: E, topic: &str) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query("SELECT pg_notify($1, $2)").bind(super::CHANGES_CHANNEL).bind(topic).execute(e).await?;
    Ok(())
}

/// Start listening (returns once `LISTEN` is active, so later publishes are seen) and forward
/// payloads from a background task until the receiver is dropped. The listener has its own
/// one-connection pool with the store's options, so it never holds a store connection.
pub(super) async fn subscribe_to(pool: &PgPool, channel: &'static str) -> Result<mpsc::Receiver<String>, StoreError> {
    let own = PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with((*pool.connect_options()).clone())
        .await?;
    let listener = listen(&own, channel).await?;
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        forward(&own, channel, listener, &tx).await;
        own.close().await;
    });
    Ok(rx)
}

async fn listen(own: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(own).await?;
    // A lost connection is re-established here (fresh listener), not inside `try_recv`.
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

/// Runs until the subscriber goes away. After the connection is lost, whatever was published
/// meanwhile is gone, so once listening again the subscriber gets [`RESYNC_TOPIC`].
async fn forward(own: &PgPool, channel: &str, first: PgListener, tx: &mpsc::Sender<String>) {
    let mut current = Some(first);
    loop {
        let topic = match current.as_mut() {
            Some(listener) => {
                let next = tokio::select! {
                    _ = tx.closed() => return,
                    next = listener.try_recv() => next,
                };
                match next {
                    Ok(Some(n)) => n.payload().to_owned(),
                    // Connection lost. Drop the listener before reconnecting: it may hold the
                    // pool's only connection.
                    Ok(None) => {
                        current = None;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "change listener failed; reconnecting");
                        current = None;
                        continue;
                    }
                }
            }
            None => {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
                match listen(own, channel).await {
                    Ok(l) => current = Some(l),
                    Err(e) => {
                        tracing::warn!(error = %e, "change listener cannot reach the database");
                        continue;
                    }
                }
                RESYNC_TOPIC.to_owned()
            }
        };
        if tx.send(topic).await.is_err() {
            return;
        }
    }
}
