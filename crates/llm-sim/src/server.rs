//! The simulators on simkit's generic server: the [`Llm`] service routes each request to its
//! API's table (`crate::routes`), its handlers see one [`Call`] (the request, the sim's state
//! [`Shared`]: pacing, the scripted fault, request bookkeeping; simkit's [`Stats`]: keys seen,
//! streams open), and [`LlmSim`] is the running handle.

use crate::paced::Pacer;
use crate::replies::{Conversation, Turn};
use crate::routes::Answer;
use crate::{Api, Fault, SimConfig, SimKeys};
use llm::Message;
use simkit::{Reply, Request, Route, Service, SimServer, Stats};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use url::Url;

/// What the handlers of a running sim share beyond simkit's [`Stats`].
pub(crate) struct Shared {
    first_token_delay: Duration,
    tokens_per_sec: f64,
    fault: Mutex<Option<Fault>>,
    requests: AtomicU64,
    last_messages: Mutex<Vec<Message>>,
    /// The JSON body of the last completion request read (key accepted, no scripted status).
    last_body: Mutex<Option<serde_json::Value>>,
    /// OpenAI API only: report usage the Groq way (`x_groq.usage`).
    pub x_groq_usage: AtomicBool,
}

impl Shared {
    /// The answer to an accepted conversation: remembered for inspection, then the canned reply
    /// cut to `max_tokens`.
    pub fn turn(&self, conversation: &Conversation, max_tokens: Option<usize>) -> Turn {
        if let Ok(mut last) = self.last_messages.lock() {
            last.clone_from(&conversation.messages);
        }
        Turn::new(conversation, max_tokens)
    }

    /// Keeps a request body for [`LlmSim::last_request_body`] (not JSON: kept as nothing).
    pub fn keep_body(&self, body: &[u8]) {
        if let Ok(mut last) = self.last_body.lock() {
            *last = serde_json::from_slice(body).ok();
        }
    }

    /// Token times at this sim's pace.
    pub fn pacer(&self) -> Pacer {
        Pacer::new(self.first_token_delay, self.tokens_per_sec)
    }
}

/// One request as an API's handler sees it.
pub(crate) struct Call<'a> {
    pub sim: &'a Shared,
    pub stats: &'a Stats,
    pub req: &'a Request,
    /// The `{…}` segments of the matched route, decoded.
    pub params: Vec<String>,
}

impl Call<'_> {
    /// Records a presented key (test inspection) and says whether it is accepted.
    pub fn check_key(&self, key: &str) -> bool {
        self.stats.check_key(key)
    }

    /// The trimmed, non-empty value of header `name`.
    pub fn header_key(&self, name: &str) -> Option<&str> {
        self.req.header(name).map(str::trim).filter(|k| !k.is_empty())
    }

    /// The token of `Authorization: Bearer <token>`.
    pub fn bearer(&self) -> Option<&str> {
        self.header_key("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        self.req.query_param(name)
    }

    /// The `i`th `{…}` segment of the route (empty if the route has none: a programming error
    /// the route tests catch, not a request's).
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// Admits a completion request the way every API does: counts it, runs the API's key check
    /// (`auth`), applies a scripted status (rendered by the API's `status`), then reads the
    /// body (`parse`). `Ok` carries the request and the token count to cut its stream at, if a
    /// drop is scripted; `Err` the refusal to answer with.
    pub fn admit<R, A: Into<Reply>, P: Into<Reply>>(
        &self,
        auth: impl FnOnce(&Self) -> Result<(), A>,
        status: fn(u16) -> Reply,
        parse: impl FnOnce() -> Result<R, P>,
    ) -> Result<(R, Option<usize>), Reply> {
        self.sim.requests.fetch_add(1, Ordering::Relaxed);
        auth(self).map_err(Into::into)?;
        let drop_after = match self.sim.fault.lock().ok().and_then(|f| *f) {
            Some(Fault::Status(code)) => return Err(status(code)),
            Some(Fault::DropAfterTokens(n)) => Some(n),
            None => None,
        };
        let req = parse().map_err(Into::into)?;
        Ok((req, drop_after))
    }
}

/// A scripted or refused status as sent: anything outside `100..=999` is a 500 (as axum's
/// `StatusCode::from_u16` fallback made it).
pub(crate) fn status_code(status: u16) -> u16 {
    if (100..=999).contains(&status) {
        status
    } else {
        500
    }
}

