//! Only the right tenant gets in: a production `switchboard serve` (provider keys set, so every
//! media entry point needs a credential) against `switchboard sim` (providers and the carriers'
//! REST APIs), attacked the way a stranger would: no credential, forged, expired and replayed
//! tokens and signatures, another org's ids. Every refusal happens before a provider is called
//! (the simulators saw no key) and before anything is billed.

mod util;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
use util::*;

const ADMIN: &str = "admin-access-token";
const MASTER: &str = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const TWILIO: (&str, &str) = ("AC0123456789abcdef0123456789abcdef", "twilio-auth-token-9f3a");
const PLIVO: (&str, &str) = ("MAPLIVOAUTHID0000001", "plivo-auth-token-77c1");
const TELNYX_API_KEY: &str = "KEYtelnyx-api-4e2b";
const TELNYX_SEED: [u8; 32] = [7u8; 32];
const VONAGE_APP: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const VONAGE_SECRET: &str = "vonage-signature-secret-0c9d";

/// Provider keys the simulators accept and the server is given (production mode).
const KEYS: [(&str, &str); 3] =
    [("deepgram", "platform-dg-0001"), ("openai", "platform-oa-0002"), ("elevenlabs", "platform-el-0003")];

struct Env {
    server: Server,
    sim: Sim,
    _pg: Option<PgDb>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Db {
    Sqlite,
    Postgres,
}

fn vonage_pub() -> String {
    root().join("crates/carrier/testdata/vonage-app.pub").display().to_string()
}

fn vonage_key() -> String {
    std::fs::read_to_string(root().join("crates/carrier/testdata/vonage-app.key")).expect("test key")
}

fn start(db: Db, extra_args: &[&str]) -> Env {
    let accounts = [
        format!("twilio={}", json!({"accountSid": TWILIO.0, "authToken": TWILIO.1})),
        format!("telnyx={}", json!({"apiKey": TELNYX_API_KEY})),
        format!("plivo={}", json!({"authId": PLIVO.0, "authToken": PLIVO.1})),
        format!("vonage={}", json!({"applicationId": VONAGE_APP, "publicKeyFile": vonage_pub()})),
    ];
    let mut sim_args: Vec<&str> = Vec::new();
    for a in &accounts {
        sim_args.extend(["--carrier-account", a.as_str()]);
    }
    let sim = Sim::start(&KEYS, &sim_args);
    let pg = (db == Db::Postgres).then(PgDb::create);
    let server = server_on(&sim, extra_args, pg.as_ref().map(|p| p.url.clone()));
    Env { server, sim, _pg: pg }
}

/// A production server on `sim`'s providers and carriers, on `database` (a fresh SQLite file
/// when `None`).
fn server_on(sim: &Sim, extra_args: &[&str], database: Option<String>) -> Server {
    let mut args = sim.provider_args();
    for c in ["twilio", "telnyx", "plivo", "vonage"] {
        args.extend(["--carrier-url".to_string(), format!("{c}={}", sim.urls["carrier"])]);
    }
    args.extend(extra_args.iter().map(|s| s.to_string()));
    let mut env: Vec<(&str, String)> = KEYS.iter().map(|(p, k)| (key_var(p), k.to_string())).collect();
    env.push(("SWITCHBOARD_ADMIN_TOKEN", ADMIN.into()));
    env.push(("SWITCHBOARD_MASTER_KEYS", MASTER.into()));
    Server::start_with_db(ServerOpts { env, args }, database)
}

fn key_var(p: &str) -> &'static str {
    match p {
        "deepgram" => "DEEPGRAM_API_KEY",
        "openai" => "OPENAI_API_KEY",
        _ => "ELEVENLABS_API_KEY",
    }
}

impl Env {
    fn req(&self, method: &str, path: &str, body: Option<Value>, key: Option<&str>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) = http(method, &format!("{}{path}", self.server.url), body.as_deref(), key);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A pro org with a wallet, its agent, and its carrier credentials saved.
    fn tenant(&self) -> Tenant {
        let (s, v) = self.req(
            "POST",
            "/api/admin/orgs",
            Some(json!({"name": "acme", "plan": "pro", "walletMicros": 20_000_000})),
            Some(ADMIN),
        );
        assert_eq!(s, 201, "{v}");
        let key = v["apiKey"].as_str().unwrap().to_string();
        let spec = json!({
            "stt": {"provider": "deepgram", "model": "nova-3"},
            "llm": {"provider": "openai", "model": "gpt-4o-mini"},
            "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "v1"},
            "prompt": "Be brief."
        });
        let (s, a) = self.req("POST", "/api/agents", Some(spec), Some(&key));
        assert_eq!(s, 201, "{a}");
        let creds = [
            ("twilio", json!({"accountSid": TWILIO.0, "authToken": TWILIO.1})),
            ("telnyx", json!({"publicKey": gwauth::telnyx::public_key_b64(&TELNYX_SEED), "apiKey": TELNYX_API_KEY})),
            ("plivo", json!({"authId": PLIVO.0, "authToken": PLIVO.1})),
            (
                "vonage",
                json!({"applicationId": VONAGE_APP, "privateKey": vonage_key(), "signatureSecret": VONAGE_SECRET}),
            ),
        ];
        for (provider, c) in creds {
            let (s, v) =
                self.req("PUT", "/api/credentials", Some(json!({"provider": provider, "credentials": c})), Some(&key));
            assert_eq!(s, 200, "{provider}: {v}");
            assert!(!v.to_string().contains(c["authToken"].as_str().unwrap_or("never-there")), "{v}");
        }
        Tenant { org: v["orgId"].as_str().unwrap().to_string(), key, agent: a["id"].as_str().unwrap().to_string() }
    }

