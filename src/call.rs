//! `switchboard call`: plays a recorded call into a server exactly as a gateway would, prints
//! the conversation as it happens and the session's usage records at the end.
//!
//! Twilio mode speaks Media Streams (connected/start/media/stop; echoes marks when their audio
//! would have played; honours clear) and watches the call through `/api/calls/{sid}/events`.
//! Client mode speaks docs/client-protocol.md, which carries the events in-band.

use crate::cli::{CallArgs, Gateway};
use anyhow::{bail, Context};
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const FRAME: Duration = Duration::from_millis(20);

struct Printer {
    json: bool,
    t0: std::time::Instant,
}

impl Printer {
    fn line(&self, v: Value, human: impl FnOnce() -> String) {
        if self.json {
            let mut v = v;
            if let Some(o) = v.as_object_mut() {
                o.insert("t".into(), json!((self.t0.elapsed().as_millis() as f64) / 1000.0));
            }
            println!("{v}");
        } else {
            println!("[{:>6.2}s] {}", self.t0.elapsed().as_secs_f64(), human());
        }
    }
}

#[derive(Default)]
struct Report {
    errors: u32,
    audio_ms: u64,
    audio_since_mark_ms: u64,
    saved: Vec<i16>,
    end_reason: Option<String>,
    usage: Vec<Value>,
    turn_open: bool,
    last_activity: Option<Instant>,
}

fn ws_base(server: &str) -> String {
    let s = server.trim_end_matches('/');
    if let Some(rest) = s.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = s.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        s.to_string()
    }
}

/// Handle one session event (from SSE or in-band); returns true at `end`.
fn on_event(p: &Printer, r: &mut Report, ev: &Value) -> bool {
    let ty = ev.get("type").and_then(Value::as_str).unwrap_or("");
    let s = |k: &str| ev.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    r.last_activity = Some(Instant::now());
    match ty {
        "transcript" if ev.get("is_final").and_then(Value::as_bool) == Some(true) => {
            let text = s("text");
            p.line(json!({"type": "transcript", "text": text}), || format!("caller › {text}"));
        }
        "agent" => {
            r.turn_open = true;
            let text = s("text");
            p.line(json!({"type": "agent", "text": text, "turn": ev.get("turn")}), || {
                format!("agent  › {}", text.trim_end())
            });
        }
        "agent_done" => r.turn_open = false,
        "barge_in" => {
            r.turn_open = false;
            let kept = s("kept_text");
            let played = ev.get("played_ms").and_then(Value::as_u64).unwrap_or(0);
            p.line(json!({"type": "barge_in", "turn": ev.get("turn"), "played_ms": played, "kept_text": kept}), || {
                format!(
                    "barge-in: caller talked over the agent after {:.1} s; kept \"{}\"",
                    played as f64 / 1000.0,
                    kept
                )
            });
        }
        "error" => {
            r.errors += 1;
            let (code, msg) = (s("code"), s("message"));
            p.line(json!({"type": "error", "code": code, "message": msg}), || format!("error  {code}: {msg}"));
        }
        "usage" => {
            if let Some(recs) = ev.get("records").and_then(Value::as_array) {
                r.usage = recs.clone();
            }
        }
        "end" => {
            r.end_reason = Some(s("reason"));
            return true;
        }
        _ => {}
    }
    false
}

fn print_audio(p: &Printer, r: &mut Report, why: &str) {
    if r.audio_since_mark_ms == 0 {
        return;
    }
    let ms = r.audio_since_mark_ms;
    r.audio_since_mark_ms = 0;
    p.line(json!({"type": "audio", "ms": ms, "total_ms": r.audio_ms, "at": why}), || {
        format!("audio  ‹ {:.2} s of agent audio ({why})", ms as f64 / 1000.0)
    });
}

