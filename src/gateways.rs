//! The gateways, one row each: the table the router (media websockets and answer webhooks, with
//! their OpenAPI operations), `switchboard call --gateway` (values, help, caller, answering a
//! number) and the README's gateway table are driven from. Adding a gateway is its codec module
//! (`session::transport`), its caller module (`src/call/`) and one row here; a carrier with an
//! answer webhook adds its handler (`src/answer.rs`) to the row.

use crate::api::AppState;
use crate::call::{self, CallerWire};
use session::transport::{ClientCodec, PlivoCodec, TelnyxCodec, TwilioCodec, VonageCodec, WireCodec};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

/// A route and its OpenAPI operation, made on demand (`routes!` builds a value, not a constant).
pub type Route = fn() -> UtoipaMethodRouter<AppState>;

/// How a gateway's media reaches the server.
#[derive(Clone, Copy)]
pub enum Media {
    /// A websocket at `path`, decoded with `codec` (the operation is built by `api_media`).
    Websocket {
        path: &'static str,
        summary: &'static str,
        description: &'static str,
        codec: fn() -> Box<dyn WireCodec>,
    },
    /// Asterisk AudioSocket: raw TCP on `serve --audiosocket-listen`.
    AudioSocket,
}

/// One gateway.
#[derive(Clone, Copy)]
pub struct Gateway {
    /// The `--gateway` value, the codec's `gateway()` name and the carrier's credential name.
    pub name: &'static str,
    /// The `--gateway` help line.
    pub help: &'static str,
    pub media: Media,
    /// The carrier's answer webhooks; a gateway with one is a carrier (numbers, stream tokens,
    /// credentials, REST hang-ups).
    pub answer: &'static [Route],
    /// `switchboard call`'s side of the wire, calling an agent.
    pub caller: fn(&str) -> Box<dyn CallerWire>,
    /// `switchboard call --number`: post the carrier's signed answer webhook.
    pub answer_call: Option<call::AnswerCall>,
}

/// Every gateway, in the order `--help` and the README list them.
pub static GATEWAYS: [Gateway; 6] = [
    Gateway {
        name: "twilio",
        help: "Twilio Media Streams: µ-law 8 kHz, JSON frames; watched over SSE",
        media: Media::Websocket {
            path: "/twilio/stream",
            summary: "Twilio Media Streams websocket",
            description: "Bidirectional Media Streams: connected/start/media/dtmf/mark/stop in; media/mark/clear out. Custom parameter `agent` picks the agent.",
            codec: || Box::new(TwilioCodec::new()),
        },
        answer: &[|| routes!(crate::answer::twilio_voice)],
        caller: |agent| Box::new(call::twilio::Twilio::new(agent)),
        answer_call: Some(|w| Box::pin(call::twilio::answer(w))),
    },
    Gateway {
        name: "client",
        help: "Switchboard's own client protocol: PCM16 16 kHz, events in-band",
        media: Media::Websocket {
            path: "/v1/client",
            summary: "Client websocket for browsers and apps",
            description: "See docs/client-protocol.md.",
            codec: || Box::new(ClientCodec::new()),
        },
        answer: &[],
        caller: |agent| Box::new(call::client::Client::new(agent)),
        answer_call: None,
    },
    Gateway {
        name: "telnyx",
        help: "Telnyx Media Streaming (bidirectional RTP): PCMU 8 kHz; watched over SSE",
        media: Media::Websocket {
            path: "/telnyx/stream",
            summary: "Telnyx media streaming websocket",
            description: "PCMU/PCMA 8 kHz or L16; start.media_format decides.",
            codec: || Box::new(TelnyxCodec::new()),
        },
        answer: &[|| routes!(crate::answer::telnyx_texml), || routes!(crate::answer::telnyx_call_control)],
        caller: |agent| Box::new(call::telnyx::Telnyx::new(agent)),
        answer_call: Some(|w| Box::pin(call::telnyx::answer(w))),
    },
    Gateway {
        name: "plivo",
        help: "Plivo Audio Streams: audio/x-mulaw 8 kHz; watched over SSE",
        media: Media::Websocket {
            path: "/plivo/stream",
            summary: "Plivo audio stream websocket",
            description: "playAudio/checkpoint/clearAudio out.",
            codec: || Box::new(PlivoCodec::new()),
        },
        answer: &[|| routes!(crate::answer::plivo_answer), || routes!(crate::answer::plivo_transfer_xml)],
        caller: |agent| Box::new(call::plivo::Plivo::new(agent)),
        answer_call: Some(|w| Box::pin(call::plivo::answer(w))),
    },
    Gateway {
        name: "vonage",
        help: "Vonage websocket: binary audio/l16 16 kHz; watched over SSE",
        media: Media::Websocket {
            path: "/vonage/stream",
            summary: "Vonage voice websocket",
            description: "websocket:connected header then binary L16 frames.",
            codec: || Box::new(VonageCodec::new()),
        },
        answer: &[|| routes!(crate::answer::vonage_answer)],
        caller: |agent| Box::new(call::vonage::Vonage::new(agent)),
        answer_call: Some(|w| Box::pin(call::vonage::answer(w))),
    },
    Gateway {
        name: "asterisk",
        help: "Asterisk AudioSocket: raw TCP to `--audiosocket`, slin 8 kHz; the agent is the server's `--audiosocket-agent`; watched over SSE",
        media: Media::AudioSocket,
        answer: &[],
        // AudioSocket carries no agent: the server's `--audiosocket-agent` answers.
        caller: |_agent| Box::new(call::asterisk::Asterisk::new()),
        answer_call: None,
    },
];

