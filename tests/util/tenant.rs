//! A production server on `switchboard sim`'s providers, with one pro org and its agent: what
//! the web and JS client tests sign in to.

use super::recorded::agent_spec;
use super::{http, Server, ServerOpts, Sim};
use serde_json::{json, Value};

pub const ADMIN: &str = "admin-web-token";
pub const MASTER: &str = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// Platform keys the simulators accept and the server holds (so it runs in production mode).
pub const KEYS: [(&str, &str, &str); 3] = [
    ("deepgram", "DEEPGRAM_API_KEY", "platform-dg-0001"),
    ("openai", "OPENAI_API_KEY", "platform-oa-0002"),
    ("elevenlabs", "ELEVENLABS_API_KEY", "platform-el-0003"),
];

pub struct Prod {
    pub server: Server,
    pub sim: Sim,
    /// The org's API key, its id and its agent's id.
    pub key: String,
    pub org: String,
    pub agent: String,
}

impl Prod {
    /// `sim_keys`: extra keys the simulators accept (an org's own keys, for BYOK).
    pub fn start(sim_keys: &[(&str, &str)]) -> Prod {
        let mut keys: Vec<(&str, &str)> = KEYS.iter().map(|(p, _, k)| (*p, *k)).collect();
        keys.extend_from_slice(sim_keys);
        let sim = Sim::start(&keys, &[]);
        let mut env: Vec<(&str, String)> = KEYS.iter().map(|(_, v, k)| (*v, k.to_string())).collect();
        env.push(("SWITCHBOARD_ADMIN_TOKEN", ADMIN.into()));
        env.push(("SWITCHBOARD_MASTER_KEYS", MASTER.into()));
        let server = Server::start(ServerOpts { env, args: sim.provider_args() });
        let org = req(&server, "POST", "/api/admin/orgs", Some(json!({"name": "acme", "plan": "pro"})), ADMIN, 201);
        let key = org["apiKey"].as_str().expect("apiKey").to_string();
        let spec = agent_spec();
        let agent = req(&server, "POST", "/api/agents", Some(spec), &key, 201);
        Prod {
            org: org["orgId"].as_str().expect("orgId").to_string(),
            agent: agent["id"].as_str().expect("agent id").to_string(),
            key,
            server,
            sim,
        }
    }
}

/// One API request that must answer `want`; its JSON body.
pub fn req(server: &Server, method: &str, path: &str, body: Option<Value>, bearer: &str, want: u16) -> Value {
    let body = body.map(|b| b.to_string());
    let (status, text) = http(method, &format!("{}{path}", server.url), body.as_deref(), Some(bearer));
    assert_eq!(status, want, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}
