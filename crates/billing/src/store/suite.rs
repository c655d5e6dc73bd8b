//! The store's story suite. Every story takes `&dyn Store` and runs once per backend (SQLite in
//! memory, and a fresh Postgres database), so both implementations keep the same behaviour.
//! Postgres: `SWITCHBOARD_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/postgres`.

use super::pg_testdb::TestDb;
use super::*;
use crate::org::{Plan, StoredCredential};
use crate::{BilledTo, MicroUsd, Service, UsageUnit};
use std::collections::HashMap;

/// 2023-11-14 (UTC): a fixed "now" inside one credit month.
const T: i64 = 1_700_000_000_000;

fn rec(session: &str, line: &str, seq: u32, amount: i64, created_at_ms: i64) -> UsageRecord {
    UsageRecord {
        session_id: session.into(),
        line: line.into(),
        seq,
        service: Service::Stt,
        provider: "deepgram".into(),
        model: "nova-3".into(),
        quantity: amount as f64 / 10.0,
        quantity_atoms: amount * 100,
        unit: UsageUnit::AudioSeconds,
        billed_to: BilledTo::Managed,
        amount_micros: MicroUsd(amount),
        list_micros: MicroUsd(amount * 2),
        org_id: "acme".into(),
        estimated: false,
        credential_id: "managed:deepgram".into(),
        created_at_ms,
    }
}

fn session_row(id: &str, call_sid: Option<&str>, started_at_ms: i64) -> SessionRow {
    SessionRow {
        session_id: id.into(),
        call_sid: call_sid.map(Into::into),
        org_id: "acme".into(),
        gateway: "twilio".into(),
        status: "open".into(),
        started_at_ms,
        ended_at_ms: None,
        end_reason: None,
        plan_json: r#"{"stt":"deepgram"}"#.into(),
        node_id: None,
    }
}

fn plan(id: &str, credits: i64) -> Plan {
    Plan {
        id: id.into(),
        monthly_credit_micros: credits,
        byok_allowed: true,
        allowed_models: None,
        byok_markup_bps: 500,
        platform_fee_micros_per_minute: 0,
        max_concurrent_calls: 0,
    }
}

fn org_row(id: &str, plan_id: &str) -> OrgRow {
    OrgRow {
        id: id.into(),
        name: format!("{id} inc"),
        plan_id: plan_id.into(),
        parent_org_id: None,
        wallet_micros: 0,
        credits_used_micros: 0,
        credits_period: period_of(T),
        use_own_keys: false,
        wallet_deduction: false,
        negative_limit_micros: 0,
    }
}

/// A `tiny` plan (100 µUSD of credits) and org `id` on it with `wallet` in its wallet.
async fn tiny_org(s: &dyn Store, id: &str, wallet: i64) {
    s.upsert_plan(&plan("tiny", 100)).await.unwrap();
    let o = OrgRow { wallet_micros: wallet, ..org_row(id, "tiny") };
    s.create_org(&o, &format!("hash-{id}"), "sk_test").await.unwrap();
}

async fn org_of(s: &dyn Store, id: &str) -> OrgRow {
    s.org(id).await.unwrap().expect("org exists")
}

pub(super) async fn sessions(s: &dyn Store) {
    let s1 = session_row("s1", Some("CA1"), 5);
    s.open_session(&s1).await.unwrap();
    s.open_session(&session_row("s2", Some("CA1"), 50)).await.unwrap();
    s.open_session(&session_row("s3", None, 7)).await.unwrap();
    assert_eq!(s.session("s1").await.unwrap(), Some(s1));
    assert_eq!(s.session("nope").await.unwrap(), None);
    assert!(s.open_session(&session_row("s1", None, 1)).await.is_err());

    s.close_session("s2", 99, "hangup").await.unwrap();
    s.close_session("s2", 120, "again").await.unwrap();
    let s2 = s.session("s2").await.unwrap().unwrap();
    assert_eq!(
        (s2.status.as_str(), s2.ended_at_ms, s2.end_reason.as_deref()),
        ("closed", Some(99), Some("hangup")),
        "closing twice keeps the first close"
    );
    // The latest session wins for a reused call sid.
    let by_sid = s.session_by_call_sid("CA1").await.unwrap().unwrap();
    assert_eq!(by_sid.session_id, "s2");
    assert_eq!(s.session_by_call_sid("CA404").await.unwrap(), None);

    s.insert_usage(&rec("s1", "stt", 3, 10, 13)).await.unwrap();
    assert_eq!(s.close_abandoned("n1").await.unwrap(), 2);
    let s1 = s.session("s1").await.unwrap().unwrap();
    assert_eq!(
        (s1.status.as_str(), s1.ended_at_ms, s1.end_reason.as_deref()),
        ("closed", Some(13), Some("abandoned")),
        "closed at the last usage checkpoint"
    );
    let s3 = s.session("s3").await.unwrap().unwrap();
    assert_eq!(s3.ended_at_ms, Some(7), "no usage: closed at its start");
    assert_eq!(s.close_abandoned("n1").await.unwrap(), 0);
    let s2 = s.session("s2").await.unwrap().unwrap();
    assert_eq!(s2.end_reason.as_deref(), Some("hangup"));
}

