//! The `<Response><Dial>…</Dial></Response>` documents of a transfer: TwiML for Twilio (sent in
//! the call update) and Plivo XML (served by Switchboard at the `aleg_url` Plivo fetches). The two
//! dialects differ only in the SIP noun: Twilio `<Sip>` (twilio.com/docs/voice/twiml/sip),
//! Plivo `<User>` (plivo.com/docs/voice/xml/dial/user). Both take `callerId` on `<Dial>`
//! (twilio.com/docs/voice/twiml/dial, plivo.com/docs/voice/xml/dial) and a `+E.164` `<Number>`
//! (Plivo's own XML overview dials `<Number>+14155551234</Number>`).

use crate::{PhoneNumber, Target};

/// Plivo XML that dials `target` (with `caller_id` as the number shown to the callee, else the
/// caller's own): what the URL given as [`crate::PlivoXml`] must answer, with
/// `Content-Type: application/xml`.
pub fn plivo_dial_xml(target: &Target, caller_id: Option<&PhoneNumber>) -> String {
    dial(target, caller_id, "User")
}

/// The TwiML a Twilio transfer sends as the call's new `Twiml`.
pub(crate) fn twilio_dial_twiml(target: &Target, caller_id: Option<&PhoneNumber>) -> String {
    dial(target, caller_id, "Sip")
}

fn dial(target: &Target, caller_id: Option<&PhoneNumber>, sip_noun: &str) -> String {
    let noun = match target {
        Target::Phone(_) => "Number",
        Target::Sip(_) => sip_noun,
    };
    let caller = caller_id.map(|c| format!(" callerId=\"{}\"", escape(c.as_str()))).unwrap_or_default();
    let to = escape(target.as_str());
    format!("<Response><Dial{caller}><{noun}>{to}</{noun}></Dial></Response>")
}

/// Escapes the five XML specials, so the result is safe as element text and as a quoted
/// attribute value. [`Target`] already refuses quotes and angle brackets; `&` is what remains.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_dialect_and_escapes() {
        let phone = Target::parse("+14155550100").unwrap();
        let caller = PhoneNumber::parse("+14155550199").unwrap();
        assert_eq!(
            twilio_dial_twiml(&phone, Some(&caller)),
            r#"<Response><Dial callerId="+14155550199"><Number>+14155550100</Number></Dial></Response>"#
        );
        let sip = Target::parse("sip:desk@pbx.example.com?X-Ref=1&X-Team=2").unwrap();
        assert_eq!(
            twilio_dial_twiml(&sip, None),
            "<Response><Dial><Sip>sip:desk@pbx.example.com?X-Ref=1&amp;X-Team=2</Sip></Dial></Response>"
        );
        assert_eq!(
            plivo_dial_xml(&sip, None),
            "<Response><Dial><User>sip:desk@pbx.example.com?X-Ref=1&amp;X-Team=2</User></Dial></Response>"
        );
        assert_eq!(plivo_dial_xml(&phone, None), "<Response><Dial><Number>+14155550100</Number></Dial></Response>");
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;");
    }
}
