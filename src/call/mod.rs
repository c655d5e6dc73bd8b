//! `switchboard call`: plays a recorded call into a server exactly as a gateway would, prints
//! the conversation as it happens and the session's usage records at the end.
//!
//! Each gateway's wire format is one module behind [`wire::CallerWire`] (its registry row in
//! `gateways` names it); this loop paces the
//! audio in 20 ms frames, keeps a playback clock for the agent's audio (so marks are answered
//! when the audio would have played, and `clear` drops it), and prints. Carrier wires carry no
//! text, so those calls are watched through `/api/calls/{call_id}/events`; the client protocol
//! carries its events in-band.

mod answer;
pub(crate) mod asterisk;
pub(crate) mod client;
mod output;
pub(crate) mod plivo;
pub(crate) mod telnyx;
pub(crate) mod twilio;
pub(crate) mod vonage;
mod wire;

pub(crate) use answer::AnswerCall;
pub(crate) use wire::CallerWire;

use crate::cli::CallArgs;
use crate::gateways::Media;
use anyhow::{bail, Context};
use futures::{Sink, SinkExt, Stream, StreamExt};
use output::{on_event, print_audio, print_usage, Printer, Report};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use wire::Received;

const FRAME: Duration = Duration::from_millis(20);

/// The call's outbound half: a websocket's, or a TCP wire's behind the same message type.
type CallSink = Pin<Box<dyn Sink<Message, Error = tungstenite::Error> + Send>>;
type CallStream = Pin<Box<dyn Stream<Item = Result<Message, tungstenite::Error>> + Send>>;

/// Connect the wire's transport: the server's websocket endpoint (or the one the carrier's
/// answer named), or AudioSocket's TCP port. The upgrade carries what the real peer would: the
/// answer's headers, a client token, or the org key / admin token of a server-to-server call.
async fn connect(args: &CallArgs, answered: Option<&answer::Answered>) -> anyhow::Result<(CallSink, CallStream)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let path = match args.gateway.media {
        Media::Websocket { path, .. } => path,
        Media::AudioSocket => {
            let addr = args
                .audiosocket
                .as_deref()
                .context("--gateway asterisk needs --audiosocket HOST:PORT (the server's --audiosocket-listen)")?;
            return asterisk::connect(addr).await;
        }
    };
    let mut url = match answered {
        Some(a) => a.url.clone(),
        None => format!("{}{path}", ws_base(&args.server)),
    };
    if let Some(t) = &args.client_token {
        url = format!("{url}?token={t}");
    }
    let mut req = url.as_str().into_client_request().with_context(|| format!("bad stream URL {url}"))?;
    let mut headers: Vec<(String, String)> = answered.map(|a| a.headers.clone()).unwrap_or_default();
    if let (None, Some(t)) = (answered, &args.token) {
        headers.push(("Authorization".into(), format!("Bearer {t}")));
    }
    for (k, v) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(k.as_bytes()).context("header name")?;
        req.headers_mut().insert(name, v.parse().context("header value")?);
    }
    let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
        .await
        .with_context(|| format!("connecting to {}", url.split('?').next().unwrap_or_default()))?;
    let (tx, rx) = ws.split();
    Ok((Box::pin(tx), Box::pin(rx)))
}

/// `--server` as an HTTP base: `host:port` gets `http://`.
pub(super) fn http_base(server: &str) -> String {
    let s = server.trim_end_matches('/');
    if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    }
}

