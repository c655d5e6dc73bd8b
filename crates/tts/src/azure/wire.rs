//! Synthesis messages (protocols/aws-azure.md Z2.2): speech.config, synthesis.context, SSML, and
//! the `response` body that names the audio stream. Shared with the simulator.

use quick_xml::escape::escape;
use serde::Deserialize;

/// Output rates offered as `raw-…-16bit-mono-pcm` (headerless, streamable linear16).
pub const SAMPLE_RATES: [u32; 6] = [8000, 16000, 22050, 24000, 44100, 48000];

/// The `X-Microsoft-OutputFormat` / `outputFormat` name for linear16 mono at `rate`.
pub fn output_format(rate: u32) -> Option<&'static str> {
    Some(match rate {
        8000 => "raw-8khz-16bit-mono-pcm",
        16000 => "raw-16khz-16bit-mono-pcm",
        22050 => "raw-22050hz-16bit-mono-pcm",
        24000 => "raw-24khz-16bit-mono-pcm",
        44100 => "raw-44100hz-16bit-mono-pcm",
        48000 => "raw-48khz-16bit-mono-pcm",
        _ => return None,
    })
}

/// The inverse of [`output_format`], for the simulator.
pub fn output_rate(format: &str) -> Option<u32> {
    SAMPLE_RATES.into_iter().find(|&r| output_format(r) == Some(format))
}

/// `speech.config`, once per connection, as the SDK's synthesizer sends it.
pub fn speech_config() -> String {
    serde_json::json!({"context": {
        "system": {"name": "SpeechSDK", "version": "1.44.0", "build": "JavaScript", "lang": "JavaScript"},
        "os": {"platform": "Linux", "name": "switchboard", "version": env!("CARGO_PKG_VERSION")},
    }})
    .to_string()
}

/// `synthesis.context`, before each SSML request: output format and which metadata to send.
pub fn synthesis_context(format: &str) -> String {
    serde_json::json!({"synthesis": {
        "audio": {
            "metadataOptions": {
                "bookmarkEnabled": false, "punctuationBoundaryEnabled": false, "sentenceBoundaryEnabled": false,
                "sessionEndEnabled": true, "visemeEnabled": false, "wordBoundaryEnabled": false,
            },
            "outputFormat": format,
        },
        "language": {"autoDetection": false},
    }})
    .to_string()
}

/// What the simulator reads from a `synthesis.context`.
#[derive(Debug, Deserialize)]
pub struct SynthesisContext {
    pub synthesis: SynthesisSection,
}

#[derive(Debug, Deserialize)]
pub struct SynthesisSection {
    pub audio: AudioSection,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioSection {
    pub output_format: String,
    #[serde(default)]
    pub metadata_options: MetadataOptions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MetadataOptions {
    pub session_end_enabled: bool,
}

/// The `response` message: audio frames of this turn carry `X-StreamId: {streamId}`.
#[derive(Debug, Deserialize)]
pub struct Response {
    pub audio: ResponseAudio,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseAudio {
    pub stream_id: String,
}

/// One utterance as SSML; the voice's locale (`en-US-AvaMultilingualNeural` → `en-US`) is the
/// document language.
pub fn ssml(voice: &str, text: &str) -> String {
    let lang = locale(voice);
    let mut out = String::with_capacity(text.len() + voice.len() + 200);
    out.push_str(r#"<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xmlns:mstts="http://www.w3.org/2001/mstts" xml:lang=""#);
    out.push_str(&escape(&lang));
    out.push_str(r#""><voice name=""#);
    out.push_str(&escape(voice));
    out.push_str(r#"">"#);
    out.push_str(&escape(text));
    out.push_str("</voice></speak>");
    out
}

fn locale(voice: &str) -> String {
    let mut parts = voice.splitn(3, '-');
    match (parts.next(), parts.next()) {
        (Some(lang), Some(region))
            if (2..=3).contains(&lang.len()) && region.len() == 2 && lang.chars().all(|c| c.is_ascii_alphabetic()) =>
        {
            format!("{lang}-{region}")
        }
        _ => "en-US".to_string(),
    }
}

/// The simulator's view of an SSML document: the voice name and the text it speaks (markup
/// removed, entities decoded). `None` when there is no `<speak>` root or no named voice.
pub fn parse_ssml(doc: &str) -> Option<(String, String)> {
    if !doc.trim_start().starts_with("<speak") {
        return None;
    }
    let voice_tag = doc.find("<voice")?;
    let rest = doc.get(voice_tag..)?;
    let name_at = rest.find("name=")? + 5;
    let quote = rest.get(name_at..)?.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let name_start = name_at + 1;
    let name_len = rest.get(name_start..)?.find(quote)?;
    let name = unescape(rest.get(name_start..name_start + name_len)?);
    if name.trim().is_empty() {
        return None;
    }
    let inner_start = rest.find('>')? + 1;
    let inner_end = rest.rfind("</voice>")?;
    let inner = rest.get(inner_start..inner_end)?;
    let mut text = String::with_capacity(inner.len());
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    Some((name, unescape(&text)))
}

/// The text with XML's entities decoded; a stray `&` is kept as it is.
fn unescape(s: &str) -> String {
    quick_xml::escape::unescape(s).map_or_else(|_| s.to_string(), |t| t.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssml_escapes_text_and_round_trips() {
        let doc = ssml("en-US-AvaMultilingualNeural", "Fish & <chips> \"now\"");
        assert_eq!(
            doc,
            r#"<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xmlns:mstts="http://www.w3.org/2001/mstts" xml:lang="en-US"><voice name="en-US-AvaMultilingualNeural">Fish &amp; &lt;chips&gt; &quot;now&quot;</voice></speak>"#
        );
        assert_eq!(parse_ssml(&doc), Some(("en-US-AvaMultilingualNeural".into(), "Fish & <chips> \"now\"".into())));
        assert!(ssml("de-DE-KatjaNeural", "x").contains(r#"xml:lang="de-DE""#));
        assert!(ssml("custom", "x").contains(r#"xml:lang="en-US""#));
        let prosody = r#"<speak version="1.0"><voice name='v'><prosody rate="+5%">Hi there.</prosody></voice></speak>"#;
        assert_eq!(parse_ssml(prosody), Some(("v".into(), "Hi there.".into())));
        assert_eq!(parse_ssml("<speak><voice>hi</voice></speak>"), None);
        assert_eq!(parse_ssml("hello"), None);
    }

    #[test]
    fn formats_map_both_ways() {
        for rate in SAMPLE_RATES {
            assert_eq!(output_rate(output_format(rate).unwrap()), Some(rate));
        }
        assert_eq!(output_format(11025), None);
        assert_eq!(output_rate("audio-24khz-48kbitrate-mono-mp3"), None);
        let ctx: SynthesisContext = serde_json::from_str(&synthesis_context("raw-24khz-16bit-mono-pcm")).unwrap();
        assert_eq!(ctx.synthesis.audio.output_format, "raw-24khz-16bit-mono-pcm");
        assert!(ctx.synthesis.audio.metadata_options.session_end_enabled);
    }
}
