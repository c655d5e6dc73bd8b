//! `switchboard bench`: N concurrent gateway calls replaying the recorded assets in real time
//! against a server whose providers are `switchboard sim` in another process. Reports calls
//! held, setup time, late frames, how long the caller waits for each answer against the floor
//! the simulators' own latencies set, the server's CPU-seconds per call-minute and RSS per call
//! (read from /proc of the server process), and the server's own hop histograms.

use crate::cli::BenchArgs;
use anyhow::{bail, Context};
use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The server under test and its simulators, when the bench starts them itself.
struct Stack {
    _sim: Proc,
    server: Proc,
    url: String,
    /// The operator token of the bench's own server (it runs in production mode).
    admin: String,
    /// The server's store and log; removed when the bench ends.
    dir: std::path::PathBuf,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const BENCH_KEY: &str = "bench-sim-key";

/// The first line a child prints (its address), or an error once `wait` has passed: a child that
/// never prints (a wrapper that does not run the server) must not hang the bench. The rest of
/// its output is drained so it never blocks on a full pipe.
fn first_line(child: &mut Child, what: &str, wait: Duration) -> anyhow::Result<String> {
    let out = child.stdout.take().context("child stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        let _ = tx.send(r.read_line(&mut line).map(|_| line));
        for _ in r.lines() {}
    });
    match rx.recv_timeout(wait) {
        Ok(Ok(line)) if !line.is_empty() => Ok(line),
        Ok(Ok(_)) => bail!("{what} exited before printing its address"),
        Ok(Err(e)) => Err(e).with_context(|| format!("reading {what}'s output")),
        Err(_) => bail!("{what} printed no address within {} s (--start-timeout)", wait.as_secs()),
    }
}

fn start_stack(args: &BenchArgs) -> anyhow::Result<Stack> {
    let exe = std::env::current_exe().context("locating the switchboard binary")?;
    let mut sim = Command::new(&exe);
    sim.arg("sim").arg("--calls").arg(&args.calls_dir);
    for p in crate::sims::simulated_providers() {
        sim.arg("--key").arg(format!("{p}={}", crate::sims::key_for(p, BENCH_KEY)));
    }
    let wait = Duration::from_secs(args.start_timeout);
    let mut sim = Proc(sim.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().context("starting switchboard sim")?);
    let urls = first_line(&mut sim.0, "switchboard sim", wait)?;
    let urls: Value = serde_json::from_str(urls.trim()).context("reading the simulators' URLs")?;
    let dir = std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut server = match args.server_wrapper.as_deref().map(str::split_whitespace) {
        Some(mut words) => {
            let mut c = Command::new(words.next().context("--server-wrapper is empty")?);
            c.args(words).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    server
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .arg("--database")
        .arg(format!("sqlite:{}", dir.join("bench.db").display()))
        .arg("--spool")
        .arg(dir.join("unbilled.jsonl"))
        .env("RUST_LOG", "warn");
    let admin = format!("bench-{}", uuid::Uuid::new_v4().simple());
    server.env("SWITCHBOARD_ADMIN_TOKEN", &admin);
    // The vault holds the bench org's Twilio credential.
    let master =
        base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_u128().to_le_bytes().repeat(2));
    server.env("SWITCHBOARD_MASTER_KEYS", format!("bench:{master}"));
    for (svc, p) in crate::sims::simulated() {
        let key = format!("{svc}.{p}");
        let url = urls[&key].as_str().context("simulator URL")?;
        server.arg("--provider-url").arg(format!("{key}={url}"));
        server.env(crate::server::key_env(p), crate::sims::key_for(p, BENCH_KEY));
    }
    let log = dir.join("server.log");
    let log_file = std::fs::File::create(&log)?;
    let mut server =
        Proc(server.stdout(Stdio::piped()).stderr(log_file).spawn().context("starting switchboard serve")?);
    let line = first_line(&mut server.0, "switchboard serve", wait)
        .map_err(|e| anyhow::anyhow!("{e:#} (its log: {})", log.display()))?;
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).context("server address")?.to_string();
    eprintln!("bench: server {url} (pid {}), simulators in pid {}, log {}", server.0.id(), sim.0.id(), log.display());
    Ok(Stack { _sim: sim, server, url, admin, dir })
}

