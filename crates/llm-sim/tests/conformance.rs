//! One suite for every LLM provider `llm::registry` builds, each adapter against the simulator of
//! its API (`llm_sim::registry::api_for`) over real loopback HTTP: the happy path with its usage,
//! a capped reply, a refused key (streaming and the key check), status faults, a mid-stream drop
//! (`Tuning::llm_drop_after_tokens`), a client that hangs up, a stalled and a vanished provider.
//! What differs per API is one [`Row`]; provider-specific cases live beside their adapter
//! (`crates/llm/tests/adapters`).

use llm::{LlmError, LlmEvent, Message, ToolCall};
use llm_sim::registry::{self, api_for, Api};
use llm_sim::testing::{collect, conversation, sim_prompt_tokens, text, Adapter};
use llm_sim::{reply_for, Fault, LlmSim, RunningSim, SimConfig, SimKeys, Tuning};
use secrecy::SecretString;
use std::time::Duration;
use tokio::sync::mpsc;
use url::Url;

/// What differs per API; every other expectation is the same for every provider.
struct Row {
    api: Api,
    key: &'static str,
    bad_key: &'static str,
    /// What the sim records for `bad_key` (Bedrock names only the access key id).
    bad_seen: &'static str,
    model: &'static str,
    /// The finish reason of a whole reply, and of one cut by the token cap.
    stop: &'static str,
    length: &'static str,
    /// The retry hint of a 429, as the adapter reads it from the API's headers or body.
    retry_after_ms: Option<u64>,
    /// The stream reports input usage before the first token, so a cut keeps it exact.
    input_before_tokens: bool,
}

const ROWS: [Row; 5] = [
    Row {
        api: Api::OpenAi,
        key: "sk-conformance-0123456789",
        bad_key: "sk-bad-key-abcdef123456",
        bad_seen: "sk-bad-key-abcdef123456",
        model: "gpt-4o-mini",
        stop: "stop",
        length: "length",
        retry_after_ms: Some(1200),
        input_before_tokens: false,
    },
    Row {
        api: Api::Anthropic,
        key: "sk-ant-conformance-0123456789",
        bad_key: "sk-ant-bad-key-abcdef123456",
        bad_seen: "sk-ant-bad-key-abcdef123456",
        model: "claude-haiku-4-5",
        stop: "end_turn",
        length: "max_tokens",
        retry_after_ms: Some(2000),
        input_before_tokens: true,
    },
    Row {
        api: Api::Gemini,
        key: "AIzaSyConformance0123456789abcdefghij",
        bad_key: "AIzaSyBadKey0123456789abcdefghijklmnop",
        bad_seen: "AIzaSyBadKey0123456789abcdefghijklmnop",
        model: "gemini-2.5-flash",
        stop: "STOP",
        length: "MAX_TOKENS",
        retry_after_ms: Some(2000),
        input_before_tokens: false,
    },
    Row {
        api: Api::Azure,
        key: "0123456789abcdef0123456789abcdef",
        bad_key: "ffffffffffffffffffffffffffff0000",
        bad_seen: "ffffffffffffffffffffffffffff0000",
        model: "gpt-4o-mini",
        stop: "stop",
        length: "length",
        retry_after_ms: Some(2000),
        input_before_tokens: false,
    },
    Row {
        api: Api::Bedrock,
        key: "AKIDCONFORM00001:wJalrXUtnFEMI/K7MDENG+bPxRfiCYCONFORM",
        bad_key: "AKIDUNKNOWN9999:wJalrXUtnFEMI/K7MDENG+bPxRfiCYCONFORM",
        bad_seen: "AKIDUNKNOWN9999",
        model: "amazon.nova-lite-v1:0",
        stop: "end_turn",
        length: "max_tokens",
        retry_after_ms: None,
        input_before_tokens: false,
    },
];

/// One registered provider with the row of the API that serves it.
struct Case {
    provider: &'static str,
    row: &'static Row,
}

impl Case {
    /// Every provider of `llm::registry`; each must have a simulator.
    fn all() -> Vec<Case> {
        llm::registry::names()
            .map(|provider| {
                let api = api_for(provider).unwrap_or_else(|| panic!("{provider} has no simulator"));
                let row = ROWS.iter().find(|r| r.api == api).unwrap_or_else(|| panic!("no row for {api:?}"));
                Case { provider, row }
            })
            .collect()
    }

    /// Every case with its API's simulator accepting the row's key, at `switchboard sim`'s
    /// tuning `t`.
    async fn started(t: &Tuning) -> Vec<(Case, LlmSim)> {
        let mut out = Vec::new();
        for case in Case::all() {
            let keys = SimKeys::from(&[case.row.key][..]);
            let sim = LlmSim::start(case.row.api, SimConfig::from_tuning(keys, t)).await.unwrap();
            out.push((case, sim));
        }
        out
    }