pub(super) async fn usage_idempotency(s: &dyn Store) {
    let r0 = rec("s1", "stt", 0, 120, 10);
    let r1 = UsageRecord { estimated: true, quantity: 1.25, ..rec("s1", "stt", 1, 7, 11) };
    assert!(s.insert_usage(&r0).await.unwrap());
    assert!(!s.insert_usage(&r0).await.unwrap(), "same key twice");
    assert!(
        !s.insert_usage(&UsageRecord { amount_micros: MicroUsd(999), ..r0.clone() }).await.unwrap(),
        "the key, not the content, decides"
    );
    assert!(s.insert_usage(&r1).await.unwrap());
    assert_eq!(s.usage_for_session("s1").await.unwrap(), vec![r0.clone(), r1.clone()]);
    assert_eq!(s.usage_for_org("acme", 10, 11).await.unwrap(), vec![r0]);
    assert_eq!(s.usage_for_org("acme", 11, 12).await.unwrap(), vec![r1]);
    assert!(s.usage_for_org("other", 0, 100).await.unwrap().is_empty());
}

pub(super) async fn plans(s: &dyn Store) {
    assert_eq!(s.plan("tiny").await.unwrap(), None);
    let mut p = plan("tiny", 100);
    s.upsert_plan(&p).await.unwrap();
    assert_eq!(s.plan("tiny").await.unwrap(), Some(p.clone()));
    p.monthly_credit_micros = 250;
    p.byok_allowed = false;
    p.allowed_models = Some(vec!["tts/cartesia/*".into(), "stt/deepgram/nova-3".into()]);
    s.upsert_plan(&p).await.unwrap();
    assert_eq!(s.plan("tiny").await.unwrap(), Some(p));

    // Seeding fills in missing defaults and leaves an edited default alone.
    let edited_free = plan("free", 42);
    s.upsert_plan(&edited_free).await.unwrap();
    seed_plans(s).await.unwrap();
    assert_eq!(s.plan("free").await.unwrap(), Some(edited_free));
    let pro = Plan::defaults().into_iter().find(|p| p.id == "pro").unwrap();
    assert_eq!(s.plan("pro").await.unwrap(), Some(pro));
}

pub(super) async fn orgs(s: &dyn Store) {
    s.upsert_plan(&plan("tiny", 100)).await.unwrap();
    s.upsert_plan(&plan("big", 1_000)).await.unwrap();
    let acme = OrgRow { wallet_micros: 500, credits_used_micros: 20, use_own_keys: true, ..org_row("acme", "tiny") };
    s.create_org(&acme, "hash-acme", "sk_live_ab").await.unwrap();
    let sub = OrgRow { parent_org_id: Some("acme".into()), ..org_row("acme-sub", "tiny") };
    s.create_org(&sub, "hash-sub", "sk_live_cd").await.unwrap();
    assert!(s.create_org(&acme, "hash-other", "sk").await.is_err(), "duplicate org id");

    assert_eq!(s.org("acme").await.unwrap(), Some(acme.clone()));
    assert_eq!(s.org_by_key_hash("hash-sub").await.unwrap(), Some(sub));
    assert_eq!(s.org_by_key_hash("hash-none").await.unwrap(), None);
    assert_eq!(s.org("nope").await.unwrap(), None);

    let changed = OrgRow {
        name: "Acme Corp".into(),
        plan_id: "big".into(),
        use_own_keys: false,
        wallet_deduction: true,
        negative_limit_micros: 300,
        // Balances in the row are ignored by update_org.
        wallet_micros: 1,
        credits_used_micros: 1,
        ..acme.clone()
    };
    s.update_org(&changed).await.unwrap();
    assert_eq!(
        s.org_by_key_hash("hash-acme").await.unwrap(),
        Some(OrgRow { wallet_micros: 500, credits_used_micros: 20, ..changed })
    );
}

pub(super) async fn wallet(s: &dyn Store) {
    tiny_org(s, "acme", 0).await;
    assert_eq!(s.add_wallet("acme", 500, "topup-1").await.unwrap(), 500);
    assert_eq!(s.add_wallet("acme", -200, "refund-1").await.unwrap(), 300);
    assert_eq!(org_of(s, "acme").await.wallet_micros, 300);
    assert!(s.add_wallet("nope", 10, "x").await.is_err());
}

fn cred(id: &str, org: &str, provider: &str, sealed: &str) -> CredentialRow {
    CredentialRow {
        id: id.into(),
        org_id: org.into(),
        provider: provider.into(),
        name: "default".into(),
        sealed: sealed.into(),
        last4: sealed[sealed.len() - 4..].into(),
    }
}

pub(super) async fn credentials_and_slots(s: &dyn Store) {
    tiny_org(s, "acme", 0).await;
    s.create_org(&org_row("beta", "tiny"), "hash-beta", "sk").await.unwrap();
    assert_eq!(s.put_credential(&cred("c1", "acme", "openai", "sealed-1111")).await.unwrap(), "c1");
    // Same (org, provider, name): replaced in place, keeping the first id.
    let replaced = cred("c9", "acme", "openai", "sealed-2222");
    assert_eq!(s.put_credential(&replaced).await.unwrap(), "c1");
    assert_eq!(s.put_credential(&cred("c3", "acme", "deepgram", "sealed-3333")).await.unwrap(), "c3");
    assert_eq!(s.put_credential(&cred("b1", "beta", "openai", "sealed-4444")).await.unwrap(), "b1");
    let listed = s.credentials("acme").await.unwrap();
    let view = |c: &StoredCredential| (c.id.clone(), c.provider.clone(), c.sealed.clone(), c.last4.clone());
    let mut got: Vec<_> = listed.iter().map(view).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("c1".into(), "openai".into(), "sealed-2222".into(), "2222".into()),
            ("c3".into(), "deepgram".into(), "sealed-3333".into(), "3333".into()),
        ]
    );
    assert!(listed.iter().all(|c| c.org_id == "acme" && c.name == "default"));

    s.set_slot("acme", "llm", Some("c1")).await.unwrap();
    s.set_slot("acme", "stt", Some("c3")).await.unwrap();
    s.set_slot("acme", "stt", Some("c1")).await.unwrap();
    s.set_slot("acme", "tts", Some("c3")).await.unwrap();
    s.set_slot("acme", "tts", None).await.unwrap();
    s.set_slot("beta", "llm", Some("b1")).await.unwrap();
    let slots = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    assert_eq!(s.slots("acme").await.unwrap(), slots(&[("llm", "c1"), ("stt", "c1")]));

    assert!(!s.delete_credential("beta", "c1").await.unwrap(), "another org's credential");
    assert_eq!(s.credentials("acme").await.unwrap().len(), 2);
    assert!(s.delete_credential("acme", "c1").await.unwrap());
    assert!(!s.delete_credential("acme", "c1").await.unwrap(), "already gone");
    assert_eq!(s.slots("acme").await.unwrap(), HashMap::new(), "its slots went with it");
    assert_eq!(s.slots("beta").await.unwrap(), slots(&[("llm", "b1")]));
    let left: Vec<_> = s.credentials("acme").await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(left, vec!["c3".to_string()]);
}