/// utime + stime of a process, in clock ticks, from /proc.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// One recorded call as a carrier sends it: 20 ms Twilio media payloads (base64 µ-law 8 kHz),
/// and which frames end a caller utterance (from the recording's sidecar), where the wait for
/// the agent's answer starts.
struct Recording {
    frames: Vec<String>,
    ends_speech: Vec<bool>,
}

impl Recording {
    fn load(wav: &std::path::Path) -> anyhow::Result<Self> {
        let frames = twilio_frames(wav)?;
        let mut ends_speech = vec![false; frames.len()];
        for u in stt_sim::read_sidecar(&wav.with_extension("json"))? {
            if let Some(f) = ends_speech.get_mut((u.end_s / 0.020).round() as usize) {
                *f = true;
            }
        }
        Ok(Self { frames, ends_speech })
    }
}

/// 20 ms Twilio media payloads (base64 µ-law 8 kHz) of one recorded call.
fn twilio_frames(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let (pcm, rate) = media::wav::read_wav(path)?;
    let mut rs = media::Resampler::new(rate, 8000)?;
    let mut pcm8 = Vec::new();
    for c in pcm.chunks(media::samples_per_20ms(rate)) {
        rs.process(c, &mut pcm8)?;
    }
    let mut ulaw = Vec::new();
    Ok(pcm8
        .chunks(160)
        .map(|c| {
            media::g711::encode_ulaw_into(c, &mut ulaw);
            ulaw.resize(160, 0xFF);
            base64::engine::general_purpose::STANDARD.encode(&ulaw)
        })
        .collect())
}

#[derive(Default, Debug)]
struct CallResult {
    held: bool,
    setup_ms: f64,
    frames_sent: u64,
    frames_received: u64,
    late: u64,
    clears: u64,
    /// Each timed wait from the end of a caller utterance to the agent's first audio.
    answers_ms: Vec<f64>,
    seconds: f64,
    error: Option<String>,
}

/// The caller's wait for an answer: from the frame that ends an utterance to the first agent
/// audio after it. An utterance that ends while the agent is still streaming a reply is not
/// timed (the next audio may be the old reply's).
#[derive(Default)]
struct AnswerClock {
    waiting_since: Option<Instant>,
    last_media: Option<Instant>,
}

impl AnswerClock {
    /// Agent audio this recent at the end of speech: the agent was still talking.
    const TALKING: Duration = Duration::from_millis(300);
    /// A wait this long is not an answer to that utterance (none came).
    const NO_ANSWER: Duration = Duration::from_secs(5);

    fn speech_ended(&mut self, now: Instant) {
        let talking = self.last_media.is_some_and(|t| now.duration_since(t) < Self::TALKING);
        self.waiting_since = (!talking).then_some(now);
    }

    /// Agent audio arrived: the wait it ends, in ms, if one was timed.
    fn media(&mut self, now: Instant) -> Option<f64> {
        self.last_media = Some(now);
        let wait = now.duration_since(self.waiting_since.take()?);
        (wait < Self::NO_ANSWER).then_some(wait.as_secs_f64() * 1000.0)
    }
}

/// The fastest answer the simulators allow at the settings the bench starts them with: the
/// endpointing silence the server asks Deepgram for, then the STT final, the LLM's first token
/// and the TTS's first audio. Everything above it is the server's own (and the loopback's).
fn answer_floor() -> Value {
    let t = simkit::Tuning::default();
    let parts = [
        ("stt_endpointing_ms", f64::from(stt::Deepgram::DEFAULT_ENDPOINTING_MS)),
        ("stt_final_ms", t.stt_final.as_secs_f64() * 1000.0),
        ("llm_first_token_ms", t.llm_first_token.as_secs_f64() * 1000.0),
        ("tts_first_audio_ms", t.tts_first_audio.as_secs_f64() * 1000.0),
    ];
    let total: f64 = parts.iter().map(|(_, ms)| ms).sum();
    let mut floor: serde_json::Map<String, Value> = parts.iter().map(|(k, ms)| (k.to_string(), json!(ms))).collect();
    floor.insert("total_ms".into(), json!(total));
    Value::Object(floor)
}

