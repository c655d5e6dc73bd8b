//! A slow store never delays the conversation: every store access of a running call happens in
//! the session's ledger task, not in the turn loop that handles barge-in. The Postgres store is
//! stalled on purpose — a trigger makes the call's first three usage-record inserts take 3 s
//! each, so the first checkpoint (at 2 s) keeps the store busy past the moment the caller talks
//! over the agent (7.5 s into `barge_in.wav`) — and the barge-in still gets its `clear` at
//! once, the conversation goes on, and every record is written.

mod util;

use serde_json::Value;
use util::*;

/// `switchboard_hop_latency_seconds{hop="speech_to_clear"}`: how many barge-ins, and how many
/// of them were cleared within `le` seconds (a bucket bound of the server's histogram).
fn clears_within(metrics: &str, le: &str) -> (u64, u64) {
    let value = |prefix: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    let count = value(r#"switchboard_hop_latency_seconds_count{hop="speech_to_clear"}"#);
    let within = value(&format!(r#"switchboard_hop_latency_seconds_bucket{{hop="speech_to_clear",le="{le}"}}"#));
    (count, within)
}

#[test]
fn barge_in_is_cleared_at_once_while_the_store_is_slow() {
    let pg = PgDb::create();
    let server = Server::start_with_db(ServerOpts { env: vec![], args: vec![] }, Some(pg.url.clone()));
    pg.query(
        "CREATE SEQUENCE slow_inserts;
         CREATE FUNCTION slow_insert() RETURNS trigger AS $$
           BEGIN IF nextval('slow_inserts') <= 3 THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END
         $$ LANGUAGE plpgsql;
         CREATE TRIGGER slow_usage BEFORE INSERT ON usage_records FOR EACH ROW EXECUTE FUNCTION slow_insert();",
    );
    let out = call(&server.url, &asset("barge_in.wav"), &[]);
    assert!(out.ok, "call failed:\n{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.of("barge_in").len(), 1, "{}", out.stdout);
    let (count, within) = clears_within(&server.metrics(), "0.25");
    assert_eq!(count, 1, "one barge-in measured");
    assert_eq!(within, 1, "cleared within 250 ms although the store was stalled");
    let stalled = pg.query("SELECT last_value FROM slow_inserts").trim().parse::<i64>().unwrap_or(0);
    assert!(stalled >= 3, "the stall happened: {stalled} inserts");

    // Nothing was lost on the way: every record the call reported is in the store.
    let reported: Vec<String> =
        out.of("usage").iter().map(|u: &&Value| format!("{}|{}", u["line"].as_str().unwrap_or(""), u["seq"])).collect();
    assert!(reported.len() >= 5, "{}", out.stdout);
    let session = out.of("usage")[0]["session_id"].as_str().unwrap_or("").to_string();
    let stored = pg.query(&format!("SELECT count(*) FROM usage_records WHERE session_id = '{session}'"));
    assert_eq!(stored.trim(), reported.len().to_string(), "stored vs reported records");
}