pub(super) async fn agents(s: &dyn Store) {
    tiny_org(s, "acme", 0).await;
    let spec = r#"{"prompt":"hi","tts":"cartesia"}"#;
    s.create_agent("a1", "acme", spec).await.unwrap();
    assert_eq!(s.agent("a1").await.unwrap(), Some(("acme".into(), spec.into())));
    assert_eq!(s.agent("a2").await.unwrap(), None);
    assert!(s.create_agent("a1", "acme", "{}").await.is_err());
    tiny_org(s, "beta", 0).await;
    s.create_agent("a2", "acme", "{}").await.unwrap();
    s.create_agent("b1", "beta", "{}").await.unwrap();
    let listed: Vec<String> = s.agents("acme").await.unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, vec!["a1".to_string(), "a2".to_string()], "only the org's own");
    assert!(s.update_agent("a2", "acme", r#"{"prompt":"new"}"#).await.unwrap());
    assert_eq!(s.agent("a2").await.unwrap(), Some(("acme".into(), r#"{"prompt":"new"}"#.into())));
    assert!(!s.update_agent("b1", "acme", "{}").await.unwrap(), "another org's agent is not updated");
    assert_eq!(s.agent("b1").await.unwrap(), Some(("beta".into(), "{}".into())));
    // The admin lists: every org by name, every plan id.
    let orgs: Vec<String> = s.orgs().await.unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(orgs, vec!["acme".to_string(), "beta".to_string()]);
    assert!(s.plan_ids().await.unwrap().contains(&"tiny".to_string()));
}

pub(super) async fn settle_credits_then_wallet(s: &dyn Store) {
    tiny_org(s, "acme", 1_000).await;
    let a = rec("s1", "stt", 0, 60, T);
    assert_eq!(s.settle("acme", &a).await.unwrap(), vec![a.clone()]);
    let o = org_of(s, "acme").await;
    assert_eq!((o.credits_used_micros, o.wallet_micros), (60, 1_000));

    // 40 credits left: 80 splits into 40 + 40, quantity and list price in proportion.
    let b = rec("s1", "stt", 1, 80, T + 1);
    let got = s.settle("acme", &b).await.unwrap();
    let credit = UsageRecord {
        quantity: 4.0,
        quantity_atoms: 4_000,
        amount_micros: MicroUsd(40),
        list_micros: MicroUsd(80),
        ..b.clone()
    };
    let wallet = UsageRecord { line: "stt@wallet".into(), billed_to: BilledTo::Wallet, ..credit.clone() };
    assert_eq!(got, vec![credit.clone(), wallet.clone()]);
    let o = org_of(s, "acme").await;
    assert_eq!((o.credits_used_micros, o.wallet_micros), (100, 960));

    // Credits gone: the whole record is the wallet's.
    let c = rec("s1", "stt", 2, 30, T + 2);
    let c_wallet = UsageRecord { billed_to: BilledTo::Wallet, ..c.clone() };
    assert_eq!(s.settle("acme", &c).await.unwrap(), vec![c_wallet.clone()]);
    let o = org_of(s, "acme").await;
    assert_eq!((o.credits_used_micros, o.wallet_micros), (100, 930));

    let stored = s.usage_for_session("s1").await.unwrap();
    assert_eq!(stored, vec![a.clone(), credit.clone(), wallet.clone(), c_wallet.clone()]);
    assert_eq!(s.usage_for_org("acme", T, T + 3).await.unwrap(), stored);
}

pub(super) async fn settle_byok_keeps_its_tag(s: &dyn Store) {
    tiny_org(s, "acme", 1_000).await;
    s.settle("acme", &rec("s1", "stt", 0, 90, T)).await.unwrap();
    // 10 credits left; the 25 µUSD markup takes them and 15 from the wallet, in one byok line.
    let markup =
        UsageRecord { billed_to: BilledTo::Byok, credential_id: "cred-1".into(), ..rec("s1", "llm", 0, 25, T + 1) };
    assert_eq!(s.settle("acme", &markup).await.unwrap(), vec![markup.clone()]);
    let o = org_of(s, "acme").await;
    assert_eq!((o.credits_used_micros, o.wallet_micros), (100, 985));
    let more = UsageRecord { seq: 1, ..markup };
    assert_eq!(s.settle("acme", &more).await.unwrap(), vec![more]);
    assert_eq!(org_of(s, "acme").await.wallet_micros, 960);
}

pub(super) async fn settle_replay_charges_nothing(s: &dyn Store) {
    tiny_org(s, "acme", 1_000).await;
    let a = rec("s1", "stt", 0, 60, T);
    let b = rec("s1", "stt", 1, 80, T + 1);
    s.settle("acme", &a).await.unwrap();
    assert_eq!(s.settle("acme", &b).await.unwrap().len(), 2);
    let before = org_of(s, "acme").await;
    assert_eq!(s.settle("acme", &a).await.unwrap(), vec![]);
    assert_eq!(s.settle("acme", &b).await.unwrap(), vec![], "a split record replays too");
    assert_eq!(org_of(s, "acme").await, before);
    assert_eq!(s.usage_for_session("s1").await.unwrap().len(), 3);

    // No such payer: recorded once, charged to nobody.
    let orphan = rec("s2", "tts", 0, 50, T);
    assert_eq!(s.settle("ghost", &orphan).await.unwrap(), vec![orphan.clone()]);
    assert_eq!(s.settle("ghost", &orphan).await.unwrap(), vec![]);
    assert_eq!(s.usage_for_session("s2").await.unwrap(), vec![orphan]);
}

/// A checkpoint's records settle in one transaction with the same result as one by one:
/// credits run out part-way through the batch, and a replayed batch charges nothing.
pub(super) async fn settle_all_is_settle_in_one_transaction(s: &dyn Store) {
    tiny_org(s, "acme", 1_000).await;
    let a = rec("s1", "stt", 0, 60, T);
    let b = rec("s1", "tts", 0, 80, T);
    let c = rec("s1", "llm", 0, 30, T);
    let got = s.settle_checkpoint("acme", &[a.clone(), b.clone(), c.clone()], "s1", &[]).await.unwrap();
    // a from credits; b split 40 + 40; c all wallet.
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], a);
    assert_eq!((got[1].billed_to, got[1].amount_micros), (BilledTo::Managed, MicroUsd(40)));
    assert_eq!(
        (got[2].line.as_str(), got[2].billed_to, got[2].amount_micros),
        ("tts@wallet", BilledTo::Wallet, MicroUsd(40))
    );
    assert_eq!((got[3].billed_to, got[3].amount_micros), (BilledTo::Wallet, MicroUsd(30)));
    let o = org_of(s, "acme").await;
    assert_eq!((o.credits_used_micros, o.wallet_micros), (100, 930));
    assert_eq!(s.usage_for_session("s1").await.unwrap().len(), 4);

    // The same batch again (a retried checkpoint), plus one new record: only the new one counts.
    let d = rec("s1", "stt", 1, 5, T + 1);
    let again = s.settle_checkpoint("acme", &[a, b, c, d.clone()], "s1", &[]).await.unwrap();
    assert_eq!(again, vec![UsageRecord { billed_to: BilledTo::Wallet, ..d }]);
    assert_eq!(org_of(s, "acme").await.wallet_micros, 925);
    assert_eq!(s.settle_checkpoint("acme", &[], "s1", &[]).await.unwrap(), vec![]);
}

/// A call's checkpoint writes its usage and the transcript lines said since the last one in
/// one transaction; a retried checkpoint charges nothing and repeats no line.
pub(super) async fn a_checkpoint_keeps_usage_and_transcript_together(s: &dyn Store) {
    use super::{Speaker, TranscriptLine};
    tiny_org(s, "acme", 1_000).await;
    let line = |seq: i64, text: &str| TranscriptLine {
        seq,
        at_ms: T + seq,
        speaker: Speaker::Caller,
        text: text.into(),
        interrupted: false,
    };
    let (a, lines) = (rec("s1", "stt", 0, 60, T), vec![line(0, "hello"), line(1, "are you open")]);
    let got = s.settle_checkpoint("acme", std::slice::from_ref(&a), "s1", &lines).await.unwrap();
    assert_eq!(got, vec![a.clone()]);
    assert_eq!(s.transcript("s1").await.unwrap(), lines);
    let again = s.settle_checkpoint("acme", &[a], "s1", &lines).await.unwrap();
    assert_eq!(again, vec![], "a replayed checkpoint charges nothing");
    assert_eq!(s.transcript("s1").await.unwrap(), lines, "and repeats no line");
    assert_eq!(org_of(s, "acme").await.credits_used_micros, 60);
    let only_lines = s.settle_checkpoint("acme", &[], "s1", &[line(2, "thanks")]).await.unwrap();
    assert_eq!((only_lines, s.transcript("s1").await.unwrap().len()), (vec![], 3));
}

/// Several calls' checkpoints commit together, each as it would alone: the same payer's second
/// checkpoint sees the first's charges, each funds check sees its own records charged, a check
/// that finds enough extends its session's hold and one that does not leaves it, an unknown
/// payer is recorded and not checked, and a replayed batch charges nothing.
pub(super) async fn checkpoints_commit_together_with_their_funds_checks(s: &dyn Store) {
    tiny_org(s, "acme", 1_000).await;
    tiny_org(s, "beta", 0).await;
    s.put_hold("b1", "beta", 10).await.unwrap();
    let now = now_ms();
    let (a1, a2, b, orphan) = (
        rec("a1", "stt", 0, 60, now),
        rec("a2", "stt", 0, 80, now),
        rec("b1", "tts", 0, 30, now),
        rec("g1", "stt", 0, 5, now),
    );
    let check = |reserve_micros| Some(FundsCheck { reserve_micros, hold_micros: 25 });
    fn cp<'a>(
        payer_org_id: &'a str,
        session_id: &'a str,
        records: &'a [UsageRecord],
        funds: Option<FundsCheck>,
    ) -> Checkpoint<'a> {
        Checkpoint { payer_org_id, session_id, records, lines: &[], funds }
    }
    let (ra1, ra2, rb, rg) = ([a1.clone()], [a2.clone()], [b.clone()], [orphan.clone()]);
    let batch = [
        cp("acme", "a1", &ra1[..], check(900)),
        cp("acme", "a2", &ra2[..], check(2_000)),
        cp("beta", "b1", &rb[..], check(1)),
        cp("ghost", "g1", &rg[..], check(1)),
    ];
    let got = s.settle_checkpoints(&batch).await.unwrap();
    assert_eq!(got.len(), 4);
    // a1 from credits (60 of 100): 40 + 1,000 available, enough for 900.
    assert_eq!(got[0], Settled { records: vec![a1], funds: FundsVerdict::Held });
    // a2 takes the last 40 of credits and 40 from the wallet: 960 left, less a1's new hold.
    assert_eq!(got[1].records.len(), 2, "{:?}", got[1]);
    assert_eq!(got[1].funds, FundsVerdict::Low { available_micros: 935 });
    assert_eq!(got[2].funds, FundsVerdict::Held);
    assert_eq!(got[3], Settled { records: vec![orphan], funds: FundsVerdict::Unchecked });
    let acme = org_of(s, "acme").await;
    assert_eq!((acme.credits_used_micros, acme.wallet_micros), (100, 960));
    assert_eq!(org_of(s, "beta").await.credits_used_micros, 30);
    assert_eq!(s.held("acme", None).await.unwrap(), 25, "a2's check found too little: no hold placed");
    assert_eq!(s.held("beta", None).await.unwrap(), 25, "b1's hold extended from 10");

    let again = s.settle_checkpoints(&batch).await.unwrap();
    assert!(again.iter().all(|s| s.records.is_empty()), "{again:?}");
    assert_eq!(org_of(s, "acme").await.wallet_micros, 960);

    // Two batches naming the same payers in opposite orders, at once: both commit (the payers
    // are locked in one order, so neither waits for the other forever).
    for i in 1..=5 {
        let (x, y) = ([rec("a1", "stt", i, 1, now)], [rec("b1", "tts", i, 1, now)]);
        let forward = [cp("acme", "a1", &x[..], None), cp("beta", "b1", &y[..], None)];
        let (x2, y2) = ([rec("a2", "stt", i, 1, now)], [rec("b2", "tts", i, 1, now)]);
        let backward = [cp("beta", "b2", &y2[..], None), cp("acme", "a2", &x2[..], None)];
        let (f, b) = tokio::join!(s.settle_checkpoints(&forward), s.settle_checkpoints(&backward));
        assert_eq!((f.unwrap().len(), b.unwrap().len()), (2, 2));
    }
    assert_eq!(org_of(s, "beta").await.credits_used_micros, 40);
}