fn print_usage(p: &Printer, r: &Report) {
    let mut total: i64 = 0;
    if !p.json {
        println!("\nusage records:");
        println!(
            "  {:<13} {:<10} {:<18} {:>12} {:<14} {:<8} {:>12} est",
            "line", "provider", "model", "quantity", "unit", "billed", "amount µ$"
        );
    }
    for rec in &r.usage {
        total += rec.get("amount_micros").and_then(Value::as_i64).unwrap_or(0);
        if p.json {
            let mut v = rec.clone();
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), json!("usage"));
            }
            println!("{v}");
        } else {
            let g = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            println!(
                "  {:<13} {:<10} {:<18} {:>12.3} {:<14} {:<8} {:>12} {}",
                format!("{}#{}", g("line"), rec.get("seq").and_then(Value::as_u64).unwrap_or(0)),
                g("provider"),
                g("model"),
                rec.get("quantity").and_then(Value::as_f64).unwrap_or(0.0),
                g("unit"),
                g("billed_to"),
                rec.get("amount_micros").and_then(Value::as_i64).unwrap_or(0),
                if rec.get("estimated").and_then(Value::as_bool) == Some(true) { "estimated" } else { "" }
            );
        }
    }
    if !p.json {
        println!("  total: {} µ$ (${:.6})", total, total as f64 / 1e6);
    }
}

/// Resample the file to the gateway's rate, in 20 ms frames.
fn frames_at(samples: &[i16], from: u32, to: u32) -> anyhow::Result<Vec<Vec<i16>>> {
    let mut rs = media::Resampler::new(from, to).context("resampler")?;
    let mut out = Vec::with_capacity(samples.len() * to as usize / from as usize + 1024);
    for chunk in samples.chunks(media::samples_per_20ms(from)) {
        rs.process(chunk, &mut out).context("resampling")?;
    }
    let n = media::samples_per_20ms(to);
    Ok(out
        .chunks(n)
        .map(|c| {
            let mut f = c.to_vec();
            f.resize(n, 0);
            f
        })
        .collect())
}

