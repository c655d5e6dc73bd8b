//! Traces: with an OTLP endpoint configured, each call is one trace exported over OTLP/HTTP:
//! a `session` root span, a `turn` span per agent turn under it, and a span per provider
//! request (`stt.stream` under the session, `llm.request` and `tts.request` under their turn),
//! flushed when the server shuts down. No attribute carries a provider key or the admin token.
//! The collector is a real OTLP/HTTP receiver inside the test, decoding the protobuf requests.

mod util;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use util::recorded::*;
use util::*;

/// What the receiver was sent: each request decoded, its raw body, and any it could not decode.
#[derive(Default)]
struct Received {
    requests: Vec<ExportTraceServiceRequest>,
    raw: Vec<Vec<u8>>,
    bad: Vec<String>,
}

/// An OTLP/HTTP trace receiver on loopback (`POST /v1/traces`, protobuf), on its own runtime.
struct Receiver {
    url: String,
    got: Arc<Mutex<Received>>,
    _rt: tokio::runtime::Runtime,
}

fn receiver() -> Receiver {
    use axum::http::{header, HeaderMap, StatusCode};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let got = Arc::new(Mutex::new(Received::default()));
    let sink = got.clone();
    let export = move |headers: HeaderMap, body: axum::body::Bytes| async move {
        let mut got = sink.lock().unwrap();
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if content_type != "application/x-protobuf" {
            got.bad.push(format!("content-type {content_type:?}"));
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, [(header::CONTENT_TYPE, "application/x-protobuf")]);
        }
        match ExportTraceServiceRequest::decode(body.as_ref()) {
            Ok(req) => {
                got.requests.push(req);
                got.raw.push(body.to_vec());
                // An empty ExportTraceServiceResponse encodes as no bytes.
                (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-protobuf")])
            }
            Err(e) => {
                got.bad.push(e.to_string());
                (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/x-protobuf")])
            }
        }
    };
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(export));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    Receiver { url: format!("http://{addr}"), got, _rt: rt }
}

/// A span's attribute as text (strings as they are, other values in their debug form).
fn attr(span: &Span, key: &str) -> Option<String> {
    let kv = span.attributes.iter().find(|kv| kv.key == key)?;
    Some(match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

fn has(span: &Span, key: &str, value: &str) -> bool {
    attr(span, key).as_deref() == Some(value)
}

/// Every key/value pair a request carries: resource, scope, span, event and link attributes.
fn all_attributes(req: &ExportTraceServiceRequest) -> Vec<&KeyValue> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        out.extend(rs.resource.iter().flat_map(|r| &r.attributes));
        for ss in &rs.scope_spans {
            out.extend(ss.scope.iter().flat_map(|s| &s.attributes));
            for s in &ss.spans {
                out.extend(&s.attributes);
                out.extend(s.events.iter().flat_map(|e| &e.attributes));
                out.extend(s.links.iter().flat_map(|l| &l.attributes));
            }
        }
    }
    out
}