    async fn stream(
        &self,
        base: &Url,
        key: &str,
        user: &str,
        max_tokens: Option<u32>,
    ) -> Result<mpsc::Receiver<LlmEvent>, LlmError> {
        let adapter = Adapter { provider: self.provider, base, key, model: self.row.model };
        adapter.stream(&conversation(user), max_tokens, llm::Tools::default()).await
    }

    /// Whether its streams carry usage: the family members that are not asked for it get none.
    fn reports_usage(&self) -> bool {
        llm::compat::find(self.provider).is_none_or(|p| p.include_usage)
    }

    async fn validate(&self, base: &Url, key: &str) -> Result<(), LlmError> {
        let key = SecretString::from(key.to_string());
        llm::validate_key(self.provider, &reqwest::Client::new(), base, &key).await
    }
}

/// Tokens without pacing, a short first-token delay, no fault.
fn quick() -> Tuning {
    Tuning { llm_first_token: Duration::from_millis(10), llm_tokens_per_sec: 0.0, ..Tuning::default() }
}

/// The story streams token by token, then one `Usage` (the sim's counts, or the estimate for a
/// provider that is not asked for usage), then `Done`; the whole conversation went out.
#[tokio::test]
async fn happy_path_streams_tokens_then_usage_then_done() {
    for (case, s) in Case::started(&quick()).await {
        let (p, row) = (case.provider, case.row);
        let messages = conversation("Tell me a story, please");
        let events = collect(case.stream(&s.base_url(), row.key, "Tell me a story, please", None).await.unwrap()).await;
        let story = reply_for("story");
        let n = story.split_whitespace().count();
        assert_eq!(text(&events), story, "{p}");
        assert_eq!(events.len(), n + 2, "{p}: one event per token, then usage and done: {events:?}");
        let usage = if case.reports_usage() {
            // Σ(words + 4) over the conversation, and one per word of the reply.
            LlmEvent::Usage { input_tokens: sim_prompt_tokens(&messages), output_tokens: n as u64, estimated: false }
        } else {
            LlmEvent::Usage {
                input_tokens: llm::estimate_input_tokens(&messages),
                output_tokens: llm::estimate_output_tokens(story.chars().count()),
                estimated: true,
            }
        };
        assert_eq!(events[n], usage, "{p}");
        assert_eq!(events[n + 1], LlmEvent::Done { finish_reason: Some(row.stop.into()) }, "{p}");
        assert_eq!(s.last_request_messages(), messages, "{p}: system prompt first, then the whole history");
        assert_eq!(s.requests(), 1, "{p}");
        assert_eq!(s.seen_keys(), vec![row.key.to_string()], "{p}");
    }
}