    fn route(&self, t: &Tenant, carrier: &str, number: &str) {
        let body = json!({"number": number, "carrier": carrier, "agentId": t.agent});
        let (s, v) = self.req("POST", "/api/numbers", Some(body), Some(&t.key));
        assert_eq!(s, 201, "{v}");
    }

    fn providers_called(&self) -> usize {
        let seen = self.sim.control("/keys");
        seen.as_object().unwrap().values().map(|v| v.as_array().map_or(0, Vec::len)).sum()
    }

    fn balance(&self, t: &Tenant) -> Value {
        self.req("GET", "/api/balance", None, Some(&t.key)).1
    }

    fn hangups(&self) -> Value {
        get_json(&format!("{}/_sim/hangups", self.sim.urls["carrier"]))
    }
}

struct Tenant {
    org: String,
    key: String,
    agent: String,
}

fn carrier_cred(carrier: &str) -> String {
    match carrier {
        "twilio" => json!({"accountSid": TWILIO.0, "authToken": TWILIO.1}),
        "telnyx" => json!({"signingKey": base64_of(&TELNYX_SEED)}),
        "plivo" => json!({"authId": PLIVO.0, "authToken": PLIVO.1}),
        _ => json!({"applicationId": VONAGE_APP, "signatureSecret": VONAGE_SECRET}),
    }
    .to_string()
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A websocket attempt: connect with `headers`, send `first`, and report how the server closed
/// it within a few seconds (`None`: it did not, the session is running).
fn attempt(url: &str, headers: &[(&str, String)], first: Message) -> Option<(u16, String)> {
    attempt_held(url, headers, first, None)
}

/// [`attempt`], where an admitted call stays connected until `hold_until` (so calls started
/// together overlap however slowly their threads are scheduled).
fn attempt_held(
    url: &str,
    headers: &[(&str, String)],
    first: Message,
    hold_until: Option<std::time::Instant>,
) -> Option<(u16, String)> {
    let (url, first) = (url.to_string(), first);
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            use futures::{SinkExt, StreamExt};
            let mut req = url.as_str().into_client_request().unwrap();
            for (k, v) in headers {
                req.headers_mut().insert(
                    tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("upgrade");
            ws.send(first).await.unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            loop {
                match tokio::time::timeout_at(deadline, ws.next()).await {
                    Err(_) => {
                        if let Some(t) = hold_until {
                            tokio::time::sleep_until(t.into()).await;
                        }
                        let _ = ws.close(None).await;
                        return None;
                    }
                    Ok(Some(Ok(Message::Close(Some(f))))) => return Some((u16::from(f.code), f.reason.to_string())),
                    Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) => {
                        return Some((0, String::new()))
                    }
                    Ok(Some(Ok(_))) => {}
                }
            }
        })
    })
    .join()
    .unwrap()
}

fn ws(env: &Env, path: &str) -> String {
    format!("{}{path}", env.server.url.replacen("http", "ws", 1))
}