/// Subscribe to the call's live events over SSE; lines arrive on the returned channel.
async fn watch(args: &CallArgs, call_sid: &str) -> anyhow::Result<tokio::sync::mpsc::Receiver<Value>> {
    let url = format!("{}/api/calls/{call_sid}/events", args.server.trim_end_matches('/'));
    let mut req = reqwest::Client::new().get(&url);
    if let Some(t) = &args.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.with_context(|| format!("cannot reach the server at {}", args.server))?;
    if !resp.status().is_success() {
        bail!("watching the call failed: HTTP {} {}", resp.status(), resp.text().await.unwrap_or_default());
    }
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        let mut body = resp.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(i) = buf.find('\n') {
                let line: String = buf.drain(..=i).collect();
                if let Some(data) = line.trim_end().strip_prefix("data:") {
                    if let Ok(v) = serde_json::from_str::<Value>(data.trim_start()) {
                        if tx.send(v).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    Ok(rx)
}

pub async fn run(args: CallArgs) -> anyhow::Result<std::process::ExitCode> {
    let (samples, rate) =
        media::wav::read_wav(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let p = Printer { json: args.json, t0: std::time::Instant::now() };
    let call_sid = format!("CA{}", uuid::Uuid::new_v4().simple());
    let twilio = args.gateway == Gateway::Twilio;
    let out_rate: u32 = if twilio { 8000 } else { 16000 };
    let mut frames = frames_at(&samples, rate, out_rate)?;
    let tail = (args.tail * 50.0).round() as usize;
    frames.extend(std::iter::repeat_n(vec![0i16; media::samples_per_20ms(out_rate)], tail));

    let mut events = if twilio { Some(watch(&args, &call_sid).await?) } else { None };
    let url = format!("{}{}", ws_base(&args.server), if twilio { "/twilio/stream" } else { "/v1/client" });
    let (ws, _) =
        tokio_tungstenite::connect_async(url.as_str()).await.with_context(|| format!("connecting to {url}"))?;
    let (mut tx, mut rx) = ws.split();
    let stream_sid = format!("MZ{}", uuid::Uuid::new_v4().simple());
    let mut seq: u64 = 1;
    if twilio {
        tx.send(Message::text(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string()))
            .await?;
        let start = json!({"event": "start", "sequenceNumber": seq.to_string(), "streamSid": stream_sid,
            "start": {"streamSid": stream_sid, "accountSid": format!("AC{}", uuid::Uuid::new_v4().simple()), "callSid": call_sid,
                "tracks": ["inbound"], "customParameters": {"agent": args.agent},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}});
        tx.send(Message::text(start.to_string())).await?;
    } else {
        let start = json!({"type": "start", "call_id": call_sid, "params": {"agent": args.agent},
            "audio": {"encoding": "pcm16", "sample_rate": out_rate}});
        tx.send(Message::text(start.to_string())).await?;
    }
    if !p.json {
        println!("calling {} as {:?} ({} s of audio, call {call_sid})", args.server, args.gateway, frames.len() / 50);
    }

    let mut r = Report::default();
    let mut next = Instant::now();
    let mut i = 0usize;
    let mut stopped = false;
    let mut ws_open = true;
    let mut play_clock = Instant::now();
    let mut marks: VecDeque<(Instant, String)> = VecDeque::new();
    let mut mark_tick = tokio::time::interval(FRAME);
    let mut ulaw = Vec::with_capacity(160);
    let mut pcm = Vec::with_capacity(960);
    let mut ended = false;
    let hard_deadline = Instant::now() + Duration::from_secs(frames.len() as u64 / 50 + 120);
    let mut stop_deadline: Option<Instant> = None;
    loop {
        if Instant::now() > hard_deadline {
            bail!("the call did not end in time");
        }
        let sending = !stopped && i < frames.len();
        tokio::select! {
            _ = tokio::time::sleep_until(next), if sending => {
                let f = &frames[i];
                i += 1;
                seq += 1;
                let msg = if twilio {
                    media::g711::encode_ulaw_into(f, &mut ulaw);
                    let payload = base64::engine::general_purpose::STANDARD.encode(&ulaw);
                    Message::text(json!({"event": "media", "sequenceNumber": seq.to_string(), "streamSid": stream_sid,
                        "media": {"track": "inbound", "chunk": (i).to_string(), "timestamp": (i as u64 * 20).to_string(), "payload": payload}}).to_string())
                } else {
                    let mut b = Vec::with_capacity(f.len() * 2);
                    media::l16::encode_le_into(f, &mut b);
                    Message::binary(b)
                };
                if tx.send(msg).await.is_err() {
                    ws_open = false;
                    stopped = true;
                }
                next = if args.fast { Instant::now() } else { next + FRAME };
                if i == frames.len() && !args.fast {
                    stop_deadline = Some(Instant::now());
                }
                if i == frames.len() && args.fast {
                    r.last_activity = Some(Instant::now());
                }
            }
            msg = rx.next(), if ws_open => match msg {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = match serde_json::from_str(t.as_str()) {
                        Ok(v) => v,
                        Err(e) => { r.errors += 1; p.line(json!({"type":"error","code":"bad_json","message": e.to_string()}), || format!("error  server sent bad JSON: {e}")); continue; }
                    };
                    if twilio {
                        match v.get("event").and_then(Value::as_str) {
                            Some("media") => {
                                let b64 = v.pointer("/media/payload").and_then(Value::as_str).unwrap_or("");
                                match base64::engine::general_purpose::STANDARD.decode(b64) {
                                    Ok(bytes) => {
                                        media::g711::decode_ulaw_into(&bytes, &mut pcm);
                                        r.saved.extend_from_slice(&pcm);
                                        let ms = pcm.len() as u64 / 8;
                                        r.audio_ms += ms;
                                        r.audio_since_mark_ms += ms;
                                        play_clock = play_clock.max(Instant::now()) + Duration::from_millis(ms);
                                    }
                                    Err(_) => { r.errors += 1; p.line(json!({"type":"error","code":"bad_base64","message":"server sent invalid base64"}), || "error  server sent invalid base64".into()); }
                                }
                            }
                            Some("mark") => {
                                let name = v.pointer("/mark/name").and_then(Value::as_str).unwrap_or("").to_string();
                                print_audio(&p, &mut r, "end of turn");
                                marks.push_back((play_clock, name));
                            }
                            Some("clear") => {
                                print_audio(&p, &mut r, "cleared");
                                play_clock = Instant::now();
                                while let Some((_, name)) = marks.pop_front() {
                                    let m = json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}});
                                    let _ = tx.send(Message::text(m.to_string())).await;
                                }
                            }
                            other => { r.errors += 1; p.line(json!({"type":"error","code":"unknown_event","message": format!("{other:?}")}), || format!("error  server sent unknown event {other:?}")); }
                        }
                    } else if v.get("type").and_then(Value::as_str) == Some("clear") {
                        print_audio(&p, &mut r, "cleared");
                    } else if v.get("type").and_then(Value::as_str) == Some("mark") {
                        print_audio(&p, &mut r, "end of turn");
                    } else if on_event(&p, &mut r, &v) {
                        ended = true;
                    }
                }
                Some(Ok(Message::Binary(b))) => {
                    if media::l16::decode_le_into(&b, &mut pcm).is_ok() {
                        r.saved.extend_from_slice(&pcm);
                        let ms = pcm.len() as u64 * 1000 / u64::from(out_rate);
                        r.audio_ms += ms;
                        r.audio_since_mark_ms += ms;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    ws_open = false;
                    if let Some(f) = frame {
                        if u16::from(f.code) != 1000 && !f.reason.is_empty() {
                            r.errors += 1;
                            p.line(json!({"type": "error", "code": "closed", "close_code": u16::from(f.code), "message": f.reason.to_string()}), || format!("error  server closed the call: {} ({})", f.reason, u16::from(f.code)));
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    ws_open = false;
                    if !stopped { r.errors += 1; p.line(json!({"type":"error","code":"socket","message": e.to_string()}), || format!("error  {e}")); }
                }
                None => ws_open = false,
            },
            ev = async { match events.as_mut() { Some(e) => e.recv().await, None => std::future::pending().await } } => match ev {
                Some(v) => if on_event(&p, &mut r, &v) { ended = true; },
                None => events = None,
            },
            _ = mark_tick.tick() => {
                let now = Instant::now();
                while marks.front().is_some_and(|(t, _)| *t <= now) {
                    if let Some((_, name)) = marks.pop_front() {
                        let m = json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}});
                        let _ = tx.send(Message::text(m.to_string())).await;
                    }
                }
                // Fast mode: once the audio is sent, hang up when the agent has gone quiet.
                if args.fast && !stopped && i >= frames.len() && !r.turn_open
                    && r.last_activity.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
                    stop_deadline = Some(now);
                }
            }
        }
        if !stopped && stop_deadline.is_some_and(|d| Instant::now() >= d) {
            stopped = true;
            let stop = if twilio {
                json!({"event": "stop", "sequenceNumber": (seq + 1).to_string(), "streamSid": stream_sid, "stop": {"callSid": call_sid}})
            } else {
                json!({"type": "stop"})
            };
            let _ = tx.send(Message::text(stop.to_string())).await;
        }
        if ended || (!ws_open && events.is_none()) {
            break;
        }
        if !ws_open && !stopped {
            // The server hung up on us; wait for the end event only.
            stopped = true;
        }
    }
    let _ = tx.close().await;
    print_audio(&p, &mut r, "end of call");
    print_usage(&p, &r);
    if let Some(path) = &args.save_audio {
        media::wav::write_wav(path, &r.saved, out_rate).with_context(|| format!("writing {}", path.display()))?;
    }
    let reason = r.end_reason.clone().unwrap_or_else(|| "no end event".into());
    p.line(json!({"type": "end", "reason": reason, "errors": r.errors, "audio_ms": r.audio_ms, "records": r.usage.len(), "call_sid": call_sid}), || {
        format!("end: {reason}; {:.1} s of agent audio; {} errors", r.audio_ms as f64 / 1000.0, r.errors)
    });
    if r.errors > 0 || reason != "hangup" {
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}