/// Every provider speaks its API's tool protocol: a tool the caller names is called (whole,
/// with the caller's words as arguments, no text), and its result, sent back in the provider's
/// own shape, is voiced; a result that answers no call is refused.
#[tokio::test]
async fn tool_calls_round_trip_for_every_provider() {
    let spec = llm::ToolSpec {
        name: "order_status".into(),
        description: "Look up an order".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"order_id": {"type": "string"}}}),
    };
    let specs = [spec];
    let tools = llm::Tools { specs: &specs, ..Default::default() };
    for (case, s) in Case::started(&quick()).await {
        let (p, row) = (case.provider, case.row);
        let mut messages = conversation("What is the order status of order 4 2 1 7?");
        let ask = |m: Vec<Message>| {
            let base = s.base_url();
            async move { Adapter { provider: p, base: &base, key: row.key, model: row.model }.stream(&m, None, tools).await }
        };
        let events = collect(ask(messages.clone()).await.unwrap()).await;
        let calls: Vec<ToolCall> = llm_sim::testing::tool_calls(&events);
        assert_eq!(calls.len(), 1, "{p}: {events:?}");
        assert_eq!(calls[0].name, "order_status", "{p}");
        let args: serde_json::Value = serde_json::from_str(&calls[0].arguments).unwrap();
        assert_eq!(args, serde_json::json!({"order_id": "4217"}), "{p}");
        assert_eq!(text(&events), "", "{p}: a call and no words");
        assert!(matches!(events.last(), Some(LlmEvent::Done { .. })), "{p}: {events:?}");

        messages.push(Message::assistant_calls("", calls.clone()));
        messages.push(Message::tool_result(calls[0].id.clone(), r#"{"status":"shipped"}"#));
        let events = collect(ask(messages.clone()).await.unwrap()).await;
        assert_eq!(text(&events), "I checked: status shipped.", "{p}: {events:?}");

        let orphan = [&messages[..messages.len() - 2], &[Message::tool_result("call_9", "x")]].concat();
        let refused = match ask(orphan).await {
            Err(e) => e,
            Ok(rx) => match collect(rx).await.pop() {
                Some(LlmEvent::Error(e)) => e,
                other => panic!("{p}: an orphan result is refused, got {other:?}"),
            },
        };
        assert!(matches!(refused, LlmError::BadRequest(_)), "{p}: {refused:?}");
    }
}

/// A token cap ends the reply with the API's length finish, usage counting what was sent.
#[tokio::test]
async fn capped_reply_ends_with_the_length_finish() {
    for (case, s) in Case::started(&quick()).await {
        let (p, row) = (case.provider, case.row);
        let events = collect(case.stream(&s.base_url(), row.key, "what are your hours", Some(2)).await.unwrap()).await;
        assert_eq!(text(&events), "We are", "{p}");
        assert_eq!(events.last(), Some(&LlmEvent::Done { finish_reason: Some(row.length.into()) }), "{p}");
        if case.reports_usage() {
            assert!(
                events.iter().any(|e| matches!(e, LlmEvent::Usage { output_tokens: 2, estimated: false, .. })),
                "{p}: {events:?}"
            );
        }
    }
}

/// A wrong key is `Unauthorized` before any stream, and the key is never shown.
#[tokio::test]
async fn refused_key_is_unauthorized_and_never_shown() {
    for (case, s) in Case::started(&quick()).await {
        let (p, row) = (case.provider, case.row);
        let err = case.stream(&s.base_url(), row.bad_key, "hi", None).await.unwrap_err();
        assert_eq!(err, LlmError::Unauthorized, "{p}");
        assert_eq!(err.code(), "unauthorized");
        let tail = &row.bad_key[row.bad_key.len() - 12..];
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains(row.bad_key) && !shown.contains(tail), "{p}: {shown}");
        }
        assert_eq!(s.seen_keys(), vec![row.bad_seen.to_string()], "{p}: the key reached the wire");
        assert_eq!(s.requests(), 1, "{p}");
    }
}

/// The key check (`validate_key`) accepts the sim's key and refuses another, without completing.
#[tokio::test]
async fn key_check_accepts_the_key_and_refuses_another() {
    for (case, s) in Case::started(&quick()).await {
        let (p, row) = (case.provider, case.row);
        assert_eq!(case.validate(&s.base_url(), row.key).await, Ok(()), "{p}");
        let err = case.validate(&s.base_url(), row.bad_key).await.unwrap_err();
        assert_eq!(err, LlmError::Unauthorized, "{p}");
        assert!(!format!("{err} {err:?}").contains(row.bad_key), "{p}");
        assert_eq!(s.seen_keys(), vec![row.key.to_string(), row.bad_seen.to_string()], "{p}");
        assert_eq!(s.requests(), 0, "{p}: a key check is not a completion");
    }
}

/// Scripted statuses come back typed: throttling with the API's retry hint, a server error with
/// its status, a refusal as `Forbidden`; clearing the fault serves again.
#[tokio::test]
async fn status_faults_are_typed_errors() {
    for (case, s) in Case::started(&quick()).await {
        let (p, row) = (case.provider, case.row);
        for (status, expected) in [
            (429, LlmError::RateLimited { retry_after_ms: row.retry_after_ms }),
            (503, LlmError::Server { status: 503 }),
            (403, LlmError::Forbidden),
        ] {
            s.set_fault(Some(Fault::Status(status)));
            assert_eq!(case.stream(&s.base_url(), row.key, "hi", None).await.unwrap_err(), expected, "{p} {status}");
        }
        s.set_fault(None);
        let events = collect(case.stream(&s.base_url(), row.key, "hi", None).await.unwrap()).await;
        assert_eq!(text(&events), reply_for("hi"), "{p}");
    }
}

