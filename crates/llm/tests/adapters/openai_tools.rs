//! Function calling through the `openai` adapter and its compatible family against the OpenAI
//! API simulator, over Chat Completions and Responses alike: calls named by the caller's words,
//! parallel calls, forced choices, results voiced, unpaired results refused, and the tool fields
//! (or their absence, or a provider's quirk) as the simulator received them.

use super::sim;
use super::tool_rounds::{call_answer, calls, end_call, offer, order_call, order_status, stream_tools};
use llm::{LlmError, LlmEvent, Message, ToolChoice, Tools};
use llm_sim::testing::{conversation, text};
use llm_sim::{Api, LlmSim};
use serde_json::{json, Value};

const KEY: &str = "sk-openai-tools-0123456789";
/// The same cases over both wire APIs.
const MODELS: [&str; 2] = ["gpt-4o-mini", "responses:gpt-4.1-mini"];

/// `messages` to `model` of the `provider` the sim plays, offering `tools`.
async fn run(s: &LlmSim, provider: &str, model: &str, messages: &[Message], tools: Tools<'_>) -> Events {
    stream_tools(provider, &s.base_url(), KEY, model, messages, tools).await
}

type Events = Result<Vec<LlmEvent>, LlmError>;

fn finish(events: &[LlmEvent]) -> Option<&str> {
    match events.last() {
        Some(LlmEvent::Done { finish_reason }) => finish_reason.as_deref(),
        other => panic!("the stream ended with {other:?}"),
    }
}

/// The caller names a tool: one call with the arguments from their words, exact usage, a
/// `tool_calls` finish; the result sent back is voiced in the next turn.
#[tokio::test]
async fn a_named_tool_is_called_and_its_result_voiced() {
    let s = sim(Api::OpenAi, &[KEY], None).await;
    let specs = [order_status()];
    for model in MODELS {
        let mut messages = conversation("What is the order status of 4 2 1 7?");
        let events = run(&s, "openai", model, &messages, offer(&specs)).await.unwrap();
        let call = order_call();
        assert_eq!(events, call_answer(&messages, &call, "tool_calls"), "{model}");
        messages.push(Message::assistant_calls("", vec![call]));
        messages.push(Message::tool_result("call_1", r#"{"status":"shipped","eta":"Tuesday"}"#));
        let events = run(&s, "openai", model, &messages, offer(&specs)).await.unwrap();
        assert_eq!(text(&events), "I checked: eta Tuesday, status shipped.", "{model}");
        assert_eq!(finish(&events), Some("stop"), "{model}");
        assert_eq!(s.last_request_messages(), messages, "{model}: calls and results arrived as sent");
    }
}

#[tokio::test]
async fn two_named_tools_are_called_in_parallel_unless_turned_off() {
    let s = sim(Api::OpenAi, &[KEY], None).await;
    let specs = [order_status(), end_call()];
    let messages = conversation("Order status 12, then end call.");
    for model in MODELS {
        let events = run(&s, "openai", model, &messages, offer(&specs)).await.unwrap();
        let called = calls(&events);
        let got: Vec<(&str, &str)> = called.iter().map(|c| (c.id.as_str(), c.name.as_str())).collect();
        assert_eq!(got, [("call_1", "order_status"), ("call_2", "end_call")], "{model}");
        assert_eq!(finish(&events), Some("tool_calls"));
        let serial = Tools { parallel: Some(false), ..offer(&specs) };
        let events = run(&s, "openai", model, &messages, serial).await.unwrap();
        assert_eq!(calls(&events).len(), 1, "{model}");
        assert_eq!(s.last_request_body().unwrap()["parallel_tool_calls"], false, "{model}");
    }
}

#[tokio::test]
async fn a_result_for_an_unknown_call_is_a_bad_request() {
    let s = sim(Api::OpenAi, &[KEY], None).await;
    let specs = [order_status()];
    let mut messages = conversation("order status 4217");
    messages.push(Message::tool_result("call_9", "shipped"));
    for (model, said) in [
        (MODELS[0], "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."),
        (MODELS[1], "No tool call found for function call output with call_id call_9."),
    ] {
        let err = run(&s, "openai", model, &messages, offer(&specs)).await.unwrap_err();
        assert_eq!(err, LlmError::BadRequest(said.into()), "{model}");
    }
}

/// A forced function is called whatever was said, and the choice has each API's shape.
#[tokio::test]
async fn a_forced_function_is_called() {
    let s = sim(Api::OpenAi, &[KEY], None).await;
    let specs = [order_status(), end_call()];
    let forced = ToolChoice::Function("end_call".into());
    let tools = Tools { choice: Some(&forced), ..offer(&specs) };
    for (model, shape) in [
        (MODELS[0], json!({"type": "function", "function": {"name": "end_call"}})),
        (MODELS[1], json!({"type": "function", "name": "end_call"})),
    ] {
        let events = run(&s, "openai", model, &conversation("tell me a story"), tools).await.unwrap();
        let called = calls(&events);
        let got: Vec<(&str, &str)> = called.iter().map(|c| (c.name.as_str(), c.arguments.as_str())).collect();
        assert_eq!(got, [("end_call", "{}")], "{model}");
        let body = s.last_request_body().unwrap();
        assert_eq!(body["tool_choice"], shape, "{model}");
        assert_eq!(body["tools"].as_array().map(Vec::len), Some(2), "{model}");
    }
}

/// No tools offered: not one tool field goes out, even with a choice and a parallel switch set.
#[tokio::test]
async fn a_request_without_tools_carries_no_tool_fields() {
    let s = sim(Api::OpenAi, &[KEY], None).await;
    let stray = Tools { specs: &[], choice: Some(&ToolChoice::Required), parallel: Some(false) };
    for model in MODELS {
        for tools in [Tools::default(), stray] {
            let events = run(&s, "openai", model, &conversation("end call"), tools).await.unwrap();
            assert!(calls(&events).is_empty());
            let body: Value = s.last_request_body().unwrap();
            for field in ["tools", "tool_choice", "parallel_tool_calls"] {
                assert!(body.get(field).is_none(), "{model}: {field} in {body}");
            }
        }
    }
}

/// The compatible family's quirks as the simulator received them: Mistral's and Fireworks'
/// required call is `"any"`; Cerebras gets no `parallel_tool_calls`.
#[tokio::test]
async fn compat_tool_quirks_reach_the_wire() {
    let s = sim(Api::OpenAi, &[KEY], None).await;
    let specs = [order_status(), end_call()];
    let required = Tools { choice: Some(&ToolChoice::Required), parallel: Some(false), ..offer(&specs) };
    let messages = conversation("tell me a story");
    for (provider, word, parallel) in [
        ("openai", "required", Some(false)),
        ("mistral", "any", Some(false)),
        ("fireworks", "any", Some(false)),
        ("cerebras", "required", None),
    ] {
        let events = run(&s, provider, "some-model", &messages, required).await.unwrap();
        assert_eq!(calls(&events)[0].name, "order_status", "{provider}: a required call, none named");
        let body = s.last_request_body().unwrap();
        assert_eq!(body["tool_choice"], word, "{provider}");
        assert_eq!(body.get("parallel_tool_calls").and_then(Value::as_bool), parallel, "{provider}");
    }
}