fn twilio_start(call_sid: &str, params: Value) -> Message {
    Message::text(
        json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {"streamSid": "MZ1", "accountSid": TWILIO.0,
            "callSid": call_sid, "tracks": ["inbound"], "customParameters": params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        .to_string(),
    )
}

/// Each media route's opening frame, carrying `params` (the agent, a token).
fn start_frame(route: &str, call: &str, params: Value) -> Message {
    match route {
        "/twilio/stream" => twilio_start(call, params),
        "/telnyx/stream" => Message::text(json!({"event": "start", "sequence_number": "1", "stream_id": "s1", "start": {
            "call_control_id": call, "custom_parameters": params, "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}}).to_string()),
        "/plivo/stream" => {
            let extra = params.as_object().unwrap().iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap())).collect::<Vec<_>>().join(";");
            Message::text(json!({"event": "start", "start": {"callId": call, "streamId": "s1", "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}, "extra_headers": extra}).to_string())
        }
        "/vonage/stream" => {
            let mut h = json!({"event": "websocket:connected", "content-type": "audio/l16;rate=16000", "call_uuid": call});
            h.as_object_mut().unwrap().extend(params.as_object().unwrap().clone());
            Message::text(h.to_string())
        }
        _ => Message::text(json!({"type": "start", "call_id": call, "params": params, "audio": {"encoding": "pcm16", "sample_rate": 16000}}).to_string()),
    }
}

const ROUTES: [&str; 5] = ["/twilio/stream", "/telnyx/stream", "/plivo/stream", "/vonage/stream", "/v1/client"];

/// Every media route: no credential, a forged token, an org key for another org's agent, and
/// (client) an expired and a reused client token — all refused with 1008 before any provider
/// is called, nothing held or billed.
fn media_routes_refuse_strangers(db: Db) {
    let env = start(db, &[]);
    let a = env.tenant();
    let b = env.tenant();
    let before = env.balance(&a);
    let forged = "01".repeat(38);
    for route in ROUTES {
        let url = ws(&env, route);
        let none = attempt(&url, &[], start_frame(route, "c-none", json!({"agent": a.agent})));
        assert_eq!(none.as_ref().map(|c| c.0), Some(1008), "{route} with no credential: {none:?}");
        assert!(none.unwrap().1.starts_with("unauthenticated"), "{route}");
        let bad = attempt(&url, &[], start_frame(route, "c-forged", json!({"agent": a.agent, "vt": forged})));
        assert_eq!(bad.as_ref().map(|c| c.0), Some(1008), "{route} forged: {bad:?}");
        assert!(bad.unwrap().1.starts_with("bad_token"), "{route}");
        let other = attempt(
            &url,
            &[("Authorization", format!("Bearer {}", b.key))],
            start_frame(route, "c-x", json!({"agent": a.agent})),
        );
        assert_eq!(
            other,
            Some((1008, format!("unknown_agent: no agent {:?}", a.agent))),
            "{route}: another org's agent"
        );
    }
    // Client tokens: bound to the org's agent, single use, short-lived.
    let (s, v) =
        env.req("POST", "/api/client-tokens", Some(json!({"agentId": a.agent, "ttlSeconds": 601})), Some(&a.key));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("bad_ttl")));
    let (s, _) = env.req("POST", "/api/client-tokens", Some(json!({"agentId": a.agent})), Some(&b.key));
    assert_eq!(s, 404, "another org's agent");
    let (s, v) =
        env.req("POST", "/api/client-tokens", Some(json!({"agentId": a.agent, "ttlSeconds": 1})), Some(&a.key));
    assert_eq!(s, 201, "{v}");
    std::thread::sleep(Duration::from_millis(2100));
    let url = format!("{}?token={}", ws(&env, "/v1/client"), v["token"].as_str().unwrap());
    let expired = attempt(&url, &[], start_frame("/v1/client", "c-exp", json!({})));
    assert_eq!(expired.map(|c| c.0), Some(1008), "expired client token");
    assert_eq!(env.providers_called(), 0, "no provider was contacted");
    assert_eq!(env.balance(&a), before, "nothing held or billed");
    let (_, calls) = env.req("GET", "/api/calls", None, Some(&a.key));
    assert_eq!(calls["calls"], json!([]), "no session was opened");
}

/// A browser's way in: a client token opens exactly one call to its agent, billed to its org.
fn client_token_call_billed_to_its_org(db: Db) {
    let env = start(db, &[]);
    let a = env.tenant();
    let (s, v) =
        env.req("POST", "/api/client-tokens", Some(json!({"agentId": a.agent, "ttlSeconds": 60})), Some(&a.key));
    assert_eq!(s, 201, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let out =
        call(&env.server.url, &asset("simple.wav"), &["--gateway", "client", "--client-token", &token, "--tail", "2"]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    let sid = out.call_sid();
    let (s, row) = env.req("GET", &format!("/api/calls/{sid}"), None, Some(&a.key));
    assert_eq!(s, 200, "{row}");
    assert_eq!(row["org_id"], a.org.as_str());
    assert!(row["transcript"].as_array().is_some_and(|t| !t.is_empty()), "what was said is kept: {row}");
    // Reused: refused before any provider is called again.
    let seen = env.providers_called();
    let again = attempt(
        &format!("{}?token={token}", ws(&env, "/v1/client")),
        &[],
        start_frame("/v1/client", "c-again", json!({})),
    );
    assert_eq!(again, Some((1008, "token_used: the stream token was already used".into())));
    assert_eq!(env.providers_called(), seen);
    // Tenancy of the calls API: another org and nobody get nothing.
    let b = env.tenant();
    assert_eq!(env.req("GET", &format!("/api/calls/{sid}"), None, Some(&b.key)).0, 404);
    assert_eq!(env.req("GET", &format!("/api/calls/{sid}"), None, None).0, 401);
    assert_eq!(env.req("GET", "/api/calls", None, Some(&b.key)).1["calls"], json!([]));
    assert_eq!(env.req("GET", "/api/calls", None, Some(&a.key)).1["calls"].as_array().map(Vec::len), Some(1));
    assert_eq!(env.req("GET", &format!("/api/calls/{sid}"), None, Some(ADMIN)).0, 200);
}

/// Each carrier: its signed answer webhook opens a stream billed to the number's org; missing,
/// bad, stale and replayed signatures get 403, an unknown number 404.
fn carrier_numbers_answer_only_signed_webhooks(db: Db) {
    let env = start(db, &[]);
    let t = env.tenant();
    for (i, carrier) in ["twilio", "telnyx", "plivo", "vonage"].into_iter().enumerate() {
        let number = format!("+1555000{i}001");
        env.route(&t, carrier, &number);
        let cred = carrier_cred(carrier);
        let out = call(
            &env.server.url,
            &asset("simple.wav"),
            &[
                "--gateway",
                carrier,
                "--number",
                &number,
                "--carrier-credential",
                &cred,
                "--token",
                &t.key,
                "--tail",
                "2",
            ],
        );
        assert!(out.ok, "{carrier}: {}\n{}", out.stdout, out.stderr);
        let row = env.req("GET", &format!("/api/calls/{}", out.call_sid()), None, Some(&t.key)).1;
        assert_eq!(row["org_id"], t.org.as_str(), "{carrier}: {row}");
        assert_eq!(row["gateway"], carrier);
        // The org's own carrier account bills it directly: no telephony line from us.
        assert!(out.of("usage").iter().all(|u| u["line"] != "telephony"), "{carrier}: {}", out.stdout);
    }
    let (s, _) = env.req(
        "POST",
        "/api/numbers",
        Some(json!({"number": "+15550000001", "carrier": "twilio", "agentId": t.agent})),
        Some(&t.key),
    );
    assert_eq!(s, 409, "a number is routed once");
    webhook_attacks(&env);
}

fn post_form(url: &str, headers: &[(&str, String)], body: &str) -> u16 {
    let (url, body) = (url.to_string(), body.to_string());
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut req = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.send().await.unwrap().status().as_u16()
        })
    })
    .join()
    .unwrap()
}

fn form(p: &[(&str, &str)]) -> (Vec<(String, String)>, String) {
    let v: Vec<(String, String)> = p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&v).finish();
    (v, body)
}

fn webhook_attacks(env: &Env) {
    let base = &env.server.url;
    // Twilio: signed over URL + sorted params with the number's account token.
    let url = format!("{base}/twilio/voice");
    let (p, body) =
        form(&[("AccountSid", TWILIO.0), ("CallSid", "CA-attack-1"), ("From", "+15550009999"), ("To", "+15550000001")]);
    let good = gwauth::twilio::signature(TWILIO.1, &url, &p);
    assert_eq!(post_form(&url, &[], &body), 403, "twilio: missing signature");
    assert_eq!(post_form(&url, &[("X-Twilio-Signature", gwauth::twilio::signature("wrong", &url, &p))], &body), 403);
    let (_, unknown) = form(&[("AccountSid", TWILIO.0), ("CallSid", "CA-attack-2"), ("To", "+15559999999")]);
    assert_eq!(post_form(&url, &[("X-Twilio-Signature", good.clone())], &unknown), 404, "unknown number");
    assert_eq!(post_form(&url, &[("X-Twilio-Signature", good.clone())], &body), 200);
    assert_eq!(post_form(&url, &[("X-Twilio-Signature", good)], &body), 403, "twilio: replayed");
    // Telnyx TeXML: Ed25519 over timestamp|body, within 5 minutes.
    let url = format!("{base}/telnyx/texml");
    let (_, body) = form(&[("CallSid", "v3:attack"), ("To", "+15550001001")]);
    let now = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).to_string();
    let stale = (now.parse::<i64>().unwrap() - 301).to_string();
    let signed = |ts: &str, seed: &[u8; 32]| {
        vec![
            ("telnyx-timestamp", ts.to_string()),
            ("telnyx-signature-ed25519", gwauth::telnyx::sign(seed, ts, body.as_bytes())),
        ]
    };
    assert_eq!(post_form(&url, &[], &body), 403, "telnyx: missing");
    assert_eq!(post_form(&url, &signed(&now, &[9u8; 32]), &body), 403, "telnyx: another key");
    assert_eq!(post_form(&url, &signed(&stale, &TELNYX_SEED), &body), 403, "telnyx: stale");
    assert_eq!(post_form(&url, &signed(&now, &TELNYX_SEED), &body), 200);
    assert_eq!(post_form(&url, &signed(&now, &TELNYX_SEED), &body), 403, "telnyx: replayed");
    // Plivo V3: HMAC-SHA256 over URL + params + nonce.
    let url = format!("{base}/plivo/answer");
    let (p, body) = form(&[("CallUUID", "plivo-attack"), ("To", "15550002001")]);
    let sig = |tok: &str| {
        vec![
            ("X-Plivo-Signature-V3-Nonce", "12345".to_string()),
            ("X-Plivo-Signature-V3", gwauth::plivo::signature_v3(tok, "POST", &url, &p, "12345")),
        ]
    };
    assert_eq!(post_form(&url, &[], &body), 403, "plivo: missing");
    assert_eq!(post_form(&url, &sig("wrong"), &body), 403, "plivo: bad");
    assert_eq!(post_form(&url, &sig(PLIVO.1), &body), 200);
    assert_eq!(post_form(&url, &sig(PLIVO.1), &body), 403, "plivo: replayed");
    // Vonage: HS256 signed-webhook JWT, iat within 5 minutes.
    let now: i64 = now.parse().unwrap();
    let get = |jwt: Option<String>| {
        let mut h = vec![];
        if let Some(j) = jwt {
            h.push(("authorization".to_string(), format!("Bearer {j}")));
        }
        let url = format!("{base}/vonage/answer?to=15550003001&from=15550009999&uuid=vonage-attack");
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let mut r = reqwest::Client::new().get(&url);
                for (k, v) in h {
                    r = r.header(k, v);
                }
                r.send().await.unwrap().status().as_u16()
            })
        })
        .join()
        .unwrap()
    };
    let jwt = |secret: &str, iat: i64| {
        gwauth::vonage::sign_webhook(secret, &json!({"iat": iat, "application_id": VONAGE_APP}))
    };
    assert_eq!(get(None), 403, "vonage: missing");
    assert_eq!(get(Some(jwt("wrong", now))), 403, "vonage: bad");
    assert_eq!(get(Some(jwt(VONAGE_SECRET, now - 301))), 403, "vonage: stale");
    assert_eq!(get(Some(jwt(VONAGE_SECRET, now))), 200);
    assert_eq!(get(Some(jwt(VONAGE_SECRET, now))), 403, "vonage: replayed");
}

