//! Graceful drain: SIGTERM stops new calls (`/healthz` 503), lets live calls finish, ends the
//! rest with a closing line after `--drain-secs`, and exits 0 with every session closed, its
//! usage written and its hold released. Checked in the Postgres store after the process exited.
//! Usage the store had not taken when the calls ended is waited for, not dropped at exit.

mod util;

use std::time::Duration;
use util::*;

fn sandbox_on(pg: &PgDb, drain_secs: &str) -> Server {
    Server::start_with_db(
        ServerOpts { env: vec![], args: vec!["--drain-secs".into(), drain_secs.into()] },
        Some(pg.url.clone()),
    )
}

#[test]
fn a_call_in_flight_at_sigterm_finishes_and_is_billed_in_full() {
    let pg = PgDb::create();
    let mut server = sandbox_on(&pg, "60");
    let url = server.url.clone();
    let first = std::thread::spawn(move || call(&url, &asset("simple.wav"), &["--tail", "2"]));
    server.wait_for_session();
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = http_get(&format!("{}/healthz", server.url));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("draining"), "{body}");
    let refused = call(&server.url, &asset("simple.wav"), &[]);
    assert!(!refused.ok);
    assert!(refused.stdout.contains("draining"), "{}", refused.stdout);

    let first = first.join().unwrap();
    assert!(first.ok, "{}\n{}", first.stdout, first.stderr);
    let (stt_s, _) = first.usage_sum("stt");
    assert!(stt_s >= duration_s("simple"), "billed in full: {stt_s} s");
    let status = server.wait_exit(Duration::from_secs(30)).expect("the server exits after the drain");
    assert!(status.success(), "{status:?}");
    let sid = first.call_sid();
    assert_eq!(
        pg.query(&format!("SELECT status, end_reason FROM sessions WHERE call_sid = '{sid}'")).trim(),
        "closed|hangup"
    );
    assert_eq!(pg.query("SELECT COUNT(*) FROM sessions WHERE status = 'open'").trim(), "0");
    assert_eq!(pg.query("SELECT COUNT(*) FROM holds").trim(), "0");
    let billed: i64 = pg
        .query(&format!(
            "SELECT COUNT(*) FROM usage_records u JOIN sessions s USING (session_id) WHERE s.call_sid = '{sid}'"
        ))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(billed as usize, first.of("usage").len(), "every usage line the caller saw is stored");
}

#[test]
fn calls_still_running_when_the_drain_ends_hear_a_closing_line() {
    let pg = PgDb::create();
    let mut server = sandbox_on(&pg, "1");
    let url = server.url.clone();
    let long = std::thread::spawn(move || call(&url, &asset("multi_turn.wav"), &["--tail", "30"]));
    server.wait_for_session();
    server.terminate();
    let long = long.join().unwrap();
    assert_eq!(long.of("end")[0]["reason"], "server_shutdown", "{}", long.stdout);
    let turns = long.agent_turns();
    assert!(turns.last().is_some_and(|t| t.ends_with("Please call again. Goodbye.")), "{turns:?}");
    let status = server.wait_exit(Duration::from_secs(30)).expect("the server exits");
    assert!(status.success(), "{status:?}");
    let sid = long.call_sid();
    assert_eq!(
        pg.query(&format!("SELECT status, end_reason FROM sessions WHERE call_sid = '{sid}'")).trim(),
        "closed|server_shutdown"
    );
    assert_eq!(pg.query("SELECT COUNT(*) FROM holds").trim(), "0");
}

