//! The agent's turn: the LLM request, the chunker, the TTS stream and the writer's progress.

use super::*;

impl TurnManager {
    pub(super) fn start_agent_turn(&mut self, user_text: String) {
        self.conversation.push(Message::new(Role::User, user_text.clone()));
        let id = self.next_turn;
        self.next_turn += 1;
        let mut messages = Vec::with_capacity(self.conversation.len() + 1);
        messages.push(Message::new(Role::System, self.plan.prompt.clone()));
        messages.extend(self.conversation.iter().cloned());
        let input_chars = messages.iter().map(tools::message_chars).sum();
        let messages = Arc::new(messages);
        let llm_start = self.llm_start(messages.clone());
        if let Some(t) = self.last_final_at {
            metrics::histogram!(m::HOP, "hop" => "stt_final_to_llm_request").record(t.elapsed().as_secs_f64());
        }
        let tts_connect = self.tts_connect();
        let span = OutcomeSpan::turn(&self.span, id, "reply");
        let llm_span = OutcomeSpan::provider(span.span(), Service::Llm, &self.llm_plan);
        let tts_span = OutcomeSpan::provider(span.span(), Service::Tts, &self.tts_plan);
        self.agent = Some(AgentTurn {
            id,
            llm_span: Some(llm_span),
            tts_span: Some(tts_span),
            span,
            user_text,
            llm_start: Some(llm_start),
            llm_rx: None,
            tts_connect: Some(tts_connect),
            tts_tx: None,
            tts_rx: None,
            pending: Vec::new(),
            chunker: Chunker::new(),
            text: String::new(),
            aligned: Vec::new(),
            audio_ms: 0,
            llm_done: false,
            tts_done: false,
            llm_usage_seen: false,
            audio_started: false,
            input_chars,
            llm_requested_at: Instant::now(),
            messages,
            skip: String::new(),
            tts_sent: String::new(),
            first_token_at: None,
            first_text_at: None,
            first_audio_at: None,
            llm_deadline: Some(Instant::now() + self.steps.llm_first_token),
            tts_deadline: Some(Instant::now() + self.steps.tts_connect),
            tool: Default::default(),
        });
    }