impl Gateway {
    /// A carrier: it has an answer webhook, so numbers, stream tokens and hang-ups apply.
    pub fn is_carrier(&self) -> bool {
        !self.answer.is_empty()
    }
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Gateway {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// The `--gateway` values and their help are the rows.
impl clap::ValueEnum for Gateway {
    fn value_variants<'a>() -> &'a [Self] {
        &GATEWAYS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name).help(self.help))
    }
}

/// The carriers' names: the gateways with an answer webhook.
pub fn carriers() -> impl Iterator<Item = &'static str> {
    GATEWAYS.iter().filter(|g| g.is_carrier()).map(|g| g.name)
}

/// Whether `name` is a carrier's.
pub fn is_carrier(name: &str) -> bool {
    carriers().any(|c| c == name)
}

/// Every gateway's routes, media websocket and answer webhooks, with their operations.
pub fn routes() -> impl Iterator<Item = UtoipaMethodRouter<AppState>> {
    GATEWAYS.iter().flat_map(|g| {
        let media = crate::api_media::route(g);
        media.into_iter().chain(g.answer.iter().map(|r| r()))
    })
}

/// `api` with every gateway's routes added.
pub fn add_routes(api: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    routes().fold(api, |api, route| api.routes(route))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row's name is its codec's: the frames and error metrics are labelled with it.
    #[test]
    fn each_codec_names_its_row() {
        for g in &GATEWAYS {
            if let Media::Websocket { codec, .. } = g.media {
                assert_eq!(codec().gateway(), g.name);
            }
        }
    }

    /// The README's gateway table is this one: a row per gateway, in order, named by its
    /// `--gateway` value, listing every route the gateway has.
    #[test]
    fn the_readme_lists_exactly_the_registered_gateways() {
        let readme = include_str!("../README.md");
        let section = &readme[readme.find("### Gateways").expect("a Gateways section")..];
        let rows: Vec<&str> = section.lines().skip(2).take_while(|l| l.starts_with('|')).skip(2).collect();
        let names: Vec<&str> = rows.iter().filter_map(|r| r.split('`').nth(1)).collect();
        let registered: Vec<&str> = GATEWAYS.iter().map(|g| g.name).collect();
        assert_eq!(names, registered, "README's gateway table (first column `name`) is not the registry");
        for (row, g) in rows.iter().zip(&GATEWAYS) {
            let mut routes: Vec<String> = Vec::new();
            for (_, paths, _) in crate::api_media::route(g).into_iter().chain(g.answer.iter().map(|r| r())) {
                for (path, item) in paths.paths {
                    let method = if item.get.is_some() { "GET" } else { "POST" };
                    routes.push(format!("`{method} {path}`"));
                }
            }
            if matches!(g.media, Media::AudioSocket) {
                routes.push("`--audiosocket-listen`".into());
            }
            for r in routes {
                assert!(row.contains(&r), "README's {} row does not list {r}", g.name);
            }
        }
    }

    #[test]
    fn carriers_are_the_gateways_with_an_answer_webhook() {
        assert_eq!(carriers().collect::<Vec<_>>(), ["twilio", "telnyx", "plivo", "vonage"]);
        assert!(is_carrier("plivo") && !is_carrier("client") && !is_carrier("asterisk"));
    }
}
