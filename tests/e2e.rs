//! End to end: the real `switchboard serve` and `switchboard sim` processes, recorded calls
//! played by `switchboard call` over real sockets, assertions on what a user would see.

mod util;

use serde_json::Value;
use std::time::Duration;
use util::recorded::*;
use util::*;

fn within(actual: f64, expected: f64, pct: f64) -> bool {
    (actual - expected).abs() <= expected * pct / 100.0
}

fn assert_ok(out: &CallOut) {
    assert!(out.ok, "call failed:\n{}\n{}", out.stdout, out.stderr);
}

#[test]
fn simple_call_over_twilio_in_sandbox_transcribes_answers_and_bills() {
    let server = Server::sandbox();
    assert!(server.log_text().contains("sandbox mode"), "log: {}", server.log_text());
    let out = call(&server.url, &asset("simple.wav"), &[]);
    assert_ok(&out);

    assert_eq!(out.texts("transcript"), vec!["Hello, what are your opening hours?"]);
    assert_eq!(out.agent_turns(), vec![HOURS]);
    assert!(
        out.of("audio").iter().map(|a| a["ms"].as_u64().unwrap_or(0)).sum::<u64>() > 2000,
        "agent audio reached the caller"
    );

    // One line per service, quantities within 5% of what was sent.
    let (stt_s, stt_amount) = out.usage_sum("stt");
    assert!(within(stt_s, duration_s("simple"), 5.0), "stt seconds {stt_s} vs {}", duration_s("simple"));
    assert_eq!(
        stt_amount,
        ((stt_s * 1000.0).round() as i64 * 4800 + 59_999) / 60_000,
        "nova-3 at $0.0048/min, rounded up"
    );
    let (chars, _) = out.usage_sum("tts");
    assert!(within(chars, HOURS.len() as f64, 5.0), "tts characters {chars} vs {}", HOURS.len());
    let (out_tokens, _) = out.usage_sum("llm.output");
    assert_eq!(out_tokens, HOURS.split_whitespace().count() as f64, "provider-reported output tokens");
    let (in_tokens, _) = out.usage_sum("llm.input");
    assert!(in_tokens > 10.0);
    let (minutes, _) = out.usage_sum("telephony");
    assert!(within(minutes * 60.0, duration_s("simple"), 15.0), "telephony minutes {minutes}");
    for u in out.of("usage") {
        assert_eq!(u["billed_to"], "managed", "{u}");
        assert!(u["amount_micros"].is_i64(), "money is an integer: {u}");
        assert_eq!(u["session_id"], out.of("usage")[0]["session_id"]);
    }
    let llm_out = out.of("usage").into_iter().find(|u| u["line"] == "llm.output").cloned().unwrap_or(Value::Null);
    assert_eq!(llm_out["estimated"], false);
    let stt_last = out.of("usage").into_iter().rev().find(|u| u["line"] == "stt").cloned().unwrap_or(Value::Null);
    assert_eq!(stt_last["estimated"], false, "Deepgram's closing figure confirms the STT total: {stt_last}");

    // The same records are in the store, and the metrics saw the call.
    let stored = server.get(&format!("/api/calls/{}", out.call_sid()));
    assert_eq!(stored["status"], "closed");
    assert_eq!(stored["end_reason"], "hangup");
    assert_eq!(stored["usage"].as_array().map(Vec::len), Some(out.of("usage").len()));
    assert_eq!(stored["plan"]["stt"]["credential"]["id"], "managed:deepgram");
    let m = server.metrics();
    for name in [
        "switchboard_sessions_total",
        "switchboard_frames_total",
        "switchboard_provider_time_to_first_seconds",
        "switchboard_usage_atoms_total",
        "switchboard_hop_latency_seconds",
    ] {
        assert!(m.contains(name), "metric {name} missing:\n{m}");
    }
    assert!(m.contains(r#"billed_to="managed""#));
    assert!(m.contains("switchboard_sessions_active 0"), "no session left running:\n{m}");
}

/// Mid-call checkpoints bill STT from the audio sent (marked `estimated`); when the provider
/// closes the stream with its own figure (Deepgram `Metadata.duration`), the line is set to
/// that figure, down as well as up, by a final record that is not estimated.
#[test]
fn stt_usage_is_reconciled_with_the_providers_closing_figure() {
    let server = Server::start(ServerOpts { env: vec![], args: vec!["--sim-stt-billed-pct".into(), "90".into()] });
    let out = call(&server.url, &asset("simple.wav"), &[]);
    assert_ok(&out);
    let stt: Vec<&Value> = out.of("usage").into_iter().filter(|u| u["line"] == "stt").collect();
    assert!(stt.len() >= 2, "a mid-call checkpoint, then the reconciliation: {stt:?}");
    assert!(stt[..stt.len() - 1].iter().all(|u| u["estimated"] == true), "checkpoints count locally: {stt:?}");
    let last = stt[stt.len() - 1];
    assert_eq!(last["estimated"], false, "the provider's figure: {last}");
    assert!(last["quantity"].as_f64().unwrap_or(0.0) < 0.0, "the provider counted less: a credit: {last}");
    assert!(last["amount_micros"].as_i64().unwrap_or(0) < 0, "{last}");
    let (stt_s, stt_amount) = out.usage_sum("stt");
    let billed_s = 0.9 * duration_s("simple");
    assert!(within(stt_s, billed_s, 3.0), "stt seconds {stt_s} vs the provider's {billed_s}");
    assert_eq!(stt_amount, ((stt_s * 1000.0).round() as i64 * 4800 + 59_999) / 60_000, "priced on the total");
    let stored = server.get(&format!("/api/calls/{}", out.call_sid()));
    let stored_s: f64 = stored["usage"]
        .as_array()
        .map(|u| u.iter().filter(|r| r["line"] == "stt").filter_map(|r| r["quantity"].as_f64()).sum())
        .unwrap_or(0.0);
    assert!((stored_s - stt_s).abs() < 1e-6, "the store holds the same records: {stored_s} vs {stt_s}");
}

/// A recording cut right after the question: without `--tail`, `switchboard call` keeps the
/// line open with silence until the agent has answered and finished, then hangs up.
#[test]
fn call_without_tail_waits_for_the_reply_to_a_short_recording() {
    let server = Server::sandbox();
    let (samples, rate) = media::wav::read_wav(asset("simple.wav")).expect("simple.wav");
    let end_s = sidecar("simple")["utterances"][0]["end_s"].as_f64().expect("end_s");
    let cut = ((end_s + 0.1) * f64::from(rate)) as usize;
    let short = server.dir.join("question-only.wav");
    media::wav::write_wav(&short, &samples[..cut.min(samples.len())], rate).expect("write the cut recording");
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("call").arg(&short).args(["--server", &server.url, "--json"]);
    let started = std::time::Instant::now();
    let out = cmd.output().expect("run switchboard call");
    let took = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let reply: String = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "agent")
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(reply.trim_end(), HOURS, "the agent answered in full: {text}");
    assert!(took < 19.0, "hung up once the reply was over, not after the 20 s cap: {took:.1} s");
}

/// The transcript the server kept for `out`'s session, as (speaker, text, interrupted).
fn stored_transcript(server: &Server, out: &CallOut) -> Vec<(String, String, bool)> {
    let sid = out.of("usage").first().and_then(|u| u["session_id"].as_str()).expect("a usage line names the session");
    let session = server.get(&format!("/api/sessions/{sid}"));
    let lines = session["transcript"].as_array().cloned().unwrap_or_default();
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"], i, "numbered in order: {session:#}");
    }
    lines
        .iter()
        .map(|l| {
            (
                l["speaker"].as_str().unwrap_or("").into(),
                l["text"].as_str().unwrap_or("").into(),
                l["interrupted"] == true,
            )
        })
        .collect()
}

fn caller(text: &str) -> (String, String, bool) {
    ("caller".into(), text.into(), false)
}

fn agent(text: &str, interrupted: bool) -> (String, String, bool) {
    ("agent".into(), text.into(), interrupted)
}

#[test]
fn an_operator_may_keep_no_transcripts() {
    let server = Server::start(ServerOpts { env: vec![], args: vec!["--transcripts".into(), "false".into()] });
    let out = call(&server.url, &asset("simple.wav"), &[]);
    assert_ok(&out);
    assert_eq!(out.agent_turns(), vec![HOURS], "the call itself is unchanged");
    assert_eq!(stored_transcript(&server, &out), vec![], "nothing said on the call is kept");
}

#[test]
fn multi_turn_call_keeps_the_conversation_in_order() {
    let server = Server::sandbox();
    let out = call(&server.url, &asset("multi_turn.wav"), &[]);
    assert_ok(&out);
    assert_eq!(
        out.texts("transcript"),
        vec![
            "Hi, I would like to book a table for two.",
            "Tomorrow at seven in the evening, please.",
            "Thank you, goodbye."
        ]
    );
    assert_eq!(
        out.agent_turns(),
        vec![
            "Sure, I can book a table for you. For which day and time?",
            "Done. Your table is booked for tomorrow at seven in the evening.",
            "Goodbye, and have a nice day.",
        ]
    );
    assert!(out.of("barge_in").is_empty(), "nobody talked over anybody");
    let turns = out.agent_turns();
    let said: Vec<(String, String, bool)> =
        out.texts("transcript").into_iter().zip(&turns).flat_map(|(c, a)| [caller(&c), agent(a, false)]).collect();
    assert_eq!(stored_transcript(&server, &out), said, "the call's page keeps what was said, in order");
    let (stt_s, _) = out.usage_sum("stt");
    assert!(within(stt_s, duration_s("multi_turn"), 5.0));
    let expected_chars: usize = out.agent_turns().iter().map(|t| t.len()).sum();
    let (chars, _) = out.usage_sum("tts");
    assert!(within(chars, expected_chars as f64, 5.0), "{chars} vs {expected_chars}");
}

#[test]
fn caller_talking_over_the_agent_cuts_it_off_and_truncates_the_reply() {
    let sim = Sim::start(&[("deepgram", "dg-key-1"), ("openai", "oa-key-1"), ("elevenlabs", "el-key-1")], &[]);
    let mut args = sim.provider_args();
    args.extend(["--calls".into(), root().join("assets/calls").display().to_string()]);
    let server = Server::start(ServerOpts {
        env: vec![
            ("DEEPGRAM_API_KEY", "dg-key-1".into()),
            ("OPENAI_API_KEY", "oa-key-1".into()),
            ("ELEVENLABS_API_KEY", "el-key-1".into()),
        ],
        args,
    });
    let out = call(&server.url, &asset("barge_in.wav"), &[]);
    let BargeIn { kept, played_ms: played, story } = assert_story_cut(&out);
    assert!(kept.len() < story.len() / 2, "kept {} of {} characters", kept.len(), story.len());
    assert!((1000..8000).contains(&played), "played {played} ms before the caller cut in");
    // ~50 ms of audio per character in the simulator: what was kept matches what was heard.
    assert!(within(kept.len() as f64, played as f64 / 50.0, 25.0), "kept {} chars for {played} ms", kept.len());
    let callers = out.texts("transcript");
    assert_eq!(
        stored_transcript(&server, &out),
        vec![caller(&callers[0]), agent(&kept, true), caller(&callers[1]), agent(HOURS, false)],
        "the stored transcript keeps what was played of the story, marked as interrupted"
    );

    // The conversation sent with the next request holds the truncated reply, not the story.
    let messages = sim.control("/llm/last-request");
    let assistant: Vec<&str> = messages
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "assistant")
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(assistant, vec![kept.as_str()]);
    assert!(server.metrics().contains("switchboard_barge_ins_total 1"));
}

