//! What `switchboard call` prints: the conversation as it happens and the usage at the end,
//! as human lines or one JSON object per line.

use serde_json::{json, Value};
use tokio::time::Instant;

pub(super) struct Printer {
    pub json: bool,
    pub t0: std::time::Instant,
}

impl Printer {
    pub fn line(&self, v: Value, human: impl FnOnce() -> String) {
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

/// What the call saw, for the closing lines and the exit status.
#[derive(Default)]
pub(super) struct Report {
    pub errors: u32,
    pub audio_ms: u64,
    pub audio_since_mark_ms: u64,
    pub saved: Vec<i16>,
    pub end_reason: Option<String>,
    pub usage: Vec<Value>,
    pub turn_open: bool,
    /// The caller's last words have no reply yet.
    pub awaiting_reply: bool,
    pub last_activity: Option<Instant>,
}

impl Report {
    /// Count an error and print it.
    pub fn error(&mut self, p: &Printer, v: Value, human: impl FnOnce() -> String) {
        self.errors += 1;
        p.line(v, human);
    }
}

/// Handle one session event (from SSE or in-band); returns true at `end`.
pub(super) fn on_event(p: &Printer, r: &mut Report, ev: &Value) -> bool {
    let ty = ev.get("type").and_then(Value::as_str).unwrap_or("");
    let s = |k: &str| ev.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    r.last_activity = Some(Instant::now());
    match ty {
        "transcript" if ev.get("is_final").and_then(Value::as_bool) == Some(true) => {
            let text = s("text");
            r.awaiting_reply = !text.trim().is_empty();
            p.line(json!({"type": "transcript", "text": text}), || format!("caller › {text}"));
        }
        "agent" => {
            r.turn_open = true;
            r.awaiting_reply = false;
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
        "tool_call" => {
            let (call_id, name, args) = (s("call_id"), s("name"), s("arguments"));
            p.line(json!({"type": "tool_call", "turn": ev.get("turn"), "call_id": call_id, "name": name, "arguments": args}), || {
                format!("tool   ‹ {name}({args})")
            });
        }
        "tool_result" => {
            let (call_id, name, result) = (s("call_id"), s("name"), s("result"));
            p.line(json!({"type": "tool_result", "turn": ev.get("turn"), "call_id": call_id, "name": name, "result": result}), || {
                format!("tool   › {name} → {result}")
            });
        }
        "error" => {
            let (code, msg) = (s("code"), s("message"));
            r.error(p, json!({"type": "error", "code": code, "message": msg}), || format!("error  {code}: {msg}"));
        }
        "usage" => {
            if let Some(recs) = ev.get("records").and_then(Value::as_array) {
                r.usage = recs.clone();
            }
        }
        "failover" => {
            let (service, from, to, code) = (s("service"), s("from"), s("to"), s("code"));
            p.line(json!({"type": "failover", "service": service, "from": from, "to": to, "code": code}), || {
                format!("failover  {service}: {from} → {to} ({code})")
            });
        }
        "end" => {
            r.end_reason = Some(s("reason"));
            return true;
        }
        _ => {}
    }
    false
}

pub(super) fn print_audio(p: &Printer, r: &mut Report, why: &str) {
    if r.audio_since_mark_ms == 0 {
        return;
    }
    let ms = r.audio_since_mark_ms;
    r.audio_since_mark_ms = 0;
    p.line(json!({"type": "audio", "ms": ms, "total_ms": r.audio_ms, "at": why}), || {
        format!("audio  ‹ {:.2} s of agent audio ({why})", ms as f64 / 1000.0)
    });
}

pub(super) fn print_usage(p: &Printer, r: &Report) {
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