/// Where and how a call is placed: the media URL, the credential, one shared HTTP client.
#[derive(Clone)]
struct Dialer {
    url: String,
    auth: Arc<crate::bench_auth::CallAuth>,
    http: reqwest::Client,
}

/// One concurrent slot: one call for the whole run, or back-to-back calls of `call_len`.
async fn slot(
    call: Dialer,
    rec: Arc<Recording>,
    start_at: Instant,
    total: Duration,
    call_len: Option<Duration>,
) -> Vec<CallResult> {
    let Some(len) = call_len else {
        return vec![one_call(call, rec, start_at, total).await];
    };
    let end = start_at + total;
    let mut out = Vec::new();
    let mut at = start_at;
    while at + len <= end {
        out.push(one_call(call.clone(), rec.clone(), at, len).await);
        at = Instant::now();
    }
    out
}

async fn one_call(call: Dialer, rec: Arc<Recording>, start_at: Instant, duration: Duration) -> CallResult {
    let mut r = CallResult::default();
    tokio::time::sleep_until(start_at.into()).await;
    let t0 = Instant::now();
    // A carrier sends each 20 ms frame at once; Nagle would hold it for the server's ACK.
    let sid = format!("MZ{}", uuid::Uuid::new_v4().simple());
    let call_sid = format!("CA{}", uuid::Uuid::new_v4().simple());
    let opened = match call.auth.open(&call.http, &call.url, &call_sid).await {
        Ok(o) => o,
        Err(e) => {
            r.error = Some(format!("answer: {e}"));
            return r;
        }
    };
    let ws = match tokio_tungstenite::connect_async_with_config(opened.request, None, true).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            r.error = Some(format!("connect: {e}"));
            return r;
        }
    };
    r.setup_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let (mut tx, mut rx) = ws.split();
    let start = json!({"event": "start", "sequenceNumber": "1", "streamSid": sid,
        "start": {"streamSid": sid, "callSid": call_sid, "accountSid": "ACbench", "tracks": ["inbound"], "customParameters": opened.params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}});
    if tx.send(Message::text(start.to_string())).await.is_err() {
        r.error = Some("start".into());
        return r;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + duration;
    let mut i = 0usize;
    const FRAME: Duration = Duration::from_millis(20);
    // When the media received so far has finished playing.
    let mut played_until: Option<Instant> = None;
    let mut answer = AnswerClock::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let k = i % rec.frames.len();
                let payload = &rec.frames[k];
                if rec.ends_speech[k] {
                    answer.speech_ended(now);
                }
                i += 1;
                let m = format!(r#"{{"event":"media","streamSid":"{sid}","media":{{"track":"inbound","payload":"{payload}"}}}}"#);
                if tx.send(Message::text(m)).await.is_err() {
                    r.error = Some("server closed the call".into());
                    break;
                }
                r.frames_sent += 1;
            }
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let t = t.as_str();
                    if t.contains(r#""event":"media""#) {
                        r.frames_received += 1;
                        let now = Instant::now();
                        r.answers_ms.extend(answer.media(now));
                        // Twilio plays queued media in real time: a frame is late when the
                        // audio before it ran out more than a frame before it arrived (the
                        // caller hears a gap). Gaps between turns are silence, not lateness.
                        let start = match played_until {
                            Some(until) if now > until => {
                                let gap = now - until;
                                if gap > FRAME && gap < Duration::from_millis(500) {
                                    r.late += 1;
                                }
                                now
                            }
                            Some(until) => until,
                            None => now,
                        };
                        played_until = Some(start + FRAME);
                    } else if t.contains(r#""event":"clear""#) {
                        r.clears += 1;
                        played_until = None;
                    } else if t.contains(r#""event":"mark""#) {
                        let _ = tx.send(Message::text(t.to_string())).await;
                        played_until = None;
                    }
                }
                Some(Ok(Message::Close(_))) | None => {
                    r.error = Some("server closed the call".into());
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    r.error = Some(e.to_string());
                    break;
                }
            }
        }
    }
    r.seconds = t0.elapsed().as_secs_f64();
    let stop = json!({"event": "stop", "streamSid": sid, "stop": {"callSid": call_sid}});
    let _ = tx.send(Message::text(stop.to_string())).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async { while let Some(Ok(_)) = rx.next().await {} }).await;
    r.held = r.error.is_none();
    r
}

