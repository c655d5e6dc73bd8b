//! One backend from the shared queries: [`backend!`] expands in `sqlite.rs` and `postgres.rs`
//! to a module per concern (each concern's queries written once, in its `*_queries!` macro)
//! and the `impl Store` that delegates to them, so a new query or trait method is written in
//! one place for both databases.
//!
//! The expanding module provides what truly differs between the databases:
//! - `Pool`, `Db`, `DbRow`: the sqlx pool, database and row types;
//! - `sql(&'static str)`: turns the `?`-placeholder text into the backend's own;
//! - `begin_settle(pool, payers)`: a transaction in which settles on these payers run one at a
//!   time (each payer's settles wait for the others');
//! - `publish_change(pool, topic)` and `subscribe_changes(pool)`: cross-node notifications;
//!   `rates_changed(tx)`: tell every node, at commit, that the rate table changed;
//! - `abandoned_scope(node)`: whose open sessions a starting node may close as abandoned;
//! - `renew_lease`, `reap_lost_nodes`, `publish_event`, `subscribe_events`: several nodes
//!   (`postgres_nodes.rs`, `sqlite_nodes.rs`);
//! - a `pool` field on the store type.

/// Generate the query modules and `impl Store for $store`.
macro_rules! backend {
    ($store:ty) => {
        mod sessions {
            crate::store::sessions::session_queries!();
        }
        mod ledger {
            crate::store::ledger::ledger_queries!();
        }
        mod orgs {
            crate::store::orgs::org_queries!();
        }
        mod rates {
            crate::store::rates::rate_queries!();
        }
        mod access {
            crate::store::access::access_queries!();
        }
        mod transcript {
            crate::store::transcript::transcript_queries!();
        }

        #[async_trait::async_trait]
        impl crate::store::Store for $store {
            async fn open_session(&self, row: &crate::store::SessionRow) -> Result<(), crate::store::StoreError> {
                sessions::open_session(&self.pool, row).await
            }
            async fn close_session(
                &self,
                session_id: &str,
                ended_at_ms: i64,
                reason: &str,
            ) -> Result<(), crate::store::StoreError> {
                sessions::close_session(&self.pool, session_id, ended_at_ms, reason).await
            }
            async fn session(
                &self,
                session_id: &str,
            ) -> Result<Option<crate::store::SessionRow>, crate::store::StoreError> {
                sessions::session(&self.pool, session_id).await
            }
            async fn session_by_call_sid(
                &self,
                call_sid: &str,
            ) -> Result<Option<crate::store::SessionRow>, crate::store::StoreError> {
                sessions::session_by_call_sid(&self.pool, call_sid).await
            }
            async fn insert_usage(&self, rec: &crate::UsageRecord) -> Result<bool, crate::store::StoreError> {
                sessions::insert_usage_on(&self.pool, rec).await
            }
            async fn usage_for_session(
                &self,
                session_id: &str,
            ) -> Result<Vec<crate::UsageRecord>, crate::store::StoreError> {
                sessions::usage_for_session(&self.pool, session_id).await
            }
            async fn close_abandoned(&self, node_id: &str) -> Result<u64, crate::store::StoreError> {
                sessions::close_abandoned(&self.pool, abandoned_scope(node_id)).await
            }
            async fn renew_lease(&self, node_id: &str, lease_ms: i64) -> Result<bool, crate::store::StoreError> {
                renew_lease(&self.pool, node_id, lease_ms).await
            }
            async fn reap_lost_nodes(&self) -> Result<Vec<crate::store::LostSession>, crate::store::StoreError> {
                reap_lost_nodes(&self.pool).await
            }
            async fn publish_event(&self, payload: &str) -> Result<(), crate::store::StoreError> {
                publish_event(&self.pool, payload).await
            }
            async fn subscribe_events(
                &self,
            ) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, crate::store::StoreError> {
                subscribe_events(&self.pool).await
            }
            async fn usage_for_org(
                &self,
                org_id: &str,
                from_ms: i64,
                to_ms: i64,
            ) -> Result<Vec<crate::UsageRecord>, crate::store::StoreError> {
                sessions::usage_for_org(&self.pool, org_id, from_ms, to_ms).await
            }
            async fn open_sessions(&self, org_id: &str) -> Result<i64, crate::store::StoreError> {
                sessions::open_sessions(&self.pool, org_id).await
            }
            async fn list_sessions(
                &self,
                org_id: Option<&str>,
                from_ms: i64,
                to_ms: i64,
                limit: i64,
            ) -> Result<Vec<crate::store::SessionRow>, crate::store::StoreError> {
                sessions::list_sessions(&self.pool, org_id, from_ms, to_ms, limit).await
            }

            async fn settle(
                &self,
                payer_org_id: &str,
                rec: &crate::UsageRecord,
            ) -> Result<Vec<crate::UsageRecord>, crate::store::StoreError> {
                ledger::settle_one(&self.pool, payer_org_id, std::slice::from_ref(rec), "", &[]).await
            }
            async fn settle_checkpoint(
                &self,
                payer_org_id: &str,
                recs: &[crate::UsageRecord],
                session_id: &str,
                lines: &[crate::store::TranscriptLine],
            ) -> Result<Vec<crate::UsageRecord>, crate::store::StoreError> {
                ledger::settle_one(&self.pool, payer_org_id, recs, session_id, lines).await
            }
            async fn settle_checkpoints(
                &self,
                batch: &[crate::store::Checkpoint<'_>],
            ) -> Result<Vec<crate::store::Settled>, crate::store::StoreError> {
                ledger::settle_checkpoints(&self.pool, batch).await
            }
            async fn add_wallet(
                &self,
                org_id: &str,
                amount_micros: i64,
                reference: &str,
            ) -> Result<i64, crate::store::StoreError> {
                ledger::add_wallet(&self.pool, org_id, amount_micros, reference).await
            }
            async fn put_hold(
                &self,
                session_id: &str,
                org_id: &str,
                amount_micros: i64,
            ) -> Result<(), crate::store::StoreError> {
                ledger::put_hold(&self.pool, session_id, org_id, amount_micros).await
            }
            async fn release_hold(&self, session_id: &str) -> Result<(), crate::store::StoreError> {
                ledger::release_hold(&self.pool, session_id).await
            }
            async fn held(&self, org_id: &str, except_session: Option<&str>) -> Result<i64, crate::store::StoreError> {
                ledger::held(&self.pool, org_id, except_session).await
            }
            async fn funds(
                &self,
                org_id: &str,
                except_session: Option<&str>,
            ) -> Result<Option<crate::store::FundsRow>, crate::store::StoreError> {
                ledger::funds(&self.pool, org_id, except_session).await
            }
            async fn place_hold(
                &self,
                session_id: &str,
                org_id: &str,
                amount_micros: i64,
            ) -> Result<bool, crate::store::StoreError> {
                ledger::place_hold(&self.pool, session_id, org_id, amount_micros).await
            }

            async fn upsert_plan(&self, plan: &crate::org::Plan) -> Result<(), crate::store::StoreError> {
                orgs::upsert_plan(&self.pool, plan).await
            }
            async fn plan(&self, id: &str) -> Result<Option<crate::org::Plan>, crate::store::StoreError> {
                orgs::plan(&self.pool, id).await
            }
            async fn plan_ids(&self) -> Result<Vec<String>, crate::store::StoreError> {
                orgs::plan_ids(&self.pool).await
            }
            async fn create_org(
                &self,
                org: &crate::store::OrgRow,
                key_hash: &str,
                key_prefix: &str,
            ) -> Result<(), crate::store::StoreError> {
                orgs::create_org(&self.pool, org, key_hash, key_prefix).await
            }
            async fn org(&self, id: &str) -> Result<Option<crate::store::OrgRow>, crate::store::StoreError> {
                orgs::org(&self.pool, id).await
            }
            async fn orgs(&self) -> Result<Vec<crate::store::OrgRow>, crate::store::StoreError> {
                orgs::orgs(&self.pool).await
            }
            async fn org_by_key_hash(
                &self,
                key_hash: &str,
            ) -> Result<Option<crate::store::OrgRow>, crate::store::StoreError> {
                orgs::org_by_key_hash(&self.pool, key_hash).await
            }
            async fn update_org(&self, org: &crate::store::OrgRow) -> Result<(), crate::store::StoreError> {
                orgs::update_org(&self.pool, org).await
            }
            async fn put_credential(
                &self,
                c: &crate::store::CredentialRow,
            ) -> Result<String, crate::store::StoreError> {
                orgs::put_credential(&self.pool, c).await
            }
            async fn credentials(
                &self,
                org_id: &str,
            ) -> Result<Vec<crate::org::StoredCredential>, crate::store::StoreError> {
                orgs::credentials(&self.pool, org_id).await
            }
            async fn delete_credential(&self, org_id: &str, id: &str) -> Result<bool, crate::store::StoreError> {
                orgs::delete_credential(&self.pool, org_id, id).await
            }
            async fn all_credentials(&self) -> Result<Vec<crate::org::StoredCredential>, crate::store::StoreError> {
                orgs::all_credentials(&self.pool).await
            }
            async fn reseal_credential(&self, id: &str, sealed: &str) -> Result<(), crate::store::StoreError> {
                orgs::reseal_credential(&self.pool, id, sealed).await
            }
            async fn set_slot(
                &self,
                org_id: &str,
                service: &str,
                credential_id: Option<&str>,
            ) -> Result<(), crate::store::StoreError> {
                orgs::set_slot(&self.pool, org_id, service, credential_id).await
            }
            async fn slots(
                &self,
                org_id: &str,
            ) -> Result<std::collections::HashMap<String, String>, crate::store::StoreError> {
                orgs::slots(&self.pool, org_id).await
            }
            async fn create_agent(
                &self,
                id: &str,
                org_id: &str,
                spec_json: &str,
            ) -> Result<(), crate::store::StoreError> {
                orgs::create_agent(&self.pool, id, org_id, spec_json).await
            }
            async fn agent(&self, id: &str) -> Result<Option<(String, String)>, crate::store::StoreError> {
                orgs::agent(&self.pool, id).await
            }
            async fn agents(&self, org_id: &str) -> Result<Vec<(String, String)>, crate::store::StoreError> {
                orgs::agents(&self.pool, org_id).await
            }
            async fn update_agent(
                &self,
                id: &str,
                org_id: &str,
                spec_json: &str,
            ) -> Result<bool, crate::store::StoreError> {
                orgs::update_agent(&self.pool, id, org_id, spec_json).await
            }

            async fn rates(&self) -> Result<crate::RateTable, crate::store::StoreError> {
                rates::rates(&self.pool).await
            }
            async fn seed_rates(&self, table: &crate::RateTable) -> Result<u64, crate::store::StoreError> {
                rates::seed_rates(&self.pool, table).await
            }
            async fn set_managed(
                &self,
                provider: &str,
                service: Option<&str>,
                managed: bool,
            ) -> Result<u64, crate::store::StoreError> {
                rates::set_managed(&self.pool, provider, service, managed).await
            }
            async fn upsert_rate(&self, rate: &crate::Rate) -> Result<(), crate::store::StoreError> {
                rates::upsert_rate(&self.pool, rate).await
            }
            async fn rates_version(&self) -> Result<i64, crate::store::StoreError> {
                rates::rates_version(&self.pool).await
            }

            async fn publish_change(&self, topic: &str) -> Result<(), crate::store::StoreError> {
                publish_change(&self.pool, topic).await
            }
            async fn subscribe_changes(
                &self,
            ) -> Result<Option<tokio::sync::mpsc::Receiver<String>>, crate::store::StoreError> {
                subscribe_changes(&self.pool).await
            }

            async fn create_number(&self, n: &crate::store::NumberRow) -> Result<bool, crate::store::StoreError> {
                access::create_number(&self.pool, n).await
            }
            async fn numbers(&self, org_id: &str) -> Result<Vec<crate::store::NumberRow>, crate::store::StoreError> {
                access::numbers(&self.pool, org_id).await
            }
            async fn delete_number(&self, org_id: &str, id: &str) -> Result<bool, crate::store::StoreError> {
                access::delete_number(&self.pool, org_id, id).await
            }
            async fn number(&self, e164: &str) -> Result<Option<crate::store::NumberRow>, crate::store::StoreError> {
                access::number(&self.pool, e164).await
            }
            async fn put_stream_token(
                &self,
                t: &crate::store::StreamTokenRow,
            ) -> Result<bool, crate::store::StoreError> {
                access::put_stream_token(&self.pool, t).await
            }
            async fn consume_stream_token(
                &self,
                sid: &str,
                now_ms: i64,
            ) -> Result<crate::store::TokenUse, crate::store::StoreError> {
                access::consume_stream_token(&self.pool, sid, now_ms).await
            }
            async fn purge_stream_tokens(&self, before_ms: i64) -> Result<u64, crate::store::StoreError> {
                access::purge_stream_tokens(&self.pool, before_ms).await
            }

            async fn append_transcript(
                &self,
                session_id: &str,
                line: &crate::store::TranscriptLine,
            ) -> Result<(), crate::store::StoreError> {
                transcript::append_transcript(&self.pool, session_id, line).await
            }
            async fn transcript(
                &self,
                session_id: &str,
            ) -> Result<Vec<crate::store::TranscriptLine>, crate::store::StoreError> {
                transcript::transcript(&self.pool, session_id).await
            }
        }
    };
}
pub(super) use backend;