    /// Ask the current LLM for a reply, as a future polled in the main loop.
    pub(super) fn llm_start(
        &self,
        messages: Arc<Vec<Message>>,
    ) -> BoxFuture<'static, Result<mpsc::Receiver<LlmEvent>, LlmError>> {
        let llm = self.llm.clone();
        let plan = self.llm_plan.clone();
        let toolbox = self.tools.clone();
        Box::pin(async move {
            let specs = toolbox.as_ref().map_or(&[][..], |t| t.specs());
            llm.stream(LlmRequest {
                base_url: &plan.base_url,
                key: &plan.credential.key,
                model: &plan.model,
                messages: &messages,
                max_tokens: Some(400),
                tools: llm::Tools { specs, ..Default::default() },
            })
            .await
        })
    }

    pub(super) fn on_llm_started(&mut self, r: Result<mpsc::Receiver<LlmEvent>, LlmError>) {
        let Some(a) = self.agent.as_mut() else { return };
        a.llm_start = None;
        match r {
            Ok(rx) => a.llm_rx = Some(rx),
            Err(e) => {
                // Refused before any token: nothing to bill for the failed provider.
                a.llm_usage_seen = true;
                a.llm_deadline = None;
                self.llm_failed(e.code(), e.to_string());
            }
        }
    }

    pub(super) fn on_llm(&mut self, ev: Option<LlmEvent>) {
        let Some(a) = self.agent.as_mut() else { return };
        match ev {
            Some(LlmEvent::Token(t)) => {
                a.llm_deadline = Some(Instant::now() + self.steps.llm_stall);
                if a.first_token_at.is_none() {
                    a.first_token_at = Some(Instant::now());
                    metrics::histogram!(m::TIME_TO_FIRST, "service" => Service::Llm.as_str(), "provider" => self.plan.llm.provider.clone())
                        .record(a.llm_requested_at.elapsed().as_secs_f64());
                }
                let t = if a.skip.is_empty() {
                    t
                } else if let Some(rest) = a.skip.strip_prefix(t.as_str()) {
                    // The fallback repeats what was already spoken.
                    a.skip = rest.to_string();
                    return;
                } else {
                    a.skip.clear();
                    t
                };
                a.text.push_str(&t);
                for chunk in a.chunker.push(&t) {
                    self.speak(chunk);
                }
            }
            Some(LlmEvent::ToolCall(call)) => self.on_tool_call(call),
            Some(LlmEvent::Usage { input_tokens, output_tokens, estimated }) => {
                a.llm_usage_seen = true;
                if let Some(span) = &a.llm_span {
                    span.tokens(input_tokens, output_tokens);
                }
                self.meter.add(LineId::LlmIn, input_tokens, estimated);
                self.meter.add(LineId::LlmOut, output_tokens, estimated);
            }
            Some(LlmEvent::Error(e)) => {
                a.llm_deadline = None;
                self.llm_failed(e.code(), e.to_string());
            }
            Some(LlmEvent::Done { .. }) | None => self.llm_finished(),
        }
    }

    /// The reply is complete: speak what is left and tell TTS to finish.
    pub(super) fn llm_finished(&mut self) {
        let Some(a) = self.agent.as_mut() else { return };
        if a.llm_done {
            return;
        }
        self.bill_llm_round();
        if self.start_tool_round() {
            return;
        }
        let Some(a) = self.agent.as_mut() else { return };
        a.llm_done = true;
        a.llm_rx = None;
        a.llm_deadline = None;
        if let Some(rest) = a.chunker.finish() {
            self.speak(rest);
        }
        self.tts_send(TtsInput::Flush);
        self.tts_send(TtsInput::Close);
        if let Some(a) = self.agent.as_mut() {
            if a.text.trim().is_empty() {
                // Nothing to say: the turn ends here.
                let turn = a.id;
                let _ = self.writer.try_send(WriterCmd::EndOfTurn { turn });
            }
        }
    }

    /// The LLM round ended: bill it by estimate if the provider sent no usage, end its span, and
    /// price its tokens as their own usage records (a turn with tool rounds has several); they
    /// are written with the next checkpoint.
    fn bill_llm_round(&mut self) {
        self.estimate_llm_round();
        self.meter.checkpoint_service(Service::Llm, now_ms());
    }

    fn estimate_llm_round(&mut self) {
        let Some(a) = self.agent.as_mut() else { return };
        if !a.llm_usage_seen {
            a.llm_usage_seen = true;
            let (i, o) =
                (estimate_tokens(a.input_chars), estimate_tokens(a.text.len().saturating_sub(a.tool.text_start())));
            if let Some(span) = &a.llm_span {
                span.tokens(i, o);
            }
            self.meter.add(LineId::LlmIn, i, true);
            self.meter.add(LineId::LlmOut, o, true);
        }
        trace::end(&mut a.llm_span, "ok");
    }

    pub(super) fn speak(&mut self, chunk: String) {
        let Some(a) = self.agent.as_mut() else { return };
        if a.first_text_at.is_none() {
            a.first_text_at = Some(Instant::now());
            if let Some(t) = a.first_token_at {
                metrics::histogram!(m::HOP, "hop" => "llm_first_token_to_tts_text").record(t.elapsed().as_secs_f64());
            }
        }
        let turn = a.id;
        self.publish(SessionEvent::Agent { text: chunk.clone(), turn });
        self.tts_send(TtsInput::Text(chunk));
    }

    /// Send to TTS, or queue until it is connected. Characters are metered as they are sent.
    pub(super) fn tts_send(&mut self, input: TtsInput) {
        let Some(a) = self.agent.as_mut() else { return };
        let Some(tx) = a.tts_tx.as_ref() else {
            a.pending.push(input);
            return;
        };
        let chars = match &input {
            TtsInput::Text(t) => t.chars().count() as u64,
            _ => 0,
        };
        if let TtsInput::Text(t) = &input {
            a.tts_sent.push_str(t);
            // Text is waiting to be voiced: audio is due.
            if a.tts_deadline.is_none() {
                a.tts_deadline = Some(Instant::now() + self.steps.tts_first_audio);
            }
        }
        match tx.try_send(input) {
            Ok(()) => self.meter.add(LineId::Tts, chars, false),
            Err(e) => tracing::warn!(error = %e, "tts input queue full; text dropped"),
        }
    }

    pub(super) fn on_tts_connected(&mut self, r: Result<TtsStream, TtsError>) {
        let Some(a) = self.agent.as_mut() else { return };
        a.tts_connect = None;
        match r {
            Ok(stream) => {
                a.tts_tx = Some(stream.text);
                a.tts_rx = Some(stream.events);
                a.tts_deadline = None;
                for input in std::mem::take(&mut a.pending) {
                    self.tts_send(input);
                }
            }
            Err(e) => {
                a.tts_deadline = None;
                self.tts_failed(e.code(), e.to_string());
            }
        }
    }

    pub(super) fn on_tts(&mut self, ev: Option<TtsEvent>) {
        let Some(a) = self.agent.as_mut() else { return };
        match ev {
            Some(TtsEvent::Audio { pcm, alignment }) => {
                // More audio is due while the reply is still being voiced; while the LLM is
                // still writing, TTS may rightly wait for text (the next text re-arms it).
                a.tts_deadline = a.llm_done.then(|| Instant::now() + self.steps.tts_stall);
                if a.first_audio_at.is_none() {
                    a.first_audio_at = Some(Instant::now());
                    if let Some(t) = a.first_text_at {
                        metrics::histogram!(m::TIME_TO_FIRST, "service" => Service::Tts.as_str(), "provider" => self.plan.tts.provider.clone())
                            .record(t.elapsed().as_secs_f64());
                    }
                }
                if let Some(al) = alignment {
                    for (i, c) in al.chars.iter().enumerate() {
                        a.aligned.push((*c, al.start_ms.get(i).copied().unwrap_or(0)));
                    }
                }
                if media::l16::decode_le_into(&pcm, &mut self.pcm).is_err() {
                    tracing::warn!("tts sent an odd number of PCM bytes; chunk dropped");
                    return;
                }
                a.audio_ms += self.pcm.len() as u64 * 1000 / u64::from(self.tts_rate.max(1));
                self.out.clear();
                if let Err(e) = self.resampler.process(&self.pcm, &mut self.out) {
                    tracing::warn!(error = %e, "resampling tts audio failed");
                    return;
                }
                a.audio_started = true;
                let samples = self.out.clone();
                if self.writer.try_send(WriterCmd::Audio { turn: a.id, samples }).is_err() {
                    metrics::counter!(m::FRAMES_DROPPED, "queue" => "gateway_out").increment(1);
                }
            }
            Some(TtsEvent::Done) | None => {
                if !a.tts_done {
                    a.tts_done = true;
                    trace::end(&mut a.tts_span, "ok");
                    a.tts_rx = None;
                    a.tts_tx = None;
                    a.tts_deadline = None;
                    let turn = a.id;
                    let _ = self.writer.try_send(WriterCmd::EndOfTurn { turn });
                }
            }
            Some(TtsEvent::Usage { .. }) => {}
            Some(TtsEvent::Error(e)) => {
                a.tts_deadline = None;
                self.tts_failed(e.code(), e.to_string());
            }
        }
    }

    pub(super) fn on_writer(&mut self, ev: WriterEvent) {
        match ev {
            WriterEvent::FirstFrame { turn } => {
                if let Some(a) = self.agent.as_ref().filter(|a| a.id == turn) {
                    if let Some(t) = a.first_audio_at {
                        metrics::histogram!(m::HOP, "hop" => "tts_first_audio_to_gateway")
                            .record(t.elapsed().as_secs_f64());
                    }
                }
            }
            WriterEvent::PlaybackDone { turn, played_ms } => {
                tracing::debug!(turn, played_ms, "agent turn played out");
                if self.closing == Some(turn) {
                    if let Some(a) = self.agent.as_mut() {
                        a.span.end("played");
                    }
                    self.hang_up = true;
                    return;
                }
                let done = self.agent.as_ref().is_some_and(|a| a.id == turn && a.llm_done && a.tts_done);
                if done {
                    if let Some(mut a) = self.agent.take() {
                        a.span.end("played");
                        self.keep_exchange(&mut a);
                        let last_round = a.text.get(a.tool.text_start()..).unwrap_or_default().trim();
                        if !last_round.is_empty() {
                            self.conversation.push(Message::assistant(last_round));
                        }
                        self.publish(SessionEvent::AgentDone { text: a.text, turn });
                    }
                    self.maybe_end_user_turn();
                }
            }
        }
    }

    /// Open the session's TTS stream with the plan's key, as a future polled in the main loop.
    pub(super) fn tts_connect(&self) -> BoxFuture<'static, Result<TtsStream, TtsError>> {
        let tts = self.tts.clone();
        let plan = self.tts_plan.clone();
        let rate = self.tts_rate;
        Box::pin(async move {
            tts.connect(TtsRequest {
                base_url: &plan.base_url,
                key: &plan.credential.key,
                model: &plan.model,
                voice: &plan.voice,
                sample_rate: rate,
            })
            .await
        })
    }
}