/// p-quantile of a Prometheus histogram (cumulative buckets), linear within a bucket.
fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let target = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= target {
            if le.is_infinite() {
                return Some(prev.0);
            }
            let span = (count - prev.1).max(1e-9);
            return Some(prev.0 + (le - prev.0) * (target - prev.1) / span);
        }
        prev = (le, count);
    }
    None
}

/// Buckets of `name` whose label set contains `label` (e.g. `hop="stt_final_to_llm_request"`).
fn histogram(metrics: &str, name: &str, label: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let mut out: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(label))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The sum of a counter's series. Counters are exported as floats; they count whole things.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v.max(0.0).round() as u64)
        .sum()
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

pub async fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.calls == 0 || args.duration <= 0.0 {
        bail!("--calls and --duration must be positive");
    }
    let stack = match &args.server {
        Some(_) => None,
        None => Some(start_stack(&args)?),
    };
    let (base, pid) = match (&stack, &args.server) {
        (Some(s), _) => (s.url.clone(), Some(s.server.0.id())),
        (None, Some(url)) => (url.clone(), args.server_pid),
        (None, None) => unreachable!("a server is started or given"),
    };
    let ws_url = format!("{}/twilio/stream", base.replacen("http", "ws", 1));
    let auth = match &stack {
        Some(s) => crate::bench_auth::provision(&base, &s.admin, args.tts.as_deref())
            .await
            .context("provisioning the bench org")?,
        None => crate::bench_auth::CallAuth::Operator(std::env::var("SWITCHBOARD_ADMIN_TOKEN").ok()),
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().context("HTTP client")?;
    let dialer = Dialer { url: ws_url, auth: Arc::new(auth), http };
    let mut assets = Vec::new();
    for name in ["simple", "multi_turn", "barge_in"] {
        assets.push(Arc::new(Recording::load(&args.calls_dir.join(format!("{name}.wav")))?));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle = pid.and_then(rss_kb);
    let cpu0 = pid.and_then(cpu_ticks);
    let t0 = Instant::now();
    let ramp = Duration::from_secs_f64(args.ramp.max(0.0));
    let duration = Duration::from_secs_f64(args.duration);
    eprintln!("bench: {} calls, {:.0} s each, ramp {:.1} s", args.calls, args.duration, args.ramp);
    let call_len = args.call_seconds.filter(|s| *s > 0.0).map(Duration::from_secs_f64);
    let mut tasks = Vec::with_capacity(args.calls);
    for i in 0..args.calls {
        let at = t0 + ramp.mul_f64(i as f64 / args.calls as f64);
        tasks.push(tokio::spawn(slot(dialer.clone(), assets[i % assets.len()].clone(), at, duration, call_len)));
    }
    // Sample the server's RSS while the calls run: the peak, and a timeline to see whether it
    // stays flat at constant load.
    let mut rss_peak = 0u64;
    let mut timeline: Vec<(f64, u64)> = Vec::new();
    let sample_until = t0 + ramp + duration;
    let mut next_progress = t0 + Duration::from_secs(5);
    while Instant::now() < sample_until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(kb) = pid.and_then(rss_kb) {
            rss_peak = rss_peak.max(kb);
            timeline.push((t0.elapsed().as_secs_f64(), kb));
        }
        if Instant::now() >= next_progress {
            next_progress += Duration::from_secs(5);
            let done = tasks.iter().filter(|t| t.is_finished()).count();
            eprintln!(
                "bench: {:>4.0} s of {:.0} s, {} of {} slots still calling, server RSS {} kB",
                t0.elapsed().as_secs_f64(),
                (ramp + duration).as_secs_f64(),
                args.calls - done,
                args.calls,
                pid.and_then(rss_kb).unwrap_or(0)
            );
        }
    }
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await.unwrap_or_default());
    }
    // Every call has ended: what the server holds now, against what it held before any call.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = pid.and_then(rss_kb);
    let window_avg = |from: f64, to: f64| {
        let v: Vec<u64> = timeline.iter().filter(|(t, _)| *t >= from && *t < to).map(|(_, kb)| *kb).collect();
        (!v.is_empty()).then(|| v.iter().sum::<u64>() as f64 / v.len() as f64)
    };
    let loaded_from = ramp.as_secs_f64() + 30.0;
    let run_end = (ramp + duration).as_secs_f64();
    let rss_early = window_avg(loaded_from, loaded_from + 60.0);
    let rss_late = window_avg(run_end - 60.0, run_end);
    let rss_drift_pct = match (rss_early, rss_late) {
        (Some(a), Some(b)) if run_end - 60.0 > loaded_from + 60.0 => Some((b - a) * 100.0 / a),
        _ => None,
    };
    let cpu1 = pid.and_then(cpu_ticks);
    let metrics = reqwest::get(format!("{base}/metrics")).await?.text().await?;
    let call_minutes: f64 = results.iter().map(|r| r.seconds).sum::<f64>() / 60.0;
    let cpu_s = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some((b - a) as f64 / clock_ticks()),
        _ => None,
    };
    let held = results.iter().filter(|r| r.held).count();
    let placed = results.len();
    let mut setup: Vec<f64> = results.iter().filter(|r| r.setup_ms > 0.0).map(|r| r.setup_ms).collect();
    let sent: u64 = results.iter().map(|r| r.frames_sent).sum();
    let received: u64 = results.iter().map(|r| r.frames_received).sum();
    let late: u64 = results.iter().map(|r| r.late).sum();
    let mut answers: Vec<f64> = results.iter().flat_map(|r| r.answers_ms.iter().copied()).collect();
    let floor = answer_floor();
    let floor_ms = floor["total_ms"].as_f64().unwrap_or(0.0);
    let (a50, a99) = (pct(&mut answers, 0.5), pct(&mut answers, 0.99));
    let dropped = counter(&metrics, "switchboard_frames_dropped_total");
    let (checkpoints, commits) = (
        counter(&metrics, "switchboard_ledger_checkpoints_total"),
        counter(&metrics, "switchboard_ledger_commits_total"),
    );
    let hop = |name: &str, label: &str| {
        let b = histogram(&metrics, name, label);
        json!({"p50_ms": quantile(&b, 0.5).map(|v| v * 1000.0), "p99_ms": quantile(&b, 0.99).map(|v| v * 1000.0),
               "count": b.last().map(|x| x.1)})
    };
    let report = json!({
        "calls": args.calls, "duration_s": args.duration, "ramp_s": args.ramp, "gateway": "twilio",
        "tts": args.tts.as_deref().unwrap_or("elevenlabs/eleven_flash_v2_5"),
        "call_seconds": args.call_seconds, "calls_placed": placed,
        "calls_held": held,
        "errors": results.iter().filter_map(|r| r.error.clone()).take(5).collect::<Vec<_>>(),
        "setup_ms": {"p50": pct(&mut setup, 0.5), "p99": pct(&mut setup, 0.99)},
        "answer_ms": {
            "count": answers.len(), "p50": a50, "p99": a99,
            "p50_over_floor": a50 - floor_ms, "p99_over_floor": a99 - floor_ms,
            "floor": floor,
        },
        "store": {"checkpoints": checkpoints, "commits": commits},
        "frames": {"sent": sent, "received": received, "late": late, "late_pct": if received > 0 { late as f64 * 100.0 / received as f64 } else { 0.0 }, "dropped_in_server": dropped},
        "server": {
            "cpu_seconds": cpu_s,
            "cpu_s_per_call_minute": cpu_s.map(|c| c / call_minutes.max(1e-9)),
            "rss_idle_kb": rss_idle, "rss_peak_kb": rss_peak,
            "rss_kb_per_call": rss_idle.map(|i| rss_peak.saturating_sub(i) as f64 / args.calls as f64),
            "rss_after_kb": rss_after,
            "rss_growth_bytes_per_call_placed": match (rss_idle, rss_after) {
                (Some(i), Some(a)) => Some((a as f64 - i as f64) * 1024.0 / placed.max(1) as f64),
                _ => None,
            },
            "rss_loaded_early_kb": rss_early, "rss_loaded_late_kb": rss_late, "rss_drift_pct": rss_drift_pct,
            "rss_timeline_kb": timeline.iter().step_by(20).map(|(t, kb)| json!([(t * 10.0).round() / 10.0, kb])).collect::<Vec<_>>(),
        },
        "hops": {
            "stt_final_to_llm_request": hop("switchboard_hop_latency_seconds", "stt_final_to_llm_request"),
            "llm_first_token_to_tts_text": hop("switchboard_hop_latency_seconds", "llm_first_token_to_tts_text"),
            "tts_first_audio_to_gateway": hop("switchboard_hop_latency_seconds", "tts_first_audio_to_gateway"),
            "speech_to_clear": hop("switchboard_hop_latency_seconds", "speech_to_clear"),
            "plan_resolution": hop("switchboard_session_plan_seconds", ""),
            "session_setup": hop("switchboard_session_setup_seconds", ""),
        },
    });
    let f = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.3}"));
    println!("calls held            {held} / {placed} placed ({} concurrent)", args.calls);
    println!(
        "setup (client) p50/p99 {:.1} / {:.1} ms",
        report["setup_ms"]["p50"].as_f64().unwrap_or(0.0),
        report["setup_ms"]["p99"].as_f64().unwrap_or(0.0)
    );
    println!(
        "frames sent/received  {sent} / {received}; late (playback gap > 20 ms) {late}; dropped in server {dropped}"
    );
    let a = &report["answer_ms"];
    println!(
        "answer (speech end → agent audio) p50 {} ms  p99 {} ms  (n={}); floor {} ms: p50 +{} ms, p99 +{} ms",
        f(&a["p50"]),
        f(&a["p99"]),
        answers.len(),
        f(&a["floor"]["total_ms"]),
        f(&a["p50_over_floor"]),
        f(&a["p99_over_floor"])
    );
    println!("store                 {checkpoints} call checkpoints in {commits} commits");
    println!(
        "server CPU            {} s total, {} CPU-s per call-minute",
        f(&report["server"]["cpu_seconds"]),
        f(&report["server"]["cpu_s_per_call_minute"])
    );
    println!(
        "server RSS            idle {} kB, peak {rss_peak} kB, {} kB per call",
        rss_idle.unwrap_or(0),
        f(&report["server"]["rss_kb_per_call"])
    );
    println!(
        "server RSS after       {} kB ({} bytes per call placed); loaded early/late {} / {} kB, drift {} %",
        rss_after.unwrap_or(0),
        f(&report["server"]["rss_growth_bytes_per_call_placed"]),
        f(&report["server"]["rss_loaded_early_kb"]),
        f(&report["server"]["rss_loaded_late_kb"]),
        f(&report["server"]["rss_drift_pct"])
    );
    for (k, v) in report["hops"].as_object().into_iter().flatten() {
        println!("{k:<28} p50 {} ms  p99 {} ms  (n={})", f(&v["p50_ms"]), f(&v["p99_ms"]), f(&v["count"]));
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    drop(stack);
    Ok(if held == placed { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
}
