//! Reads the one XML document a transfer carries: `<Response><Dial [callerId="…"]><Noun>target
//! </Noun></Dial></Response>`, TwiML (`Number`/`Sip`) or Plivo XML (`Number`/`User`). Strict on
//! purpose: anything else, or text that is not well-formed (a bare `&`, a `<`), is refused, so
//! an escaping mistake in the client shows up as a refused transfer.

use carrier::Target;

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Dial {
    pub(super) target: String,
    pub(super) caller_id: Option<String>,
}

/// `sip_noun` is `Sip` (Twilio) or `User` (Plivo).
pub(super) fn parse(xml: &str, sip_noun: &str) -> Option<Dial> {
    let rest = xml.trim().strip_prefix("<Response><Dial")?;
    let (attrs, rest) = rest.split_once('>')?;
    let caller_id = match attrs.trim() {
        "" => None,
        attr => Some(unescape(attr.strip_prefix("callerId=\"")?.strip_suffix('"')?)?),
    };
    let (noun, rest) = rest.strip_prefix('<')?.split_once('>')?;
    let (text, rest) = rest.split_once("</")?;
    if rest != format!("{noun}></Dial></Response>") {
        return None;
    }
    let target = unescape(text)?;
    let kind_ok = match Target::parse(&target).ok()? {
        Target::Phone(_) => noun == "Number",
        Target::Sip(_) => noun == sip_noun,
    };
    kind_ok.then_some(Dial { target, caller_id })
}

/// Resolves XML's entities; `None` on a bare `&`, `<` or `"` (an escaping mistake of the client).
fn unescape(text: &str) -> Option<String> {
    if text.contains(['<', '"']) {
        return None;
    }
    quick_xml::escape::unescape(text).ok().map(std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_dialects_and_refuses_the_rest() {
        let twiml = r#"<Response><Dial callerId="+14155550199"><Number>+14155550100</Number></Dial></Response>"#;
        let want = Dial { target: "+14155550100".into(), caller_id: Some("+14155550199".into()) };
        assert_eq!(parse(twiml, "Sip"), Some(want));
        let sip = "<Response><Dial><Sip>sip:a@b.example?x=1&amp;y=2</Sip></Dial></Response>";
        assert_eq!(parse(sip, "Sip").unwrap().target, "sip:a@b.example?x=1&y=2");
        assert_eq!(parse(sip, "User"), None, "Plivo dials SIP with <User>");
        for bad in [
            "<Response><Dial><Sip>sip:a@b.example?x=1&y=2</Sip></Dial></Response>",
            "<Response><Dial><Number>+14155550100</Number></Dial></Response><Hangup/>",
            "<Response><Say>hi</Say></Response>",
            "<Response><Dial><Number>4155550100</Number></Dial></Response>",
            "<Response><Dial><Number>+14155550100</Sip></Dial></Response>",
            "<Response><Dial timeout=\"5\"><Number>+14155550100</Number></Dial></Response>",
        ] {
            assert_eq!(parse(bad, "Sip"), None, "{bad}");
        }
    }
}