/// A store that refused a call's usage until after SIGTERM: the server, with no call left, waits
/// for the session's ledger to write it (trying again at once, then every 2 s, instead of its
/// minutes-long pauses), and exits once it is written. Exiting at once lost it (logged only).
#[test]
fn usage_the_store_refused_until_sigterm_is_written_before_the_server_exits() {
    let pg = PgDb::create();
    let mut server = sandbox_on(&pg, "60");
    refuse_usage(&pg);
    let sid = call_while_refused(&server, &pg);

    server.terminate();
    std::thread::sleep(Duration::from_secs(3));
    assert!(server.wait_exit(Duration::from_millis(100)).is_none(), "the server waits for the unwritten usage");
    assert!(server.log_text().contains("waiting for usage the store has not taken yet"), "{}", server.log_text());
    pg.query("DELETE FROM store_down");
    let status = server.wait_exit(Duration::from_secs(30)).expect("the server exits once the usage is written");
    assert!(status.success(), "{status:?}");
    assert!(stored(&pg, &sid) >= 3, "the call's STT, LLM and TTS usage written: {}", stored(&pg, &sid));
    let log = server.log_text();
    assert!(log.contains("every session's usage is written"), "{log}");
    assert!(!log.contains("not billed"), "{log}");
}

/// A store that refuses usage records until `store_down` is emptied.
fn refuse_usage(pg: &PgDb) {
    pg.query(
        "CREATE TABLE store_down (x INT); INSERT INTO store_down VALUES (1);
         CREATE FUNCTION refuse_usage() RETURNS trigger AS $$
           BEGIN IF EXISTS (SELECT 1 FROM store_down) THEN RAISE EXCEPTION 'store down'; END IF; RETURN NEW; END
         $$ LANGUAGE plpgsql;
         CREATE TRIGGER refuse_usage BEFORE INSERT ON usage_records FOR EACH ROW EXECUTE FUNCTION refuse_usage();",
    );
}

/// A whole call while the store refuses its usage; its call sid.
fn call_while_refused(server: &Server, pg: &PgDb) -> String {
    let out = call(&server.url, &asset("simple.wav"), &[]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let sid = out.call_sid();
    assert_eq!(stored(pg, &sid), 0, "the store refused the call's usage");
    sid
}

/// Usage records stored for the call `sid`.
fn stored(pg: &PgDb, sid: &str) -> i64 {
    let sql =
        format!("SELECT COUNT(*) FROM usage_records u JOIN sessions s USING (session_id) WHERE s.call_sid = '{sid}'");
    pg.query(&sql).trim().parse().unwrap()
}

/// A store that still refuses a call's usage when a stopping server's wait is over: the usage
/// goes to the spool file, and the next start writes it to the store and empties the spool.
#[test]
fn usage_unwritten_at_exit_is_spooled_and_written_at_the_next_start() {
    let pg = PgDb::create();
    let dir = std::env::temp_dir().join(format!("spool-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spool = dir.join("unbilled.jsonl");
    let opts = || ServerOpts {
        env: vec![],
        args: ["--drain-secs", "60", "--usage-wait-secs", "2", "--spool"]
            .map(String::from)
            .into_iter()
            .chain([spool.display().to_string()])
            .collect(),
    };
    let mut server = Server::start_with_db(opts(), Some(pg.url.clone()));
    refuse_usage(&pg);
    let sid = call_while_refused(&server, &pg);
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(30)).expect("the server exits after its wait");
    assert!(status.success(), "{status:?}");
    assert!(
        server.log_text().contains("spooled, replayed every minute and at the next start"),
        "{}",
        server.log_text()
    );
    let kept = std::fs::read_to_string(&spool).expect("the spool file");
    let entries: Vec<serde_json::Value> = kept.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries.len(), 1, "{kept}");
    let records = entries[0]["records"].as_array().unwrap().len() as i64;
    assert!(records >= 3, "the call's STT, LLM and TTS usage: {kept}");
    assert_eq!(stored(&pg, &sid), 0);

    pg.query("DELETE FROM store_down");
    let next = Server::start_with_db(opts(), Some(pg.url.clone()));
    assert_eq!(stored(&pg, &sid), records, "written before the next start took calls");
    assert!(!spool.exists(), "the spool is emptied once written");
    assert!(next.log_text().contains("spooled usage written to the store"), "{}", next.log_text());
    drop(next);
    let _ = std::fs::remove_dir_all(&dir);
}