fn ws_base(server: &str) -> String {
    let s = http_base(server);
    if let Some(rest) = s.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = s.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        s
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
async fn watch(args: &CallArgs, call_id: &str) -> anyhow::Result<tokio::sync::mpsc::Receiver<Value>> {
    let url = format!("{}/api/calls/{call_id}/events", http_base(&args.server));
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

/// The agent's audio as the caller's phone plays it: when what was received so far ends, and
/// the marks waiting for it.
struct Playback {
    until: Instant,
    marks: VecDeque<(Instant, String)>,
}

impl Playback {
    fn received(&mut self, ms: u64) {
        self.until = self.until.max(Instant::now()) + Duration::from_millis(ms);
    }

    /// Marks whose audio has played by `now`.
    fn played(&mut self, now: Instant) -> impl Iterator<Item = String> + '_ {
        std::iter::from_fn(move || {
            if self.marks.front().is_some_and(|(t, _)| *t <= now) {
                self.marks.pop_front().map(|(_, name)| name)
            } else {
                None
            }
        })
    }
}

/// Without `--tail`: the most silence sent after the recording while waiting for the reply.
const AUTO_TAIL_MAX_S: f64 = 20.0;
/// Without `--tail`: how long the agent must have been quiet before hanging up.
const AUTO_TAIL_QUIET: Duration = Duration::from_millis(1500);

pub async fn run(args: CallArgs) -> anyhow::Result<std::process::ExitCode> {
    let (samples, rate) =
        media::wav::read_wav(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let p = Printer { json: args.json, t0: std::time::Instant::now() };
    let mut wire = (args.gateway.caller)(&args.agent);
    let call_id = wire.call_id().to_string();
    let out_rate = wire.rate();
    let mut frames = frames_at(&samples, rate, out_rate)?;
    let recording = frames.len();
    let tail = (args.tail.unwrap_or(AUTO_TAIL_MAX_S) * 50.0).round() as usize;
    frames.extend(std::iter::repeat_n(vec![0i16; media::samples_per_20ms(out_rate)], tail));

    let answered = match args.number {
        Some(_) => Some(answer::answer(&args, &call_id).await?),
        None => None,
    };
    for (k, v) in answered.iter().flat_map(|a| a.params.iter()) {
        wire.add_param(k, v);
    }
    let mut events = if wire.in_band_events() { None } else { Some(watch(&args, &call_id).await?) };
    let (mut tx, mut rx) = connect(&args, answered.as_ref()).await?;
    for m in wire.opening() {
        tx.send(m).await?;
    }
    if !p.json {
        println!("calling {} as {} ({} s of audio, call {call_id})", args.server, args.gateway.name, frames.len() / 50);
    }

    let mut r = Report::default();
    let mut next = Instant::now();
    let mut i = 0usize;
    let mut stopped = false;
    let mut ws_open = true;
    let mut playback = Playback { until: Instant::now(), marks: VecDeque::new() };
    let mut mark_tick = tokio::time::interval(FRAME);
    let mut pcm = Vec::with_capacity(960);
    let mut ended = false;
    let hard_deadline = Instant::now() + Duration::from_secs(frames.len() as u64 / 50 + 120);
    let mut stop_deadline: Option<Instant> = None;
    // A refused or failed call may never reach the event stream (a refusal at admission has no
    // session): after its close frame, wait briefly for the end event, not until the deadline.
    let mut refused_at: Option<Instant> = None;
    loop {
        if Instant::now() > hard_deadline {
            bail!("the call did not end in time");
        }
        let sending = !stopped && i < frames.len();
        let mut got: Option<Received> = None;
        tokio::select! {
            _ = tokio::time::sleep_until(next), if sending => {
                let msg = wire.media(&frames[i]);
                i += 1;
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
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<Value>(t.as_str()) {
                    Ok(v) => got = Some(wire.text(&v, &mut pcm)),
                    Err(e) => r.error(&p, json!({"type":"error","code":"bad_json","message": e.to_string()}), || format!("error  server sent bad JSON: {e}")),
                },
                Some(Ok(Message::Binary(b))) => got = Some(wire.binary(&b, &mut pcm)),
                Some(Ok(Message::Close(frame))) => {
                    ws_open = false;
                    if let Some(f) = frame {
                        if u16::from(f.code) != 1000 {
                            refused_at = Some(Instant::now());
                        }
                        if u16::from(f.code) != 1000 && !f.reason.is_empty() {
                            r.error(&p, json!({"type": "error", "code": "closed", "close_code": u16::from(f.code), "message": f.reason.to_string()}), || format!("error  server closed the call: {} ({})", f.reason, u16::from(f.code)));
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    ws_open = false;
                    if !stopped { r.error(&p, json!({"type":"error","code":"socket","message": e.to_string()}), || format!("error  {e}")); }
                }
                None => ws_open = false,
            },
            ev = async { match events.as_mut() { Some(e) => e.recv().await, None => std::future::pending().await } } => match ev {
                Some(v) => if on_event(&p, &mut r, &v) { ended = true; },
                None => events = None,
            },
            _ = mark_tick.tick() => {
                let now = Instant::now();
                for name in playback.played(now) {
                    if let Some(m) = wire.mark_played(&name) {
                        let _ = tx.send(m).await;
                    }
                }
                if wire.turn_gap().is_some_and(|gap| r.audio_since_mark_ms > 0 && now >= playback.until + gap) {
                    print_audio(&p, &mut r, "stopped");
                }
                // No `--tail`: once the recording is sent, hang up when the agent has answered
                // and gone quiet.
                if args.tail.is_none() && !args.fast && !stopped && i >= recording && !r.awaiting_reply
                    && !r.turn_open && now >= playback.until
                    && r.last_activity.is_none_or(|t| t.elapsed() > AUTO_TAIL_QUIET) {
                    stop_deadline = Some(now);
                }
                // Fast mode: once the audio is sent, hang up when the agent has gone quiet.
                if args.fast && !stopped && i >= frames.len() && !r.turn_open
                    && r.last_activity.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
                    stop_deadline = Some(now);
                }
            }
        }
        match got {
            None | Some(Received::Ignore) => {}
            Some(Received::Audio) => {
                r.saved.extend_from_slice(&pcm);
                let ms = pcm.len() as u64 * 1000 / u64::from(out_rate);
                r.audio_ms += ms;
                r.audio_since_mark_ms += ms;
                playback.received(ms);
            }
            Some(Received::Mark(name)) => {
                print_audio(&p, &mut r, "end of turn");
                playback.marks.push_back((playback.until, name));
            }
            Some(Received::TurnEnd) => print_audio(&p, &mut r, "end of turn"),
            Some(Received::Clear { ack_marks, reply }) => {
                print_audio(&p, &mut r, "cleared");
                playback.until = Instant::now();
                if let Some(m) = reply {
                    let _ = tx.send(m).await;
                }
                if !ack_marks {
                    playback.marks.clear();
                }
                while let Some((_, name)) = playback.marks.pop_front() {
                    if let Some(m) = wire.mark_played(&name) {
                        let _ = tx.send(m).await;
                    }
                }
            }
            Some(Received::Event(v)) => ended |= on_event(&p, &mut r, &v),
            Some(Received::Error(e)) => {
                r.error(&p, json!({"type": "error", "code": e.code, "message": e.message}), || {
                    format!("error  {}", e.human)
                })
            }
        }
        if !stopped && stop_deadline.is_some_and(|d| Instant::now() >= d) {
            stopped = true;
            let _ = tx.send(wire.stop()).await;
        }
        if ended || (!ws_open && events.is_none()) {
            break;
        }
        if refused_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
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
    p.line(json!({"type": "end", "reason": reason, "errors": r.errors, "audio_ms": r.audio_ms, "records": r.usage.len(), "call_sid": call_id}), || {
        format!("end: {reason}; {:.1} s of agent audio; {} errors", r.audio_ms as f64 / 1000.0, r.errors)
    });
    // The caller hanging up, and the agent ending or transferring the call with its tools, are
    // the normal ends; anything else is a failed call.
    if r.errors > 0 || !matches!(reason.as_str(), "hangup" | "agent_ended" | "transferred") {
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}