pub(super) async fn settle_period_rollover(s: &dyn Store) {
    s.upsert_plan(&plan("tiny", 100)).await.unwrap();
    let last_month = OrgRow {
        wallet_micros: 1_000,
        credits_used_micros: 100,
        credits_period: "2023-10".into(),
        ..org_row("acme", "tiny")
    };
    s.create_org(&last_month, "hash-acme", "sk").await.unwrap();
    let a = rec("s1", "stt", 0, 30, T);
    assert_eq!(s.settle("acme", &a).await.unwrap(), vec![a], "a new month's credits pay");
    let o = org_of(s, "acme").await;
    assert_eq!((o.credits_used_micros, o.credits_period.as_str(), o.wallet_micros), (30, "2023-11", 1_000));
}

/// A reconciliation credit (negative record) gives back to used credits first, then the
/// wallet, and the session's records still sum to what was finally owed.
pub(super) async fn settle_credit_gives_back(s: &dyn Store) {
    tiny_org(s, "acme", 1_000).await;
    s.settle("acme", &rec("s1", "stt", 0, 150, T)).await.unwrap();
    let o = org_of(s, "acme").await;
    assert_eq!((o.credits_used_micros, o.wallet_micros), (100, 950), "100 from credits, 50 from the wallet");
    let credit = UsageRecord { quantity: -12.0, quantity_atoms: -12_000, ..rec("s1", "stt", 1, -120, T + 1) };
    let written = s.settle("acme", &credit).await.unwrap();
    assert_eq!(written.iter().map(|r| r.amount_micros.0).sum::<i64>(), -120);
    let o = org_of(s, "acme").await;
    assert_eq!((o.credits_used_micros, o.wallet_micros), (0, 970), "100 back to credits, 20 to the wallet");
    assert!(s.settle("acme", &credit).await.unwrap().is_empty(), "a replayed credit gives nothing twice");
    assert_eq!(org_of(s, "acme").await.wallet_micros, 970);
    let stored: i64 = s.usage_for_session("s1").await.unwrap().iter().map(|r| r.amount_micros.0).sum();
    assert_eq!(stored, 30);
}