/// A `200` JSON reply.
pub(crate) fn ok_json(v: &serde_json::Value) -> Answer {
    Ok(Route::Reply(Reply::json(200, v.to_string())))
}

/// `route` with header `name` set to `value` (replacing any), on a reply or a stream's head.
pub(crate) fn set_header(route: Route<()>, name: &'static str, value: String) -> Route<()> {
    let set = |mut r: Reply| {
        r.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        r.header(name, value)
    };
    match route {
        Route::Reply(r) => Route::Reply(set(r)),
        Route::Stream(head, body) => Route::Stream(set(head), body),
        upgrade => upgrade,
    }
}

/// One provider API as a simkit service: every request goes to the API's route table.
pub(crate) struct Llm {
    api: Api,
    shared: Shared,
}

impl Service for Llm {
    type Session = ();
    const NAME: &'static str = "llm";
    const SCHEME: &'static str = "http";
    /// axum's default limit, which the simulators had before: requests carry whole
    /// conversations.
    const MAX_BODY: usize = 2 * 1024 * 1024;

    fn route(&self, req: &Request, stats: &Stats) -> Route<()> {
        self.api.routes().dispatch(&self.shared, stats, req)
    }
}

/// A running simulator of one provider API; dropping it stops the server and cuts open streams.
pub struct LlmSim {
    api: Api,
    base_url: Url,
    server: SimServer<Llm>,
}

impl LlmSim {
    /// Starts `api`'s simulator on a free loopback port.
    pub async fn start(api: Api, cfg: SimConfig) -> std::io::Result<Self> {
        let shared = Shared {
            first_token_delay: cfg.first_token_delay,
            tokens_per_sec: cfg.tokens_per_sec,
            fault: Mutex::new(cfg.fault),
            requests: AtomicU64::new(0),
            last_messages: Mutex::new(Vec::new()),
            last_body: Mutex::new(None),
            x_groq_usage: AtomicBool::new(false),
        };
        let server = SimServer::start(cfg.keys, Llm { api, shared }).await?;
        let base_url = Url::parse(&format!("http://{}{}", server.addr(), api.base_path()))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(Self { api, base_url, server })
    }

    fn shared(&self) -> &Shared {
        &self.server.service().shared
    }

    pub fn api(&self) -> Api {
        self.api
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// What an adapter is given as its base URL, in the shape of the real one:
    /// `http://127.0.0.1:PORT/v1` for the OpenAI API, the bare host for the others (whose
    /// adapters add their own paths).
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn keys(&self) -> &SimKeys {
        self.server.keys()
    }

    /// Replaces the injected fault for the following requests.
    pub fn set_fault(&self, fault: Option<Fault>) {
        if let Ok(mut f) = self.shared().fault.lock() {
            *f = fault;
        }
    }

    /// Completion requests received, including refused ones (key checks are not counted).
    pub fn requests(&self) -> u64 {
        self.shared().requests.load(Ordering::Relaxed)
    }

    /// Streaming responses still being written (a client that hangs up ends its stream).
    pub fn open_streams(&self) -> usize {
        self.server.open_connections()
    }

    /// Every key presented, in arrival order (test inspection only; never log them).
    pub fn seen_keys(&self) -> Vec<String> {
        self.server.seen_keys()
    }

    /// The conversation of the last accepted completion request, system prompt first.
    pub fn last_request_messages(&self) -> Vec<Message> {
        self.shared().last_messages.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The JSON body of the last completion request read (key accepted, no scripted status),
    /// exactly as received: which fields an adapter sends. Kept by every API.
    pub fn last_request_body(&self) -> Option<serde_json::Value> {
        self.shared().last_body.lock().ok().and_then(|b| b.clone())
    }

    /// OpenAI API: report streamed usage the Groq way from now on, under `x_groq.usage` on the
    /// finish chunk with no separate usage chunk (so only the `x_groq` path can bill it).
    pub fn set_x_groq_usage(&self, on: bool) {
        self.shared().x_groq_usage.store(on, Ordering::Relaxed);
    }
}

impl simkit::RunningSim for LlmSim {
    fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    fn seen_keys(&self) -> Vec<String> {
        LlmSim::seen_keys(self)
    }

    fn last_request(&self) -> Option<serde_json::Value> {
        serde_json::to_value(self.last_request_messages()).ok()
    }

    fn stats(&self) -> Option<&Stats> {
        Some(self.server.stats())
    }
}