#[test]
fn client_websocket_call_with_pcm16() {
    let server = Server::sandbox();
    let out = call(&server.url, &asset("simple.wav"), &["--gateway", "client"]);
    assert_ok(&out);
    assert_eq!(out.texts("transcript"), vec!["Hello, what are your opening hours?"]);
    assert_eq!(out.agent_turns(), vec![HOURS]);
    let (stt_s, _) = out.usage_sum("stt");
    assert!(within(stt_s, duration_s("simple"), 5.0));
    assert!(out.of("usage").iter().all(|u| u["line"] != "telephony"), "no carrier on the client websocket");
}

#[test]
fn running_call_keeps_its_key_when_the_key_is_rotated() {
    let keys = [
        ("deepgram", "dg-old-AAAA"),
        ("deepgram", "dg-new-BBBB"),
        ("openai", "oa-old-AAAA"),
        ("openai", "oa-new-BBBB"),
        ("elevenlabs", "el-old-AAAA"),
        ("elevenlabs", "el-new-BBBB"),
    ];
    let sim = Sim::start(&keys, &[]);
    let server = Server::start(ServerOpts {
        env: vec![
            ("DEEPGRAM_API_KEY", "dg-old-AAAA".into()),
            ("OPENAI_API_KEY", "oa-old-AAAA".into()),
            ("ELEVENLABS_API_KEY", "el-old-AAAA".into()),
            ("SWITCHBOARD_ADMIN_TOKEN", "admin-secret".into()),
        ],
        args: sim.provider_args(),
    });
    let url = server.url.clone();
    let first = std::thread::spawn(move || call(&url, &asset("simple.wav"), &["--token", "admin-secret"]));
    server.wait_for_session(); // call 1's plan (and keys) are resolved at its start
    for (p, k) in [("deepgram", "dg-new-BBBB"), ("openai", "oa-new-BBBB"), ("elevenlabs", "el-new-BBBB")] {
        let (status, body) = http(
            "PUT",
            &format!("{}/api/admin/managed-keys/{p}", server.url),
            Some(&format!(r#"{{"apiKey":"{k}"}}"#)),
            Some("admin-secret"),
        );
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains(k), "the key is not echoed");
        assert!(body.contains("BBBB"));
    }
    let second = call(&server.url, &asset("simple.wav"), &["--token", "admin-secret"]);
    let first = first.join().expect("first call");
    assert_ok(&first);
    assert_ok(&second);
    assert_eq!(first.agent_turns(), vec![HOURS]);
    assert_eq!(second.agent_turns(), vec![HOURS]);

    // Both LLM and TTS requests happened after the rotation; the old key was still used once:
    // by the call that started before it.
    let seen = sim.control("/keys");
    for p in ["deepgram", "openai", "elevenlabs"] {
        let mut got: Vec<&str> = seen[p].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        got.sort();
        assert_eq!(got, vec!["AAAA", "BBBB"], "{p}: {seen}");
    }
    let plan = |c: &CallOut| {
        let (status, body) =
            http("GET", &format!("{}/api/calls/{}", server.url, c.call_sid()), None, Some("admin-secret"));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["plan"].clone()
    };
    let (status, _) = http("GET", &format!("{}/api/calls/{}", server.url, first.call_sid()), None, None);
    assert_eq!(status, 401, "the calls API needs a credential in production");
    assert_eq!(plan(&first)["llm"]["credential"]["last4"], "AAAA");
    assert_eq!(plan(&second)["llm"]["credential"]["last4"], "BBBB");
    // Admin API needs the token.
    let (status, _) =
        http("PUT", &format!("{}/api/admin/managed-keys/openai", server.url), Some(r#"{"apiKey":"x"}"#), Some("wrong"));
    assert_eq!(status, 401);
}

#[test]
fn provider_keys_never_appear_in_logs_responses_or_metrics() {
    let canaries = [
        ("deepgram", "sk-LEAKCANARY-dg-7f3a9c"),
        ("openai", "sk-LEAKCANARY-oa-1b2c3d"),
        ("elevenlabs", "sk-LEAKCANARY-el-9e8d7c"),
    ];
    let sim = Sim::start(&canaries, &[]);
    let server = Server::start(ServerOpts {
        env: vec![
            ("DEEPGRAM_API_KEY", canaries[0].1.into()),
            ("OPENAI_API_KEY", canaries[1].1.into()),
            ("ELEVENLABS_API_KEY", canaries[2].1.into()),
        ],
        args: sim.provider_args(),
    });
    let out = call(&server.url, &asset("simple.wav"), &[]);
    assert_ok(&out);
    let mut seen = vec![out.stdout.clone(), out.stderr.clone(), server.metrics(), server.log_text()];
    seen.push(http_get(&format!("{}/api/calls/{}", server.url, out.call_sid())).1);
    seen.push(http_get(&format!("{}/healthz", server.url)).1);
    seen.push(http("POST", &format!("{}/twilio/voice", server.url), None, None).1);
    // A refused call's error text too: an unknown agent.
    let refused = call(&server.url, &asset("simple.wav"), &["--agent", "nope"]);
    assert!(!refused.ok);
    seen.push(refused.stdout);
    let db = std::fs::read(server.dir.join("sb.db")).unwrap_or_default();
    seen.push(String::from_utf8_lossy(&db).to_string());
    assert!(server.log_text().contains("session started"), "the log was captured");
    for text in &seen {
        assert!(!text.contains("LEAKCANARY"), "a key leaked:\n{text}");
    }
}

#[test]
fn twilio_voice_webhook_refuses_unrouted_numbers() {
    // A number nobody routed gets 404, even in sandbox (the signed flow is in tests/access.rs).
    let server = Server::sandbox();
    let (status, body) = http("POST", &format!("{}/twilio/voice", server.url), Some(""), None);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("unknown_number"), "{body}");
    let health = server.get("/healthz");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["sandbox"], true);
}

mod gateway_input {
    //! Bad gateway input gets a clear, typed error and the server keeps serving.

    use super::util::*;
    use futures::{SinkExt, StreamExt};
    use serde_json::json;
    use std::time::Duration;
    use tokio_tungstenite::tungstenite::Message;

    type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    async fn connect(server: &Server, path: &str) -> Ws {
        let url = format!("{}{path}", server.url.replacen("http", "ws", 1));
        tokio_tungstenite::connect_async(url.as_str()).await.expect("ws connect").0
    }

    fn start(call_sid: &str) -> Message {
        Message::text(
            json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
                "start": {"streamSid": "MZ1", "callSid": call_sid, "accountSid": "AC1", "tracks": ["inbound"], "customParameters": {},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
            .to_string(),
        )
    }

    fn silence_frame() -> Message {
        Message::text(json!({"event": "media", "streamSid": "MZ1", "media": {"track": "inbound", "payload": "/".repeat(212) + "/w=="}}).to_string())
    }

    /// Read until the server closes; returns the close code and reason.
    async fn closed(ws: &mut Ws) -> (u16, String) {
        let r = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(m) = ws.next().await {
                match m {
                    Ok(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
                    Ok(Message::Close(None)) => return (1005, String::new()),
                    Ok(_) => {}
                    Err(e) => return (0, e.to_string()),
                }
            }
            (0, "eof".into())
        })
        .await;
        r.expect("the server closes")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn media_before_start_is_refused_with_a_reason() {
        let server = Server::sandbox();
        let mut ws = connect(&server, "/twilio/stream").await;
        ws.send(silence_frame()).await.unwrap();
        let (code, reason) = closed(&mut ws).await;
        assert_eq!(code, 1008);
        assert!(reason.starts_with("media_before_start"), "{reason}");
        assert_eq!(server.get("/healthz")["status"], "ok");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn malformed_messages_mid_call_are_counted_and_the_call_goes_on() {
        let server = Server::sandbox();
        let mut ws = connect(&server, "/twilio/stream").await;
        ws.send(start("CAbad1")).await.unwrap();
        for _ in 0..10 {
            ws.send(silence_frame()).await.unwrap();
        }
        ws.send(Message::text("{not json")).await.unwrap();
        ws.send(Message::text(r#"{"event":"dance","streamSid":"MZ1"}"#)).await.unwrap();
        ws.send(Message::text(r#"{"event":"media","streamSid":"MZ1","media":{"payload":"***not base64***"}}"#))
            .await
            .unwrap();
        ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
        for _ in 0..10 {
            ws.send(silence_frame()).await.unwrap();
        }
        ws.send(Message::text(r#"{"event":"stop","streamSid":"MZ1","stop":{}}"#)).await.unwrap();
        let session = tokio::task::spawn_blocking({
            let url = server.url.clone();
            move || Server::wait_closed_at(&url, "CAbad1")
        })
        .await
        .unwrap();
        assert_eq!(session["end_reason"], "hangup", "{session}");
        let m = server.metrics();
        for code in ["bad_json", "unknown_event", "bad_base64", "binary_not_allowed"] {
            assert!(m.contains(&format!(r#"code="{code}""#)), "{code} counted:\n{m}");
        }
        let log = server.log_text();
        assert!(log.contains("bad gateway message ignored") && log.contains("bad_base64"), "{log}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_oversized_frame_closes_only_that_connection() {
        let server = Server::sandbox();
        let mut ws = connect(&server, "/twilio/stream").await;
        ws.send(start("CAbig1")).await.unwrap();
        let big = format!(r#"{{"event":"media","streamSid":"MZ1","media":{{"payload":"{}"}}}}"#, "A".repeat(200_000));
        let _ = ws.send(Message::text(big)).await;
        let (code, _) = closed(&mut ws).await;
        assert!(code == 1009 || code == 0 || code == 1005 || code == 1006, "closed with {code}");
        let session = tokio::task::spawn_blocking({
            let url = server.url.clone();
            move || Server::wait_closed_at(&url, "CAbig1")
        })
        .await
        .unwrap();
        assert_eq!(session["status"], "closed");
        assert_eq!(server.get("/healthz")["status"], "ok");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn client_protocol_errors_come_back_as_error_messages() {
        let server = Server::sandbox();
        let mut ws = connect(&server, "/v1/client").await;
        ws.send(Message::text(
            r#"{"type":"start","call_id":"CAcl1","audio":{"encoding":"pcm16","sample_rate":16000}}"#,
        ))
        .await
        .unwrap();
        ws.send(Message::text("{oops")).await.unwrap();
        ws.send(Message::binary(vec![0u8; 3])).await.unwrap(); // odd byte count is not PCM16
        let mut codes = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                    if v["type"] == "error" {
                        codes.push(v["code"].as_str().unwrap_or("").to_string());
                        if codes.len() == 2 {
                            break;
                        }
                    }
                }
            }
        })
        .await;
        assert_eq!(codes, vec!["bad_json", "bad_audio"]);
        ws.send(Message::text(r#"{"type":"stop"}"#)).await.unwrap();
        let mut ended = false;
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            if let Message::Text(t) = m {
                if t.as_str().contains(r#""type":"end""#) {
                    ended = true;
                    break;
                }
            }
        }
        assert!(ended, "the session ends with an end message");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_caller_hanging_up_mid_turn_still_settles_the_session() {
        let server = Server::sandbox();
        let (samples, rate) = media::wav::read_wav(asset("simple.wav")).unwrap();
        let mut rs = media::Resampler::new(rate, 8000).unwrap();
        let mut pcm8 = Vec::new();
        for c in samples.chunks(320) {
            rs.process(c, &mut pcm8).unwrap();
        }
        let mut ws = connect(&server, "/twilio/stream").await;
        ws.send(start("CAdrop1")).await.unwrap();
        let mut ulaw = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut got_audio = false;
        // Talk in real time until the agent starts answering, then vanish without `stop`.
        for frame in pcm8.chunks(160) {
            tick.tick().await;
            media::g711::encode_ulaw_into(frame, &mut ulaw);
            use base64::Engine;
            let payload = base64::engine::general_purpose::STANDARD.encode(&ulaw);
            ws.send(Message::text(
                json!({"event": "media", "streamSid": "MZ1", "media": {"payload": payload}}).to_string(),
            ))
            .await
            .unwrap();
            while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(1), ws.next()).await {
                if let Message::Text(t) = m {
                    got_audio |= t.as_str().contains(r#""event":"media""#);
                }
            }
            if got_audio {
                break;
            }
        }
        assert!(got_audio, "the agent was speaking when the caller dropped");
        drop(ws); // TCP gone, no close handshake
        let session = tokio::task::spawn_blocking({
            let url = server.url.clone();
            move || Server::wait_closed_at(&url, "CAdrop1")
        })
        .await
        .unwrap();
        assert_eq!(session["end_reason"], "gateway_disconnected");
        let lines: Vec<&str> = session["usage"].as_array().unwrap().iter().filter_map(|u| u["line"].as_str()).collect();
        for line in ["stt", "llm.input", "llm.output", "tts"] {
            assert!(lines.contains(&line), "{line} billed: {session}");
        }
        assert!(server.metrics().contains("switchboard_sessions_active 0"));
    }

    #[test]
    fn a_provider_closing_mid_stream_ends_the_call_with_a_clear_error() {
        let sim = Sim::start(
            &[("deepgram", "k1"), ("openai", "k2"), ("elevenlabs", "k3")],
            &["--sim-stt-fail-after-ms", "2000"],
        );
        let server = Server::start(ServerOpts {
            env: vec![
                ("DEEPGRAM_API_KEY", "k1".into()),
                ("OPENAI_API_KEY", "k2".into()),
                ("ELEVENLABS_API_KEY", "k3".into()),
            ],
            args: sim.provider_args(),
        });
        let out = call(&server.url, &asset("simple.wav"), &[]);
        assert!(!out.ok, "the call reports failure");
        let errors = out.of("error");
        assert!(errors.iter().any(|e| e["code"].as_str().is_some_and(|c| c.starts_with("stt_"))), "{}", out.stdout);
        let end = out.of("end");
        assert!(end[0]["reason"].as_str().unwrap_or("").starts_with("stt_"), "{}", out.stdout);
        assert!(out.of("usage").iter().any(|u| u["line"] == "stt"), "audio sent before the failure is billed");
        // The server keeps serving: a second call on a healthy path works after the failure.
        assert_eq!(server.get("/healthz")["status"], "ok");
    }
}

#[test]
fn a_crash_loses_at_most_one_checkpoint_and_restart_closes_the_session() {
    let mut server = Server::sandbox();
    let db = format!("sqlite:{}", server.dir.join("sb.db").display());
    let url = server.url.clone();
    let caller = std::thread::spawn(move || call(&url, &asset("multi_turn.wav"), &[]));
    // Let the call run until its first agent turn's tokens are priced (at the end of the LLM
    // round), then past the next checkpoint (every 2 s), which writes them.
    server.wait_for_session();
    server.wait_for_metric("the first turn's tokens priced", |l| {
        l.starts_with("switchboard_usage_atoms_total{") && l.contains(r#"service="llm""#)
    });
    std::thread::sleep(Duration::from_millis(2_500));
    let killed_at_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    server.kill();
    let out = caller.join().unwrap();
    assert!(!out.ok, "the caller saw the server die");
    let call_sid = out.call_sid();

    let restarted = Server::start_with_db(ServerOpts { env: vec![], args: vec![] }, Some(db));
    assert!(restarted.log_text().contains("closed sessions a previous run left open"), "{}", restarted.log_text());
    let s = restarted.get(&format!("/api/calls/{call_sid}"));
    assert_eq!(s["status"], "closed");
    assert_eq!(s["end_reason"], "abandoned");
    let usage = s["usage"].as_array().unwrap();
    let stt_s: f64 = usage.iter().filter(|u| u["line"] == "stt").map(|u| u["quantity"].as_f64().unwrap()).sum();
    assert!(stt_s >= 3.0, "stt seconds recorded before the crash: {stt_s}");
    assert!(usage.iter().any(|u| u["service"] == "llm"), "the first turn's tokens are on record");
    let ended = s["ended_at_ms"].as_i64().unwrap();
    let last = usage.iter().map(|u| u["created_at_ms"].as_i64().unwrap()).max().unwrap();
    assert_eq!(ended, last, "closed at its last checkpoint");
    // Checkpoints every 2 s: what is lost is at most one interval (plus scheduling slack).
    assert!(killed_at_ms - last <= 2_700, "last checkpoint {} ms before the crash", killed_at_ms - last);
}

/// Operators' view: logs written to a file are JSON lines without colour codes, and an
/// unreachable Postgres is reported within seconds with its address and cause.
#[test]
fn logs_are_json_lines_and_an_unreachable_store_is_named() {
    let server = Server::sandbox();
    let log = server.log_text();
    let first = log.lines().next().expect("a log line");
    let v: Value = serde_json::from_str(first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"));
    assert!(v.get("level").is_some(), "{v}");
    assert!(!log.contains('\u{1b}'), "no ANSI escapes in a log file");

    let t0 = std::time::Instant::now();
    let out = std::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--database", "postgres://postgres:hunter2@127.0.0.1:1/nowhere"])
        .current_dir(root())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(t0.elapsed() < std::time::Duration::from_secs(20), "reported in {:?}", t0.elapsed());
    assert!(err.contains("127.0.0.1:1") && err.contains("unreachable"), "{err}");
    assert!(err.to_lowercase().contains("refused"), "the cause is named: {err}");
    assert!(!err.contains("hunter2"), "no password in the message");
}

/// The binary carries its rate table and recorded calls: started outside the checkout, with
/// a host name to listen on, the sandbox still answers a recorded call.
#[test]
fn serve_runs_from_any_directory() {
    let dir = std::env::temp_dir().join(format!("sb-anywhere-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = std::process::Command::new(bin())
        .args(["serve", "--listen", "localhost:0", "--database", "sqlite:anywhere.db"])
        .current_dir(&dir)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_default().to_string();
    let out = call(&url, &asset("simple.wav"), &[]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.ok, "{line}\n{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.texts("transcript"), vec!["Hello, what are your opening hours?"]);
}

/// Sandbox mode simulates every provider the rate table marks managed, the OpenAI-compatible
/// family included (served by the OpenAI simulator).
#[test]
fn sandbox_manages_every_managed_provider_of_the_rate_table() {
    let server = Server::sandbox();
    let v = server.get("/api/rates/models");
    let csv = std::fs::read_to_string(root().join("assets/rates.csv")).unwrap();
    for line in csv.lines().filter(|l| !l.starts_with('#') && !l.starts_with("service,")) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 6 || f[5] != "true" || !["stt", "llm", "tts"].contains(&f[0]) {
            continue;
        }
        let managed = v["managedProviders"][f[0]].as_array().unwrap();
        assert!(managed.iter().any(|p| p == f[1]), "{}.{} is managed in the rate table: {managed:?}", f[0], f[1]);
    }
}

/// `/metrics` has the process's own metrics, spend per provider, and the gateway on both
/// directions of the frame counter.
#[test]
fn metrics_name_the_process_the_provider_and_the_gateway() {
    let server = Server::sandbox();
    let out = call(&server.url, &asset("simple.wav"), &[]);
    assert!(out.ok, "{}", out.stdout);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let m = loop {
        let m = server.metrics();
        if m.contains("process_resident_memory_bytes") || std::time::Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert!(m.contains("process_resident_memory_bytes"), "{m}");
    assert!(m.contains("process_cpu_seconds_total"), "{m}");
    let line =
        |prefix: &str, parts: &[&str]| m.lines().any(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)));
    assert!(line("switchboard_frames_total", &[r#"direction="out""#, r#"gateway="twilio""#]), "{m}");
    assert!(line("switchboard_usage_amount_micros_total", &[r#"provider="deepgram""#, r#"service="stt""#]), "{m}");
}

/// One config file: its values apply under the environment and the flags, and `switchboard
/// config` shows the result without secrets; an unknown key is refused by name.
#[test]
fn a_config_file_is_layered_under_the_environment_and_the_flags() {
    let dir = std::env::temp_dir().join(format!("sb-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("switchboard.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9999\"\ndatabase = \"postgres://app:hunter2@db:5432/sb\"\ndrain_secs = 12\nidle_timeout_secs = 9\nadmin_token = \"admin-in-a-file\"\n",
    )
    .unwrap();
    let config = |env: &[(&str, &str)], flags: &[&str]| {
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("config").arg("--config").arg(&file).args(flags).env_remove("SWITCHBOARD_ADMIN_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let shown = config(&[("SWITCHBOARD_DRAIN_SECS", "7")], &["--idle-timeout-secs", "3"]);
    assert!(shown.contains("listen = \"127.0.0.1:9999\""), "from the file: {shown}");
    assert!(shown.contains("drain_secs = 7"), "the environment over the file: {shown}");
    assert!(shown.contains("idle_timeout_secs = 3"), "flags over both: {shown}");
    assert!(shown.contains("admin_token = (set)") && !shown.contains("admin-in-a-file"), "{shown}");
    assert!(shown.contains("app:***@db") && !shown.contains("hunter2"), "{shown}");
    std::fs::write(&file, "no_such_key = 1\n").unwrap();
    let out = std::process::Command::new(bin()).arg("config").arg("--config").arg(&file).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key \"no_such_key\""));
}

/// A caller that keeps sending audio after its `stop` (a browser's microphone does) still gets
/// the usage, the end event and the close frame. The server reads what arrives until the close
/// handshake is over: closing a socket with unread data makes the kernel reset the connection,
/// and the reset throws away what the caller had not read yet.
#[test]
fn a_caller_still_sending_after_stop_gets_usage_end_and_the_close_frame() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let server = Server::sandbox();
    let url = format!("{}/v1/client", server.url.replace("http://", "ws://"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (texts, closed) = rt.block_on(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("upgrade");
        let start = r#"{"type":"start","params":{"agent":"default"},"audio":{"encoding":"pcm16","sample_rate":16000}}"#;
        ws.send(Message::text(start)).await.expect("start");
        let frame = vec![0u8; 640];
        for _ in 0..50 {
            ws.send(Message::binary(frame.clone())).await.expect("audio");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        ws.send(Message::text(r#"{"type":"stop"}"#)).await.expect("stop");
        // 8 s of audio at once, none of it read by a server that only listens until `stop`.
        for _ in 0..400 {
            if ws.send(Message::binary(frame.clone())).await.is_err() {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
        let (mut texts, mut closed) = (Vec::new(), None);
        while let Ok(Some(msg)) = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await {
            match msg {
                Ok(Message::Text(t)) => texts.push(serde_json::from_str::<Value>(t.as_str()).unwrap_or(Value::Null)),
                Ok(Message::Close(frame)) => closed = Some(frame.map_or(1005, |f| u16::from(f.code))),
                Ok(_) => {}
                Err(e) => {
                    texts.push(serde_json::json!({"type": "socket_error", "message": e.to_string()}));
                    break;
                }
            }
        }
        (texts, closed)
    });
    let types: Vec<&str> = texts.iter().filter_map(|v| v["type"].as_str()).collect();
    assert!(types.contains(&"usage") && types.contains(&"end"), "usage and end arrived: {texts:?}");
    assert_eq!(closed, Some(1000), "a clean close frame: {texts:?}");
    assert!(!types.contains(&"socket_error"), "the connection ended cleanly, not reset: {texts:?}");
}