/// 20 settles at once on one org: nothing is lost or spent twice.
pub(super) async fn concurrent_settles(s: &dyn Store) {
    tiny_org(s, "acme", 10_000).await;
    let recs: Vec<_> = (0..20u32).map(|i| rec("s1", "stt", i, 5 + i64::from(i % 5), T + i64::from(i))).collect();
    let total: i64 = recs.iter().map(|r| r.amount_micros.0).sum();
    assert_eq!(total, 140);
    let results = futures::future::join_all(recs.iter().map(|r| s.settle("acme", r))).await;
    let mut charged = 0;
    let mut from_credits = 0;
    for written in results {
        for r in written.unwrap() {
            charged += r.amount_micros.0;
            if r.billed_to == BilledTo::Managed {
                from_credits += r.amount_micros.0;
            }
        }
    }
    assert_eq!(charged, total);
    assert_eq!(from_credits, 100, "credits used exactly up to the allowance");
    let o = org_of(s, "acme").await;
    assert_eq!(o.credits_used_micros, 100, "never beyond the allowance");
    assert_eq!(o.wallet_micros, 10_000 - 40, "the rest, once, from the wallet");
    let stored: i64 = s.usage_for_session("s1").await.unwrap().iter().map(|r| r.amount_micros.0).sum();
    assert_eq!(stored, total);
}