/// One call through a production server (real provider protocols, against the simulators
/// with canary keys) exports one trace: the session, its turns and every provider request as
/// children with names, providers and outcomes; flushed on SIGTERM; no secret in any attribute.
#[test]
fn a_call_is_one_trace_of_turns_and_provider_requests_without_secrets() {
    let recv = receiver();
    let keys = [
        ("deepgram", "sk-LEAKCANARY-dg-31c9e2"),
        ("openai", "sk-LEAKCANARY-oa-77ab10"),
        ("elevenlabs", "sk-LEAKCANARY-el-5d4e3f"),
    ];
    let admin = "admin-LEAKCANARY-9a8b7c";
    let sim = Sim::start(&keys, &[]);
    let mut args = sim.provider_args();
    args.extend(["--otlp-endpoint".to_string(), recv.url.clone()]);
    let mut server = Server::start(ServerOpts {
        env: vec![
            ("DEEPGRAM_API_KEY", keys[0].1.into()),
            ("OPENAI_API_KEY", keys[1].1.into()),
            ("ELEVENLABS_API_KEY", keys[2].1.into()),
            ("SWITCHBOARD_ADMIN_TOKEN", admin.into()),
        ],
        args,
    });
    let out = call(&server.url, &asset("multi_turn.wav"), &["--token", admin]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let replies = out.agent_turns();
    assert_eq!(replies.len(), 3, "{replies:?}");
    let end_reason = out.of("end")[0]["reason"].as_str().unwrap_or_default().to_string();

    // Graceful shutdown flushes the spans still batched.
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(40)).expect("the server exits after SIGTERM");
    assert!(status.success(), "{status:?}\n{}", server.log_text());
    let got = recv.got.lock().unwrap();
    assert!(got.bad.is_empty(), "undecodable exports: {:?}", got.bad);
    assert!(!got.requests.is_empty(), "nothing exported; log:\n{}", server.log_text());

    for rs in got.requests.iter().flat_map(|r| &r.resource_spans) {
        let resource = rs.resource.as_ref().expect("a resource");
        let name = resource.attributes.iter().find(|kv| kv.key == "service.name").and_then(|kv| kv.value.as_ref());
        assert_eq!(name.and_then(|v| v.value.as_ref()), Some(&any_value::Value::StringValue("switchboard".into())));
    }
    let spans = spans_of(&got);
    let spans: Vec<&Span> = spans.iter().collect();
    let named = |name: &str| spans.iter().copied().filter(|s| s.name == name).collect::<Vec<_>>();
    let children = |parent: &Span, name: &str| {
        spans.iter().copied().filter(|s| s.name == name && s.parent_span_id == parent.span_id).collect::<Vec<_>>()
    };

    // One trace: one root `session` span, and every span exported belongs to it.
    let sessions = named("session");
    assert_eq!(sessions.len(), 1, "one session span: {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    let session = sessions[0];
    assert!(session.parent_span_id.is_empty(), "the session span is the root");
    assert!(spans.iter().all(|s| s.trace_id == session.trace_id), "every span is in the session's trace");
    for (key, value) in [
        ("gateway", "twilio"),
        ("org", "default"),
        ("agent", "default"),
        ("stt", "deepgram"),
        ("llm", "openai"),
        ("tts", "elevenlabs"),
        ("end_reason", end_reason.as_str()),
    ] {
        assert!(has(session, key, value), "session {key} should be {value}: {:?}", session.attributes);
    }
    assert!(attr(session, "session_id").is_some_and(|id| id.len() == 36), "{:?}", session.attributes);

    // Inside the session: a child's time within its parent's.
    let within = |child: &Span, parent: &Span| {
        assert!(
            child.start_time_unix_nano >= parent.start_time_unix_nano
                && child.end_time_unix_nano <= parent.end_time_unix_nano,
            "{} outside {}",
            child.name,
            parent.name
        );
    };

    // The STT stream: one, under the session, closed with the provider's usage.
    let stt = children(session, "stt.stream");
    assert_eq!(stt.len(), 1, "one STT stream");
    assert!(has(stt[0], "provider", "deepgram") && has(stt[0], "outcome", "ok"), "{:?}", stt[0].attributes);
    assert!(has(stt[0], "billed_to", "managed"), "{:?}", stt[0].attributes);
    within(stt[0], session);

    // A turn span per agent reply, each played out, with its LLM and TTS requests under it.
    let turns = children(session, "turn");
    assert_eq!(turns.len(), replies.len(), "a turn span per agent turn");
    assert_eq!(named("turn").len(), turns.len(), "every turn is the session's");
    for turn in &turns {
        within(turn, session);
        assert!(has(turn, "turn.kind", "reply") && has(turn, "outcome", "played"), "{:?}", turn.attributes);
        let llm = children(turn, "llm.request");
        assert_eq!(llm.len(), 1, "one LLM request in turn {:?}", attr(turn, "turn.id"));
        assert!(has(llm[0], "provider", "openai") && has(llm[0], "outcome", "ok"), "{:?}", llm[0].attributes);
        assert!(attr(llm[0], "model").is_some_and(|m| !m.is_empty()), "{:?}", llm[0].attributes);
        let int =
            |k: &str| llm[0].attributes.iter().find(|kv| kv.key == k).and_then(|kv| kv.value.as_ref()?.value.clone());
        let tokens = |k| match int(k) {
            Some(any_value::Value::IntValue(n)) => n,
            other => panic!("{k} should be an integer: {other:?}"),
        };
        assert!(tokens("input_tokens") > 0 && tokens("output_tokens") > 0, "{:?}", llm[0].attributes);
        let tts = children(turn, "tts.request");
        assert_eq!(tts.len(), 1, "one TTS request in turn {:?}", attr(turn, "turn.id"));
        assert!(has(tts[0], "provider", "elevenlabs") && has(tts[0], "outcome", "ok"), "{:?}", tts[0].attributes);
        for child in [llm[0], tts[0]] {
            within(child, turn);
            let client = opentelemetry_proto::tonic::trace::v1::span::SpanKind::Client as i32;
            assert_eq!(child.kind, client, "{} is a client span", child.name);
        }
    }
    assert_eq!(named("llm.request").len(), turns.len(), "no LLM request outside a turn");
    assert_eq!(named("tts.request").len(), turns.len(), "no TTS request outside a turn");

    // No secret anywhere: every attribute of every span (and event, link, resource), and the
    // raw bodies as sent.
    let secrets: Vec<&str> = keys.iter().map(|(_, k)| *k).chain([admin]).collect();
    let attributes: Vec<&KeyValue> = got.requests.iter().flat_map(all_attributes).collect();
    assert!(attributes.len() > 50, "the attributes were read: {}", attributes.len());
    for kv in attributes {
        let text = format!("{} {:?}", kv.key, kv.value);
        for secret in &secrets {
            assert!(!text.contains(secret), "a secret in a trace attribute: {text}");
        }
        assert!(!text.contains("LEAKCANARY"), "a secret in a trace attribute: {text}");
    }
    for body in &got.raw {
        let text = String::from_utf8_lossy(body);
        assert!(!text.contains("LEAKCANARY"), "a secret in an export body");
    }
}

/// The endpoint comes from the flag, else OpenTelemetry's standard variable; a URL OTLP/HTTP
/// cannot use is refused at start with the reason.
#[test]
fn the_otlp_endpoint_is_configured_like_every_setting_and_checked() {
    let config = |env: &[(&str, &str)], flags: &[&str]| {
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("config").args(flags).env_remove("SWITCHBOARD_OTLP_ENDPOINT").env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        cmd.envs(env.iter().copied());
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(config(&[], &[]).contains("otlp_endpoint = \"\""), "off by default");
    let standard = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")];
    assert!(config(&standard, &[]).contains("otlp_endpoint = \"http://collector:4318\""));
    let flag = config(&standard, &["--otlp-endpoint", "https://user:pw@otel.example:4318"]);
    assert!(flag.contains("otlp_endpoint = \"https://user:***@otel.example:4318/\""), "{flag}");

    let serve = |flags: &[&str]| {
        std::process::Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--database", "sqlite::memory:"])
            .args(flags)
            .env_remove("SWITCHBOARD_LOG_FORMAT")
            .output()
            .unwrap()
    };
    let out = serve(&["--otlp-endpoint", "ftp://collector:4318"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be an http:// or https:// URL"), "{err}");
    let out = serve(&["--log-format", "xml"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid value 'xml'"), "{err}");
}

/// The spans of every export, flattened.
fn spans_of(got: &Received) -> Vec<Span> {
    let rs = got.requests.iter().flat_map(|r| &r.resource_spans);
    rs.flat_map(|rs| &rs.scope_spans).flat_map(|ss| ss.spans.iter().cloned()).collect()
}

/// A provider that refuses its key is a failed request span (with its error code) followed by
/// the fallback's, in the same place of the trace: the STT stream at the session's start, the
/// LLM and TTS requests within the turn.
#[test]
fn a_failover_is_a_failed_span_then_the_fallbacks() {
    use serde_json::json;
    const ADMIN: &str = "admin-trace-token";
    let recv = receiver();
    let sim = Sim::start(&[], &[]);
    let refused = ["deepgram", "openai", "elevenlabs"];
    let env = failover_env(&refused, ADMIN);
    let mut args = sim.provider_args();
    args.extend(["--otlp-endpoint".to_string(), recv.url.clone()]);
    let mut server = Server::start(ServerOpts { env, args });
    let post = |path: &str, body: serde_json::Value, key: &str| {
        let (status, text) = http("POST", &format!("{}{path}", server.url), Some(&body.to_string()), Some(key));
        assert!(status < 300, "{path}: {status} {text}");
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default()
    };
    let (status, text) = http(
        "PUT",
        &format!("{}/api/admin/rates/managed", server.url),
        Some(&json!({"provider": "assemblyai", "managed": true}).to_string()),
        Some(ADMIN),
    );
    assert_eq!(status, 200, "{text}");
    let org = post("/api/admin/orgs", json!({"name": "acme", "plan": "pro", "walletMicros": 5_000_000}), ADMIN);
    let agent = post("/api/agents", agent_spec_with_fallbacks(), org["apiKey"].as_str().unwrap());
    let out = call(&server.url, &asset("simple.wav"), &["--agent", agent["id"].as_str().unwrap(), "--token", ADMIN]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.agent_turns().len(), 1, "{}", out.stdout);
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(40)).expect("the server exits after SIGTERM");
    assert!(status.success(), "{status:?}");

    let got = recv.got.lock().unwrap();
    let spans = spans_of(&got);
    let session = spans.iter().find(|s| s.name == "session").expect("a session span");
    assert!(has(session, "org", org["orgId"].as_str().unwrap()), "{:?}", session.attributes);
    let under = |parent: &Span, name: &str| {
        let mut v: Vec<&Span> = spans.iter().filter(|s| s.name == name && s.parent_span_id == parent.span_id).collect();
        v.sort_by_key(|s| s.start_time_unix_nano);
        v.iter()
            .map(|s| (attr(s, "provider").unwrap_or_default(), attr(s, "outcome").unwrap_or_default()))
            .collect::<Vec<_>>()
    };
    let pair = |p: &str, o: &str| (p.to_string(), o.to_string());
    assert_eq!(under(session, "stt.stream"), vec![pair("deepgram", "failed"), pair("assemblyai", "ok")]);
    let turn = spans.iter().find(|s| s.name == "turn" && s.parent_span_id == session.span_id).expect("a turn");
    assert!(has(turn, "outcome", "played"), "{:?}", turn.attributes);
    assert_eq!(under(turn, "llm.request"), vec![pair("openai", "failed"), pair("anthropic", "ok")]);
    assert_eq!(under(turn, "tts.request"), vec![pair("elevenlabs", "failed"), pair("cartesia", "ok")]);
    // A failed span carries the provider's error code and an error status.
    for s in spans.iter().filter(|s| attr(s, "outcome").as_deref() == Some("failed")) {
        assert!(attr(s, "error.code").is_some_and(|c| !c.is_empty()), "{:?}", s.attributes);
        let code = s.status.as_ref().map(|st| st.code);
        assert_eq!(code, Some(opentelemetry_proto::tonic::trace::v1::status::StatusCode::Error as i32), "{}", s.name);
    }
    let all = format!("{:?}", got.requests);
    assert!(!all.contains("revoked-key") && !all.contains("sim-key"), "no key in the trace");
}