/// A stream token is used once, for its own call id, on its own carrier's route; Twilio's
/// upgrade signature is checked too.
fn stream_tokens_are_single_use_and_bound(db: Db) {
    let env = start(db, &[]);
    let t = env.tenant();
    env.route(&t, "twilio", "+15550000001");
    let mint = |call: &str| {
        let url = format!("{}/twilio/voice", env.server.url);
        let (p, body) = form(&[("AccountSid", TWILIO.0), ("CallSid", call), ("To", "+15550000001")]);
        let sig = gwauth::twilio::signature(TWILIO.1, &url, &p);
        let (url, body) = (url.clone(), body.clone());
        let doc = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let r = reqwest::Client::new()
                    .post(&url)
                    .header("X-Twilio-Signature", sig)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body);
                r.send().await.unwrap().text().await.unwrap()
            })
        })
        .join()
        .unwrap();
        doc.split("name=\"vt\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
    };
    let url = ws(&env, "/twilio/stream");
    let upgrade = vec![("X-Twilio-Signature", gwauth::twilio::signature(TWILIO.1, &url, &[]))];
    let vt = mint("CA-bound-1");
    assert_eq!(
        attempt(&url, &upgrade, twilio_start("CA-other", json!({"vt": vt}))),
        Some((1008, "call_mismatch: the stream token was minted for another call".into()))
    );
    assert_eq!(
        attempt(&url, &upgrade, twilio_start("CA-bound-1", json!({"vt": vt}))).map(|c| c.0),
        Some(1008),
        "spent by the mismatch"
    );
    let vt = mint("CA-bound-2");
    let unsigned = attempt(&url, &[], twilio_start("CA-bound-2", json!({"vt": vt})));
    assert_eq!(unsigned.map(|c| c.0), Some(1008), "no upgrade signature");
    let vt = mint("CA-bound-3");
    let telnyx =
        attempt(&ws(&env, "/telnyx/stream"), &[], start_frame("/telnyx/stream", "CA-bound-3", json!({"vt": vt})));
    assert_eq!(telnyx.map(|c| c.0), Some(1008), "a Twilio token on the Telnyx route");
    assert_eq!(env.providers_called(), 0);
    let vt = mint("CA-bound-4");
    assert_eq!(attempt(&url, &upgrade, twilio_start("CA-bound-4", json!({"vt": vt}))), None, "the right call gets in");
}