pub(super) async fn rates_seed_and_managed_flip(s: &dyn Store) {
    assert!(s.rates().await.unwrap().is_empty());
    let v0 = s.rates_version().await.unwrap();
    let seed = crate::RateTable::from_csv(include_str!("../../../../assets/rates.csv")).unwrap();
    assert_eq!(s.seed_rates(&seed).await.unwrap() as usize, seed.len());
    assert_eq!(s.seed_rates(&seed).await.unwrap(), 0, "seeding twice adds nothing");
    let stored = s.rates().await.unwrap();
    assert_eq!(stored.len(), seed.len());
    assert_eq!(stored.model("stt", "deepgram", "nova-3"), seed.model("stt", "deepgram", "nova-3"));
    let v1 = s.rates_version().await.unwrap();
    assert!(v1 > v0);
    let n = s.set_managed("elevenlabs", Some("tts"), false).await.unwrap();
    assert!(n >= 3);
    let t = s.rates().await.unwrap();
    assert!(!t.model("tts", "elevenlabs", "eleven_flash_v2_5").unwrap()[0].managed);
    assert!(
        t.model("stt", "elevenlabs", "scribe_v2_realtime").is_none_or(|r| r[0].managed),
        "other services untouched"
    );
    assert!(s.rates_version().await.unwrap() > v1);
    s.set_managed("groq", None, true).await.unwrap();
    assert!(s.rates().await.unwrap().model("llm", "groq", "llama-3.1-8b-instant").unwrap().iter().all(|r| r.managed));
}

pub(super) async fn numbers_route_across_orgs(s: &dyn Store) {
    s.upsert_plan(&plan("p", 0)).await.unwrap();
    tiny_org(s, "a", 0).await;
    tiny_org(s, "b", 0).await;
    let n = |id: &str, org: &str, number: &str| super::NumberRow {
        id: id.into(),
        org_id: org.into(),
        number: number.into(),
        carrier: "twilio".into(),
        agent_id: "ag".into(),
        created_at_ms: 1,
    };
    assert!(s.create_number(&n("n1", "a", "+15550001111")).await.unwrap());
    assert!(!s.create_number(&n("n2", "b", "+15550001111")).await.unwrap(), "unique across orgs");
    assert_eq!(s.number("+15550001111").await.unwrap().map(|r| r.org_id), Some("a".into()));
    assert_eq!(s.numbers("b").await.unwrap(), vec![]);
    assert!(!s.delete_number("b", "n1").await.unwrap(), "another org cannot delete it");
    assert!(s.delete_number("a", "n1").await.unwrap());
    assert_eq!(s.number("+15550001111").await.unwrap(), None);
}

pub(super) async fn stream_tokens_are_single_use(s: &dyn Store) {
    let t = |sid: &str, call: &str, exp: i64| super::StreamTokenRow {
        sid: sid.into(),
        kind: "twilio".into(),
        org_id: "a".into(),
        agent_id: "ag".into(),
        call_id: Some(call.into()),
        number_id: None,
        expires_at_ms: exp,
        used_at_ms: None,
        created_at_ms: 1,
    };
    assert!(s.put_stream_token(&t("s1", "CA1", 1_000)).await.unwrap());
    assert!(!s.put_stream_token(&t("s2", "CA1", 1_000)).await.unwrap(), "one token per carrier call");
    assert!(s.put_stream_token(&t("s3", "CA3", 100)).await.unwrap());
    match s.consume_stream_token("s1", 500).await.unwrap() {
        super::TokenUse::Granted(row) => assert_eq!(row.used_at_ms, Some(500)),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.consume_stream_token("s1", 501).await.unwrap(), super::TokenUse::Used);
    assert_eq!(s.consume_stream_token("s3", 500).await.unwrap(), super::TokenUse::Expired);
    assert_eq!(s.consume_stream_token("nope", 500).await.unwrap(), super::TokenUse::Unknown);
    assert_eq!(s.purge_stream_tokens(200).await.unwrap(), 1);
}

pub(super) async fn sessions_listed_per_org(s: &dyn Store) {
    let mut a = session_row("s1", Some("CA1"), 1_000);
    a.org_id = "a".into();
    let mut b = session_row("s2", Some("CA2"), 2_000);
    b.org_id = "b".into();
    s.open_session(&a).await.unwrap();
    s.open_session(&b).await.unwrap();
    assert_eq!(s.open_sessions("a").await.unwrap(), 1);
    s.close_session("s1", 1_500, "hangup").await.unwrap();
    assert_eq!(s.open_sessions("a").await.unwrap(), 0);
    let ids = |v: Vec<SessionRow>| v.into_iter().map(|r| r.session_id).collect::<Vec<_>>();
    assert_eq!(ids(s.list_sessions(Some("a"), 0, 10_000, 10).await.unwrap()), vec!["s1"]);
    assert_eq!(ids(s.list_sessions(None, 0, 10_000, 10).await.unwrap()), vec!["s2", "s1"]);
    assert_eq!(ids(s.list_sessions(None, 0, 10_000, 1).await.unwrap()), vec!["s2"]);
    assert_eq!(ids(s.list_sessions(None, 1_500, 10_000, 10).await.unwrap()), vec!["s2"]);
}

pub(super) async fn simultaneous_holds_never_exceed_the_funds(s: &dyn Store) {
    s.upsert_plan(&plan("p0", 0)).await.unwrap();
    let o = OrgRow { wallet_micros: 150_000, ..org_row("a", "p0") };
    s.create_org(&o, "hash-a", "sk_test").await.unwrap();
    let ids: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
    let placed = futures::future::join_all(ids.iter().map(|id| s.place_hold(id, "a", 59_000))).await;
    let admitted = placed.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(admitted, 2, "150,000 holds two sessions of 59,000");
    assert_eq!(s.held("a", None).await.unwrap(), 118_000);
    assert!(!s.place_hold("x", "nobody", 1).await.unwrap(), "an unknown org holds nothing");
}