/// A connection cut after 5 tokens (`--sim-llm-drop-after-tokens 5`): the tokens so far, an
/// estimated usage at least the sim's real counts, then `Error(Http)` (the body ended with a
/// transport error, not the end marker), then the end.
#[tokio::test]
async fn mid_stream_drop_estimates_usage_then_errors() {
    let dropping = Tuning { llm_drop_after_tokens: Some(5), ..quick() };
    for (case, s) in Case::started(&dropping).await {
        let (p, row) = (case.provider, case.row);
        let messages = conversation("Tell me a story");
        let events = collect(case.stream(&s.base_url(), row.key, "Tell me a story", None).await.unwrap()).await;
        assert_eq!(events.len(), 7, "{p}: {events:?}");
        assert_eq!(text(&events), "Once upon a time, a", "{p}");
        let LlmEvent::Usage { input_tokens, output_tokens, estimated } = events[5] else {
            panic!("{p}: expected usage, got {:?}", events[5]);
        };
        assert!(estimated, "{p}");
        let sim_prompt = sim_prompt_tokens(&messages);
        if row.input_before_tokens {
            assert_eq!(input_tokens, sim_prompt, "{p}: the reported input stays exact");
        } else {
            assert!(input_tokens >= sim_prompt, "{p}: {input_tokens} < {sim_prompt}");
        }
        assert!(output_tokens >= 5, "{p}: {output_tokens}");
        assert!(matches!(events[6], LlmEvent::Error(LlmError::Http(_))), "{p}: {:?}", events[6]);
    }
}

/// Dropping the receiver hangs up: the sim sees its stream closed instead of writing on.
#[tokio::test]
async fn a_client_that_hangs_up_closes_the_stream() {
    let paced = Tuning { llm_tokens_per_sec: 20.0, ..quick() };
    for (case, s) in Case::started(&paced).await {
        let (p, row) = (case.provider, case.row);
        let mut rx = case.stream(&s.base_url(), row.key, "story", None).await.unwrap();
        assert!(matches!(rx.recv().await, Some(LlmEvent::Token(_))), "{p}");
        assert_eq!(s.open_streams(), 1, "{p}");
        drop(rx);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while s.open_streams() != 0 {
            assert!(tokio::time::Instant::now() < deadline, "{p}: the sim still streams to a cancelled client");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A provider that accepts the connection and never answers: with the caller's deadline on the
/// client, the stream fails as a transport error instead of hanging, without the key.
#[tokio::test]
async fn a_stalled_provider_times_out_as_a_transport_error() {
    let http = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    for (case, s) in Case::started(&quick()).await {
        let (p, row) = (case.provider, case.row);
        let stalled = simkit::stall_like(&s).await.unwrap();
        let (base, messages) = (stalled.base_url(), conversation("hi"));
        let adapter = Adapter { provider: p, base: &base, key: row.key, model: row.model };
        let started = adapter.stream_on(&http, &messages, None, llm::Tools::default());
        let err = tokio::time::timeout(Duration::from_secs(5), started).await.expect("the deadline holds").unwrap_err();
        assert!(matches!(err, LlmError::Http(_)), "{p}: {err:?}");
        assert!(!format!("{err} {err:?}").contains(row.key), "{p}");
        assert_eq!(s.requests(), 0, "{p}: the real sim was never called");
    }
}

/// A provider that is gone (nothing listens at its address any more): the stream and the key
/// check are transport errors. The address is a port this test holds bound without listening,
/// so no simulator another test starts meanwhile can take it over (a dropped simulator's port
/// can be handed out again at once).
#[tokio::test]
async fn a_vanished_provider_is_a_transport_error() {
    let gone = tokio::net::TcpSocket::new_v4().unwrap();
    gone.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = gone.local_addr().unwrap().port();
    for (case, s) in Case::started(&quick()).await {
        let (p, row) = (case.provider, case.row);
        let mut base = s.base_url();
        base.set_port(Some(port)).unwrap();
        drop(s);
        let err = case.stream(&base, row.key, "hi", None).await.unwrap_err();
        assert!(matches!(err, LlmError::Http(_)), "{p}: {err:?}");
        assert!(!err.to_string().contains(row.key), "{p}");
        assert!(matches!(case.validate(&base, row.key).await, Err(LlmError::Http(_))), "{p}");
    }
}

/// `switchboard sim`'s start (`llm_sim::registry`) gives each API's simulator, serving its own
/// provider's adapter, with the inspection the control endpoint reads.
#[tokio::test]
async fn the_registry_starts_every_simulator() {
    for api in registry::SIMS {
        let row = ROWS.iter().find(|r| r.api == *api).unwrap();
        let sim: Box<dyn RunningSim> = registry::start(*api, SimKeys::from(&[row.key][..]), quick()).await.unwrap();
        let case = Case { provider: api.name(), row };
        let events = collect(case.stream(&sim.base_url(), row.key, "hi", None).await.unwrap()).await;
        assert_eq!(text(&events), reply_for("hi"), "{api:?}");
        assert_eq!(sim.seen_keys(), vec![row.key.to_string()], "{api:?}");
        assert_eq!(sim.last_request(), serde_json::to_value(conversation("hi")).ok(), "{api:?}");
    }
}