/// Media beyond real time is dropped and counted, so billed STT time stays within the call's
/// wall-clock time; a second socket with a live call id is refused; a call past its agent's
/// maximum length ends `max_duration` and is hung up at the carrier.
fn media_is_bounded_by_the_wall_clock(db: Db) {
    let env = start(db, &[]);
    let mut t = env.tenant();
    let spec = json!({
        "stt": {"provider": "deepgram", "model": "nova-3"}, "llm": {"provider": "openai", "model": "gpt-4o-mini"},
        "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "v1"}, "prompt": "Be brief.", "maxCallSecs": 3
    });
    t.agent = env.req("POST", "/api/agents", Some(spec), Some(&t.key)).1["id"].as_str().unwrap().to_string();
    env.route(&t, "twilio", "+15550000001");
    let t0 = Instant::now();
    let out = call(&env.server.url, &asset("simple.wav"), &["--agent", &t.agent, "--token", &t.key, "--fast"]);
    let wall = t0.elapsed().as_secs_f64();
    let (stt_s, _) = out.usage_sum("stt");
    assert!(stt_s > 0.0 && stt_s <= wall + 1.0, "billed STT {stt_s} s within the call's {wall} s\n{}", out.stdout);
    // Not on the org's own carrier account: the platform's telephony line is billed.
    assert!(out.of("usage").iter().any(|u| u["line"] == "telephony"), "{}", out.stdout);
    assert!(env
        .server
        .metrics()
        .lines()
        .any(|l| l.starts_with("switchboard_gateway_frames_dropped_total") && l.contains("ahead_of_clock")));
    // Max length (the agent allows 3 s) ends the call and hangs it up through Twilio's API.
    let cred = carrier_cred("twilio");
    let out = call(
        &env.server.url,
        &asset("multi_turn.wav"),
        &["--number", "+15550000001", "--carrier-credential", &cred, "--token", &t.key],
    );
    let row = env.server.wait_closed(&out.call_sid());
    assert_eq!(row["end_reason"], "max_duration", "{row}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.hangups().to_string().contains(&out.call_sid()) {
        assert!(Instant::now() < deadline, "no hang-up reached the carrier: {}", env.hangups());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A second socket reusing a live call id cannot join or end the first call.
fn a_live_call_id_is_refused(db: Db) {
    let env = start(db, &[]);
    let t = env.tenant();
    let url = ws(&env, "/twilio/stream");
    let auth = vec![("Authorization", format!("Bearer {}", t.key))];
    let first_url = url.clone();
    let first_auth = auth.clone();
    let agent = t.agent.clone();
    let first =
        std::thread::spawn(move || attempt(&first_url, &first_auth, twilio_start("CA-live", json!({"agent": agent}))));
    env.server.wait_for_session();
    let second = attempt(&url, &auth, twilio_start("CA-live", json!({"agent": t.agent})));
    assert_eq!(second, Some((1008, "call_id_in_use: a live call already has this call id".into())));
    assert_eq!(first.join().unwrap(), None, "the first call kept running");
}

/// 20 simultaneous starts against a prepaid wallet that covers two calls' holds: exactly two
/// are admitted, the rest refused `insufficient_funds` before any provider is called. On
/// Postgres the starts are spread over two servers sharing the store.
fn simultaneous_starts_hold_only_what_the_wallet_covers(db: Db) {
    let env = start(db, &[]);
    let plan = json!({"id": "prepaid", "monthly_credit_micros": 0, "byok_allowed": true, "allowed_models": null,
        "byok_markup_bps": 0, "platform_fee_micros_per_minute": 0, "max_concurrent_calls": 0});
    assert_eq!(env.req("PUT", "/api/admin/plans", Some(plan), Some(ADMIN)).0, 200);
    let org = |wallet: i64| {
        let (_, v) = env.req(
            "POST",
            "/api/admin/orgs",
            Some(json!({"name": "prepaid", "plan": "prepaid", "walletMicros": wallet})),
            Some(ADMIN),
        );
        let key = v["apiKey"].as_str().unwrap().to_string();
        let spec = json!({"stt": {"provider": "deepgram", "model": "nova-3"}, "llm": {"provider": "openai", "model": "gpt-4o-mini"},
            "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "v1"}, "prompt": "Be brief."});
        let agent = env.req("POST", "/api/agents", Some(spec), Some(&key)).1["id"].as_str().unwrap().to_string();
        (key, agent)
    };
    // One call's hold, measured while it runs.
    let (key, agent) = org(1_000_000_000);
    let (url, auth, a) = (ws(&env, "/twilio/stream"), vec![("Authorization", format!("Bearer {key}"))], agent.clone());
    let probe = std::thread::spawn(move || attempt(&url, &auth, twilio_start("CA-probe", json!({"agent": a}))));
    env.server.wait_for_session();
    let hold = env.req("GET", "/api/balance", None, Some(&key)).1["heldMicros"].as_i64().unwrap();
    assert!(hold > 0);
    assert_eq!(probe.join().unwrap(), None);

    let (key, agent) = org(hold * 5 / 2);
    let second = match &env._pg {
        Some(pg) => Some(server_on(&env.sim, &[], Some(pg.url.clone()))),
        None => None,
    };
    let urls: Vec<String> = [Some(&env.server), second.as_ref()]
        .into_iter()
        .flatten()
        .map(|s| format!("{}/twilio/stream", s.url.replacen("http", "ws", 1)))
        .collect();
    let deepgram = || env.sim.control("/keys")["deepgram"].as_array().map_or(0, Vec::len);
    let before = deepgram();
    // Admitted calls stay up until every start has been decided, however loaded the machine.
    let hold_until = std::time::Instant::now() + Duration::from_secs(20);
    let starts: Vec<_> = (0..20)
        .map(|i| {
            let (url, auth, agent) =
                (urls[i % urls.len()].clone(), vec![("Authorization", format!("Bearer {key}"))], agent.clone());
            std::thread::spawn(move || {
                let first = twilio_start(&format!("CA-rush-{i}"), json!({"agent": agent}));
                attempt_held(&url, &auth, first, Some(hold_until))
            })
        })
        .collect();
    let results: Vec<_> = starts.into_iter().map(|h| h.join().unwrap()).collect();
    let admitted = results.iter().filter(|r| r.is_none()).count();
    assert_eq!(admitted, 2, "{results:?}");
    assert!(
        results.iter().flatten().all(|(code, reason)| *code == 1008 && reason.starts_with("insufficient_funds")),
        "{results:?}"
    );
    // Only the two admitted calls reached a provider (STT connects once per call).
    assert_eq!(deepgram() - before, 2);
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[test] fn $name() { super::$name(super::Db::Sqlite) } )* }
        mod postgres { $( #[test] fn $name() { super::$name(super::Db::Postgres) } )* }
    };
}

on_both_stores!(
    media_routes_refuse_strangers,
    client_token_call_billed_to_its_org,
    carrier_numbers_answer_only_signed_webhooks,
    stream_tokens_are_single_use_and_bound,
    media_is_bounded_by_the_wall_clock,
    a_live_call_id_is_refused,
    simultaneous_starts_hold_only_what_the_wallet_covers,
);

/// The idle timeout ends a started call that sends no media, with its own end reason.
#[test]
fn idle_calls_end() {
    let env = start(Db::Sqlite, &["--idle-timeout-secs", "1"]);
    let t = env.tenant();
    let auth = vec![("Authorization", format!("Bearer {}", t.key))];
    let url = ws(&env, "/twilio/stream");
    let agent = t.agent.clone();
    let h = std::thread::spawn(move || attempt(&url, &auth, twilio_start("CA-idle", json!({"agent": agent}))));
    // `attempt` gives up after 3 s; the call ends after 1–2 s of silence.
    let closed = h.join().unwrap();
    assert_eq!(closed.map(|c| c.1), Some("idle_timeout".into()));
    assert_eq!(env.server.wait_closed("CA-idle")["end_reason"], "idle_timeout");
}

/// A plan's concurrent-call cap refuses the extra call.
#[test]
fn concurrency_limit_refuses_extra_calls() {
    let env = start(Db::Sqlite, &[]);
    let plan = json!({"id": "one-line", "monthly_credit_micros": 1_000_000, "byok_allowed": true, "allowed_models": null,
        "byok_markup_bps": 0, "platform_fee_micros_per_minute": 0, "max_concurrent_calls": 1});
    assert_eq!(env.req("PUT", "/api/admin/plans", Some(plan), Some(ADMIN)).0, 200);
    let (_, v) = env.req(
        "POST",
        "/api/admin/orgs",
        Some(json!({"name": "small", "plan": "one-line", "walletMicros": 5_000_000})),
        Some(ADMIN),
    );
    let key = v["apiKey"].as_str().unwrap().to_string();
    let spec = json!({"stt": {"provider": "deepgram", "model": "nova-3"}, "llm": {"provider": "openai", "model": "gpt-4o-mini"},
        "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "v1"}, "prompt": "Be brief."});
    let agent = env.req("POST", "/api/agents", Some(spec), Some(&key)).1["id"].as_str().unwrap().to_string();
    let url = ws(&env, "/twilio/stream");
    let auth = vec![("Authorization", format!("Bearer {key}"))];
    let (u, a, ag) = (url.clone(), auth.clone(), agent.clone());
    let first = std::thread::spawn(move || attempt(&u, &a, twilio_start("CA-c1", json!({"agent": ag}))));
    env.server.wait_for_session();
    let second = attempt(&url, &auth, twilio_start("CA-c2", json!({"agent": agent})));
    assert_eq!(second.map(|c| c.1), Some("concurrency_limit: the plan allows 1 concurrent calls".into()));
    assert_eq!(first.join().unwrap(), None);
}

/// A BYOK call at `RUST_LOG=trace`: the org's key appears nowhere in the log, the metrics or
/// the responses (the vault keeps only ciphertext).
#[test]
fn no_secret_at_any_log_level() {
    let canary = "sk-canary-7f3e9b2d41c6a8e5";
    let sim =
        Sim::start(&[("deepgram", "platform-dg-0001"), ("openai", canary), ("elevenlabs", "platform-el-0003")], &[]);
    let env_vars = vec![
        ("DEEPGRAM_API_KEY", "platform-dg-0001".to_string()),
        ("OPENAI_API_KEY", "platform-oa-0002".to_string()),
        ("ELEVENLABS_API_KEY", "platform-el-0003".to_string()),
        ("SWITCHBOARD_ADMIN_TOKEN", ADMIN.to_string()),
        ("SWITCHBOARD_MASTER_KEYS", MASTER.to_string()),
        ("RUST_LOG", "trace".to_string()),
    ];
    let server = Server::start(ServerOpts { env: env_vars, args: sim.provider_args() });
    let env = Env { server, sim, _pg: None };
    let (_, v) = env.req(
        "POST",
        "/api/admin/orgs",
        Some(json!({"name": "byok", "plan": "pro", "walletMicros": 5_000_000})),
        Some(ADMIN),
    );
    let key = v["apiKey"].as_str().unwrap().to_string();
    let (s, saved) =
        env.req("PUT", "/api/credentials", Some(json!({"provider": "openai", "apiKey": canary})), Some(&key));
    assert_eq!(s, 200, "{saved}");
    let slots = json!({"useOwnKeys": true, "slots": {"llm": saved["id"]}});
    assert_eq!(env.req("PUT", "/api/byok", Some(slots), Some(&key)).0, 200);
    let spec = json!({"stt": {"provider": "deepgram", "model": "nova-3"}, "llm": {"provider": "openai", "model": "gpt-4o-mini"},
        "tts": {"provider": "elevenlabs", "model": "eleven_flash_v2_5", "voice": "v1"}, "prompt": "Be brief."});
    let agent = env.req("POST", "/api/agents", Some(spec), Some(&key)).1["id"].as_str().unwrap().to_string();
    let out = call(&env.server.url, &asset("simple.wav"), &["--agent", &agent, "--token", &key, "--tail", "2"]);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert!(out.of("usage").iter().any(|u| u["billed_to"] == "byok"), "the call ran on the org's key");
    let seen = env.sim.control("/keys");
    assert!(seen["openai"].as_array().unwrap().contains(&json!("a8e5")), "the canary reached the provider: {seen}");
    let log = env.server.log_text();
    assert!(log.len() > 10_000, "trace logging is on");
    assert!(!log.contains(canary), "the canary key is in the trace log");
    assert!(!env.server.metrics().contains(canary));
    assert!(!out.stdout.contains(canary) && !saved.to_string().contains(canary));
    let db = std::fs::read(env.server.dir.join("sb.db")).unwrap_or_default();
    let wal = std::fs::read(env.server.dir.join("sb.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!String::from_utf8_lossy(&bytes).contains(canary), "the canary is stored in plaintext");
    }
}

/// How the server closes a started call after `bad` is sent `times` times.
async fn close_code_after(url: &str, bearer: &str, start: Message, bad: Message, times: usize) -> Option<u16> {
    use futures::{SinkExt, StreamExt};
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {bearer}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(start).await.unwrap();
    for _ in 0..times {
        if ws.send(bad.clone()).await.is_err() {
            break;
        }
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => return f.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Close codes after `start` are the documented ones on every media route: frames of a kind
/// the protocol does not carry → 1003 (binary on the JSON-only carrier streams), messages that
/// break it → 1008, an oversized message → 1009.
#[test]
fn protocol_violations_close_with_their_codes() {
    let env = start(Db::Sqlite, &[]);
    let t = env.tenant();
    for (i, route) in ROUTES.into_iter().enumerate() {
        let url = ws(&env, route);
        let (key, agent) = (t.key.clone(), t.agent.clone());
        let codes = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let start = |n: usize| start_frame(route, &format!("c-bad-{i}-{n}"), json!({"agent": agent}));
                let carries_binary = route == "/vonage/stream" || route == "/v1/client";
                let (bad, expected) = if carries_binary {
                    (Message::text("{not json"), 1008)
                } else {
                    (Message::binary(vec![0u8; 10]), 1003)
                };
                let violation = close_code_after(&url, &key, start(0), bad, 60).await;
                let too_big = close_code_after(&url, &key, start(1), Message::text("x".repeat(70_000)), 1).await;
                (violation, expected, too_big)
            })
        })
        .join()
        .unwrap();
        assert_eq!(codes.0, Some(codes.1), "{route}: protocol violations");
        assert_eq!(codes.2, Some(1009), "{route}: oversized message");
    }
}

/// Telnyx Call Control: a signed `call.initiated` makes Switchboard answer over Telnyx's API
/// and start the stream with the token as `stream_auth_token`, which Telnyx then presents in
/// its upgrade header.
#[test]
fn telnyx_call_control_answers_over_the_api() {
    let env = start(Db::Sqlite, &[]);
    let t = env.tenant();
    env.route(&t, "telnyx", "+15550001001");
    let body = json!({"data": {"event_type": "call.initiated", "payload": {"call_control_id": "v3:cc-1", "from": "+15550009999", "to": "+15550001001", "direction": "incoming"}}}).to_string();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let url = format!("{}/telnyx/call-control", env.server.url);
    let post = |sig: String| {
        let (url, body, now) = (url.clone(), body.clone(), now.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let r = reqwest::Client::new()
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("telnyx-timestamp", now)
                    .header("telnyx-signature-ed25519", sig)
                    .body(body);
                r.send().await.unwrap().status().as_u16()
            })
        })
        .join()
        .unwrap()
    };
    assert_eq!(post(gwauth::telnyx::sign(&[1u8; 32], &now, body.as_bytes())), 403, "another key");
    assert_eq!(post(gwauth::telnyx::sign(&TELNYX_SEED, &now, body.as_bytes())), 200);
    let actions = get_json(&format!("{}/_sim/actions", env.sim.urls["carrier"]));
    let actions = actions.as_array().unwrap();
    assert_eq!(
        actions.iter().map(|a| a["action"].as_str().unwrap()).collect::<Vec<_>>(),
        vec!["answer", "streaming_start"]
    );
    let start = &actions[1]["body"];
    let token = start["stream_auth_token"].as_str().unwrap().to_string();
    assert!(start["stream_url"].as_str().unwrap().ends_with("/telnyx/stream"));
    let frame = start_frame("/telnyx/stream", "v3:cc-1", json!({}));
    let stream = ws(&env, "/telnyx/stream");
    assert_eq!(
        attempt(&stream, &[("x-telnyx-streaming-auth-token", token.clone())], frame.clone()),
        None,
        "Telnyx gets in"
    );
    assert_eq!(attempt(&stream, &[("x-telnyx-streaming-auth-token", token)], frame).map(|c| c.0), Some(1008), "once");
}

/// One AudioSocket attempt: the UUID and one audio frame, then whether the server hangs up (refused) or
/// keeps the call (admitted) within 3 s.
fn audiosocket_admitted(addr: &str, uuid: &str) -> bool {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let id = uuid.replace('-', "");
    let bytes: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&id[i * 2..i * 2 + 2], 16).unwrap()).collect();
    s.write_all(&[&[0x01, 0, 16][..], &bytes].concat()).unwrap();
    // The call starts with its first audio (its kind gives the rate): 20 ms of slin silence.
    s.write_all(&[&[0x10, 0x01, 0x40][..], &[0u8; 320]].concat()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut b = [0u8; 3];
    match s.read(&mut b) {
        Ok(0) => false,
        Ok(_) => !(b[0] == 0x00 || b[0] == 0xff),
        Err(_) => true,
    }
}