/// The one-statement funds read agrees with the org, its plan and its holds read apart.
pub(super) async fn funds_are_one_read_of_balances_plan_and_holds(s: &dyn Store) {
    s.upsert_plan(&plan("p7", 7_000)).await.unwrap();
    let o =
        OrgRow { wallet_micros: 150_000, credits_used_micros: 2_000, negative_limit_micros: 30, ..org_row("a", "p7") };
    s.create_org(&o, "hash-a", "sk_test").await.unwrap();
    tiny_org(s, "other", 0).await;
    for (session, org, amount) in [("s1", "a", 40), ("s2", "a", 500), ("s3", "other", 9_999)] {
        s.put_hold(session, org, amount).await.unwrap();
    }
    let want = super::FundsRow {
        plan_id: "p7".into(),
        monthly_credit_micros: Some(7_000),
        credits_used_micros: 2_000,
        credits_period: period_of(T),
        wallet_micros: 150_000,
        negative_limit_micros: 30,
        held_micros: 500,
    };
    assert_eq!(s.funds("a", Some("s1")).await.unwrap(), Some(want.clone()), "its own hold left out");
    let all = s.funds("a", None).await.unwrap().unwrap();
    assert_eq!(all.held_micros, s.held("a", None).await.unwrap());
    assert_eq!(all, super::FundsRow { held_micros: 540, ..want });
    let free = s.funds("other", Some("s3")).await.unwrap().unwrap();
    assert_eq!((free.held_micros, free.monthly_credit_micros), (0, Some(100)));
    assert_eq!(s.funds("nobody", None).await.unwrap(), None);
}

pub(super) async fn transcripts_keep_order_and_ignore_replays(s: &dyn Store) {
    use super::{Speaker, TranscriptLine};
    let line = |seq: i64, speaker, text: &str, interrupted| TranscriptLine {
        seq,
        at_ms: 1_000 + seq,
        speaker,
        text: text.into(),
        interrupted,
    };
    let caller = line(0, Speaker::Caller, "what are your hours", false);
    let agent = line(1, Speaker::Agent, "We open at nine — ", true);
    s.append_transcript("s1", &agent).await.unwrap();
    s.append_transcript("s1", &caller).await.unwrap();
    s.append_transcript("s2", &line(0, Speaker::Caller, "other call", false)).await.unwrap();
    let replay = line(1, Speaker::Caller, "a retried write", false);
    s.append_transcript("s1", &replay).await.unwrap();
    assert_eq!(s.transcript("s1").await.unwrap(), vec![caller, agent], "in seq order; the replay changed nothing");
    assert!(s.transcript("none").await.unwrap().is_empty());
}

/// A node that stops renewing its lease has its open sessions closed by the reaper, at their
/// last checkpoint, holds released and nothing charged again; a live node's are untouched.
pub(super) async fn a_lost_nodes_sessions_close_at_their_last_checkpoint(s: &dyn Store) {
    tiny_org(s, "acme", 1_000).await;
    assert!(!s.renew_lease("dead", 1).await.unwrap(), "first registration");
    assert!(!s.renew_lease("live", 60_000).await.unwrap());
    assert!(s.renew_lease("live", 60_000).await.unwrap(), "a renewal finds the lease");
    for (id, node) in [("d1", "dead"), ("d2", "dead"), ("l1", "live")] {
        s.open_session(&SessionRow { node_id: Some(node.into()), ..session_row(id, Some(id), 5) }).await.unwrap();
        s.put_hold(id, "acme", 40).await.unwrap();
    }
    s.settle("acme", &rec("d1", "stt", 0, 30, 70)).await.unwrap();
    let charged = org_of(s, "acme").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut lost = s.reap_lost_nodes().await.unwrap();
    lost.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    let ids: Vec<(&str, &str)> = lost.iter().map(|l| (l.session_id.as_str(), l.node_id.as_str())).collect();
    assert_eq!(ids, [("d1", "dead"), ("d2", "dead")]);
    assert_eq!(lost[0].call_sid.as_deref(), Some("d1"));
    let d1 = s.session("d1").await.unwrap().unwrap();
    assert_eq!((d1.status.as_str(), d1.ended_at_ms, d1.end_reason.as_deref()), ("closed", Some(70), Some("node_lost")));
    assert_eq!(s.session("d2").await.unwrap().unwrap().ended_at_ms, Some(5), "no checkpoint: closed at its start");
    assert_eq!(s.session("l1").await.unwrap().unwrap().status, "open", "a live node keeps its sessions");
    assert_eq!(s.held("acme", None).await.unwrap(), 40, "only the live session still holds");
    assert_eq!(org_of(s, "acme").await, charged, "closing charges nothing");
    assert!(s.reap_lost_nodes().await.unwrap().is_empty(), "reaping twice closes nothing more");
    assert!(!s.renew_lease("dead", 60_000).await.unwrap(), "the lost node's lease is gone");
    // A restart under the same id closes its own leftovers at once; other nodes' stay open.
    s.open_session(&SessionRow { node_id: Some("dead".into()), ..session_row("d3", None, 9) }).await.unwrap();
    assert!(s.close_abandoned("dead").await.unwrap() >= 1);
    assert_eq!(s.session("d3").await.unwrap().unwrap().end_reason.as_deref(), Some("abandoned"));
}

