//! What was said on a call, kept after it ends so a call's page can show it. Written by the
//! session's ledger task (never the turn loop), read by the calls API. Each query is written
//! once and compiled for both backends by [`transcript_queries!`].

use serde::{Deserialize, Serialize};

/// One line of a call's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TranscriptLine {
    /// Order within the session, from 0.
    pub seq: i64,
    pub at_ms: i64,
    pub speaker: Speaker,
    pub text: String,
    /// The agent's line was cut short by the caller; `text` is what was played.
    pub interrupted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Caller,
    Agent,
}

impl Speaker {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Speaker::Caller => "caller",
            Speaker::Agent => "agent",
        }
    }

    pub(super) fn parse(s: &str) -> Result<Speaker, super::StoreError> {
        match s {
            "caller" => Ok(Speaker::Caller),
            "agent" => Ok(Speaker::Agent),
            other => Err(super::StoreError::Corrupt(format!("unknown transcript speaker {other:?}"))),
        }
    }
}

/// The transcript queries over one backend (see `session_queries!` for what they expect in scope).
macro_rules! transcript_queries {
    () => {
        use super::{sql, Db, DbRow, Pool};
        use crate::store::transcript::{Speaker, TranscriptLine};
        use crate::store::StoreError;
        use sqlx::Row;

        pub(super) async fn append_transcript(
            pool: &Pool,
            session_id: &str,
            line: &TranscriptLine,
        ) -> Result<(), StoreError> {
            insert_line(pool, session_id, line).await
        }

        /// Idempotent: a line already written under its `seq` is left as it is.
        pub(super) async fn insert_line<'e, E>(e: E, session_id: &str, line: &TranscriptLine) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'e, Database = Db>,
        {
            let q = sql("INSERT INTO transcript_lines (session_id, seq, at_ms, speaker, text, interrupted)
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, seq) DO NOTHING");
            sqlx::query(q)
                .bind(session_id)
                .bind(line.seq)
                .bind(line.at_ms)
                .bind(line.speaker.as_str())
                .bind(&line.text)
                .bind(i64::from(line.interrupted))
                .execute(e)
                .await?;
            Ok(())
        }

        pub(super) async fn transcript(pool: &Pool, session_id: &str) -> Result<Vec<TranscriptLine>, StoreError> {
            let q = sql("SELECT * FROM transcript_lines WHERE session_id = ? ORDER BY seq");
            let rows = sqlx::query(q).bind(session_id).fetch_all(pool).await?;
            rows.iter()
                .map(|r: &DbRow| {
                    Ok(TranscriptLine {
                        seq: r.try_get("seq")?,
                        at_ms: r.try_get("at_ms")?,
                        speaker: Speaker::parse(&r.try_get::<String, _>("speaker")?)?,
                        text: r.try_get("text")?,
                        interrupted: r.try_get::<i64, _>("interrupted")? != 0,
                    })
                })
                .collect()
        }
    };
}
pub(super) use transcript_queries;
