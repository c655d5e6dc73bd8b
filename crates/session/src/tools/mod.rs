//! An agent's tools during a call: what the model is offered ([`ToolBox::specs`]) and what
//! runs a call it makes ([`ToolBox::run`]): the org's webhook, or a built-in that acts on the
//! line (`end_call`, `transfer_call`, `send_dtmf`). Everything a tool needs (webhook secrets,
//! the carrier line) is resolved when the session opens, like the plan's keys.
//!
//! A round's calls run concurrently and each ends in an [`Outcome`]; failures, timeouts and
//! unknown tools become error results the model reads and can talk about, never a dead call.

mod builtin;
pub mod egress;
mod webhook;

pub(crate) use builtin::CarrierLine;
pub(crate) use webhook::WebhookSecrets;

use billing::{AgentTool, ToolRun};
use futures::future::{join_all, BoxFuture};
use llm::{ToolCall, ToolSpec};
use std::sync::Arc;
use tokio::sync::watch;

/// What ended one tool call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The text the model reads as the call's result (an error result included).
    Result(String),
    /// `end_call`: say this line, then hang up.
    EndCall { closing_line: String },
    /// `transfer_call` went through: the call has left this session.
    Transferred { to: String },
}

/// One finished call.
#[derive(Debug, Clone)]
pub(crate) struct Done {
    pub call: ToolCall,
    pub outcome: Outcome,
}

impl Done {
    /// What goes back into the conversation as the call's result.
    pub(crate) fn result_text(&self) -> String {
        match &self.outcome {
            Outcome::Result(text) => text.clone(),
            Outcome::EndCall { .. } => r#"{"ok":true,"ending":true}"#.into(),
            Outcome::Transferred { to } => serde_json::json!({"ok": true, "transferred_to": to}).to_string(),
        }
    }
}

/// An error result, in the one shape every tool failure has.
pub(crate) fn error_result(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

const DEFAULT_END_LINE: &str = "Thank you for calling. Goodbye.";

/// The session's tools.
pub(crate) struct ToolBox {
    declared: Vec<AgentTool>,
    specs: Vec<ToolSpec>,
    http: reqwest::Client,
    secrets: WebhookSecrets,
    line: Option<CarrierLine>,
    session_id: String,
    /// `--webhooks-allow-private`: webhooks may reach private addresses.
    allow_private: bool,
    /// Set to the target once a transfer went through at the carrier, whether or not its round
    /// was still waiting for it.
    transferred: Arc<watch::Sender<Option<String>>>,
}

impl ToolBox {
    pub(crate) fn new(
        declared: Vec<AgentTool>,
        secrets: WebhookSecrets,
        http: reqwest::Client,
        line: Option<CarrierLine>,
        session_id: &str,
        allow_private: bool,
    ) -> Self {
        let specs = declared.iter().map(spec_of).collect();
        let transferred = Arc::new(watch::Sender::new(None));
        Self { declared, specs, http, secrets, line, session_id: session_id.to_string(), allow_private, transferred }
    }

    /// Sees a transfer go through, even one whose round a barge-in dropped: once issued, a
    /// transfer completes at the carrier and the call has left the session.
    pub(crate) fn transferred(&self) -> watch::Receiver<Option<String>> {
        self.transferred.subscribe()
    }

    /// The tools as every LLM request of the call offers them.
    pub(crate) fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    /// The line said while `name` runs, if its declaration has one.
    pub(crate) fn filler(&self, name: &str) -> Option<&str> {
        self.declared.iter().find(|t| t.name == name).and_then(|t| t.filler.as_deref())
    }

    /// Runs one round's calls concurrently. Dropping the future cancels the webhooks still
    /// waiting (barge-in); a transfer already issued goes on (it runs on its own task).
    pub(crate) fn run(self: &Arc<Self>, calls: Vec<ToolCall>) -> BoxFuture<'static, Vec<Done>> {
        let this = self.clone();
        Box::pin(async move {
            join_all(calls.into_iter().map(|call| {
                let this = this.clone();
                async move {
                    let outcome = this.run_one(&call).await;
                    Done { call, outcome }
                }
            }))
            .await
        })
    }

    async fn run_one(self: Arc<Self>, call: &ToolCall) -> Outcome {
        let Some(tool) = self.declared.iter().find(|t| t.name == call.name) else {
            return Outcome::Result(error_result(&format!("there is no tool named {:?}", call.name)));
        };
        let args = match serde_json::from_str::<serde_json::Value>(&call.arguments) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(_) | Err(_) if call.arguments.trim().is_empty() => serde_json::json!({}),
            _ => return Outcome::Result(error_result("the arguments are not a JSON object")),
        };
        match &tool.run {
            ToolRun::Webhook(hook) => Outcome::Result(
                webhook::call(self.allow_private, hook, &self.secrets, &self.session_id, call, &args).await,
            ),
            ToolRun::EndCall { closing_line } => {
                Outcome::EndCall { closing_line: closing_line.clone().unwrap_or_else(|| DEFAULT_END_LINE.into()) }
            }
            ToolRun::TransferCall { to } => {
                builtin::transfer(self.line.clone(), &self.http, to, self.transferred.clone()).await
            }
            ToolRun::SendDtmf {} => builtin::send_dtmf(self.line.as_ref(), &self.http, &args).await,
        }
    }
}

/// A declaration as the model sees it; built-ins get their fixed parameters and a default
/// description.
fn spec_of(t: &AgentTool) -> ToolSpec {
    let (default_description, parameters) = match &t.run {
        ToolRun::Webhook(_) => ("", t.parameters.clone().unwrap_or_else(llm::empty_object_schema)),
        ToolRun::EndCall { .. } => ("End the call once the caller is done.", llm::empty_object_schema()),
        ToolRun::TransferCall { .. } => ("Transfer the caller to a person.", llm::empty_object_schema()),
        ToolRun::SendDtmf {} => ("Press keys on the phone line (DTMF).", builtin::dtmf_schema()),
    };
    let description = if t.description.is_empty() { default_description.to_string() } else { t.description.clone() };
    ToolSpec { name: t.name.clone(), description, parameters }
}