/// AudioSocket has no authentication of its own: the listener is bound to one agent, refuses
/// public addresses unless told, and can require each call's UUID to be registered first.
#[test]
fn audiosocket_needs_registered_call_ids() {
    let env = start(Db::Sqlite, &[]);
    let t = env.tenant();
    let public = std::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--audiosocket-listen", "8.8.8.8:9092"])
        .args(["--database", &format!("sqlite:{}", env.server.dir.join("public.db").display())])
        .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(!public.status.success());
    assert!(String::from_utf8_lossy(&public.stderr).contains("--audiosocket-allow-public"), "{public:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut args = env.sim.provider_args();
    args.extend([
        "--audiosocket-listen".into(),
        addr.clone(),
        "--audiosocket-agent".into(),
        t.agent.clone(),
        "--audiosocket-require-registration".into(),
    ]);
    let mut vars: Vec<(&str, String)> = KEYS.iter().map(|(p, k)| (key_var(p), k.to_string())).collect();
    vars.push(("SWITCHBOARD_ADMIN_TOKEN", ADMIN.into()));
    vars.push(("SWITCHBOARD_MASTER_KEYS", MASTER.into()));
    let db = format!("sqlite:{}", env.server.dir.join("sb.db").display());
    let pbx = Server::start_with_db(ServerOpts { env: vars, args }, Some(db));
    let req = |body: Value| {
        let (s, t) = http("POST", &format!("{}/api/audiosocket/calls", pbx.url), Some(&body.to_string()), Some(&t.key));
        (s, serde_json::from_str::<Value>(&t).unwrap_or(Value::Null))
    };
    assert!(!audiosocket_admitted(&addr, "0f0e0d0c-0b0a-4908-8706-050403020100"), "an unregistered UUID is refused");
    let (s, reg) = req(json!({"agentId": t.agent}));
    assert_eq!(s, 201, "{reg}");
    let uuid = reg["uuid"].as_str().unwrap();
    assert!(audiosocket_admitted(&addr, uuid), "the registered UUID gets in");
    assert!(!audiosocket_admitted(&addr, uuid), "once");
}