/// One test per story per backend.
macro_rules! on_both_backends {
    ($($story:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $story() {
                    let s = super::SqliteStore::connect("sqlite::memory:").await.unwrap();
                    super::$story(&s).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let db = super::TestDb::create().await;
                    super::$story(&db.store().await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    sessions,
    usage_idempotency,
    plans,
    orgs,
    wallet,
    credentials_and_slots,
    agents,
    settle_credits_then_wallet,
    settle_byok_keeps_its_tag,
    settle_replay_charges_nothing,
    settle_all_is_settle_in_one_transaction,
    a_checkpoint_keeps_usage_and_transcript_together,
    settle_period_rollover,
    settle_credit_gives_back,
    concurrent_settles,
    rates_seed_and_managed_flip,
    numbers_route_across_orgs,
    stream_tokens_are_single_use,
    sessions_listed_per_org,
    simultaneous_holds_never_exceed_the_funds,
    funds_are_one_read_of_balances_plan_and_holds,
    checkpoints_commit_together_with_their_funds_checks,
    transcripts_keep_order_and_ignore_replays,
    a_lost_nodes_sessions_close_at_their_last_checkpoint,
);

/// A SQLite file with a pool of 4, so settles really run on several connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_settles_on_a_sqlite_file() {
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for ext in ["", "-wal", "-shm"] {
                let mut p = self.0.clone().into_os_string();
                p.push(ext);
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let path = std::env::temp_dir().join(format!("billing-{}.db", uuid::Uuid::new_v4().simple()));
    let _cleanup = Cleanup(path.clone());
    let s = SqliteStore::connect(&format!("sqlite:{}", path.display())).await.unwrap();
    concurrent_settles(&s).await;
}

#[tokio::test]
async fn sqlite_has_nobody_to_notify() {
    let s = SqliteStore::connect("sqlite::memory:").await.unwrap();
    s.publish_change("rates").await.unwrap();
    assert!(s.subscribe_changes().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_changes_reach_every_node() {
    let db = TestDb::create().await;
    let (node_a, node_b) = (db.store().await, db.store().await);
    let mut on_b = node_b.subscribe_changes().await.unwrap().expect("postgres subscribes");
    let mut on_a = node_a.subscribe_changes().await.unwrap().expect("postgres subscribes");
    node_a.publish_change("rates").await.unwrap();
    node_a.publish_change("keys:openai").await.unwrap();
    node_b.publish_change("org:acme").await.unwrap();
    for rx in [&mut on_b, &mut on_a] {
        assert_eq!(next(rx).await.as_deref(), Some("rates"));
        assert_eq!(next(rx).await.as_deref(), Some("keys:openai"));
        assert_eq!(next(rx).await.as_deref(), Some("org:acme"));
    }
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<String>) -> Option<String> {
    tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await.expect("notification within 5 s")
}

#[tokio::test]
async fn connect_dispatches_on_the_url_scheme() {
    let db = TestDb::create().await;
    let pg = connect(&db.url).await.unwrap();
    pg.upsert_plan(&plan("tiny", 1)).await.unwrap();
    let alt = db.url.replacen("postgres://", "postgresql://", 1);
    assert_eq!(connect(&alt).await.unwrap().plan("tiny").await.unwrap(), Some(plan("tiny", 1)));
    assert!(connect("sqlite::memory:").await.is_ok());
    let err = connect("mysql://localhost/x").await.err().expect("mysql is unsupported");
    assert_eq!(err.code(), "db_unsupported_url");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_reconnects_and_asks_for_a_resync() {
    use sqlx::Connection;
    let db = TestDb::create().await;
    let node = db.store().await;
    let mut rx = node.subscribe_changes().await.unwrap().expect("postgres subscribes");
    let mut admin = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "exactly the listener's connection");
    assert_eq!(next(&mut rx).await.as_deref(), Some(RESYNC_TOPIC));
    node.publish_change("rates").await.unwrap();
    assert_eq!(next(&mut rx).await.as_deref(), Some("rates"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_change_notifies_every_node_at_commit() {
    let db = TestDb::create().await;
    let (node_a, node_b) = (db.store().await, db.store().await);
    let mut table = crate::RateTable::default();
    table.insert(crate::Rate {
        service: "stt".into(),
        provider: "deepgram".into(),
        model: "nova-3".into(),
        unit: crate::RateUnit::AudioMinute,
        price: MicroUsd(4_300),
        managed: true,
        unverified: false,
    });
    let mut on_b = node_b.subscribe_changes().await.unwrap().expect("postgres subscribes");
    node_a.seed_rates(&table).await.unwrap();
    assert_eq!(next(&mut on_b).await.as_deref(), Some(RATES_TOPIC));
    node_a.set_managed("deepgram", None, false).await.unwrap();
    assert_eq!(next(&mut on_b).await.as_deref(), Some(RATES_TOPIC));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_reach_other_nodes_whatever_their_size() {
    let db = TestDb::create().await;
    let (node_a, node_b) = (db.store().await, db.store().await);
    let mut on_b = node_b.subscribe_events().await.unwrap().expect("postgres subscribes");
    let small = r#"{"type":"dtmf","digit":"5"}"#.to_string();
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(20_000));
    let looks_like_ref = "@12".to_string();
    for p in [&small, &big, &looks_like_ref] {
        node_a.publish_event(p).await.unwrap();
    }
    assert_eq!(next(&mut on_b).await.as_ref(), Some(&small));
    assert_eq!(next(&mut on_b).await.as_ref(), Some(&big), "over the NOTIFY limit: sent by reference");
    assert_eq!(next(&mut on_b).await.as_ref(), Some(&looks_like_ref), "never mistaken for a reference");
    let s = SqliteStore::connect("sqlite::memory:").await.unwrap();
    s.publish_event(&small).await.unwrap();
    assert!(s.subscribe_events().await.unwrap().is_none(), "SQLite: nobody to relay to");
}
