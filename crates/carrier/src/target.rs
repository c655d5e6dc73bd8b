//! Where a call can be transferred: a phone number or a SIP URI, validated once so every carrier
//! module can put it into TwiML, Plivo XML, JSON or an NCCO without checking it again.
//!
//! The text comes from a model's tool call, so the rules are strict: a value that is not plainly
//! a number or a SIP URI is refused before any request is made.

use crate::CarrierError;
use std::fmt;

/// Longest SIP URI we send. Twilio's whole `Twiml` parameter is capped at 4,000 characters and
/// Vonage's `AddressSip` at 50 (Nexmo/api-specification `definitions/voice.yml`; that cap is
/// left to Vonage to enforce, its 400 comes back as [`CarrierError::Rejected`]).
const MAX_SIP_URI: usize = 256;

/// An E.164 number: `+`, then 8 to 15 digits, the first not `0` (country codes never start
/// with 0; Vonage's SDK checks the same, `^[1-9]\d{6,14}$` without the `+`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(text: &str) -> Result<Self, CarrierError> {
        let digits = text.strip_prefix('+').unwrap_or_default();
        let plain = digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if !(8..=15).contains(&digits.len()) || !plain {
            return Err(CarrierError::InvalidRequest("phone number"));
        }
        Ok(Self(text.to_string()))
    }

    /// With the `+` (Twilio, Telnyx, Plivo).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Without the `+` (Vonage's `AddressE164` is `\d{7,15}`).
    pub fn digits(&self) -> &str {
        self.0.get(1..).unwrap_or_default()
    }
}

/// A `sip:` or `sips:` URI (lowercase scheme) of printable ASCII with a host part. Whitespace,
/// quotes, backslashes and angle brackets are refused: the URI goes into XML text and
/// attributes and into JSON, and none of them belongs in a SIP URI unescaped (RFC 3261 §25.1
/// has them percent-encoded). `&` is allowed (URI headers, `?a=b&c=d`) and XML-escaped on use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipUri(String);

impl SipUri {
    pub fn parse(text: &str) -> Result<Self, CarrierError> {
        let invalid = CarrierError::InvalidRequest("SIP URI");
        let rest = text.strip_prefix("sip:").or_else(|| text.strip_prefix("sips:")).ok_or(invalid)?;
        let allowed = |b: u8| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'<' | b'>' | b'\\' | b'`');
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        if text.len() > MAX_SIP_URI || !text.bytes().all(allowed) || host.is_empty() || host.starts_with(':') {
            return Err(CarrierError::InvalidRequest("SIP URI"));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The party a call is transferred to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Phone(PhoneNumber),
    Sip(SipUri),
}

impl Target {
    /// `+…` is a phone number, `sip:`/`sips:` a SIP URI; anything else is refused with
    /// [`CarrierError::InvalidRequest`] (`"transfer target"`).
    pub fn parse(text: &str) -> Result<Self, CarrierError> {
        let parsed = if text.starts_with('+') {
            PhoneNumber::parse(text).map(Self::Phone)
        } else {
            SipUri::parse(text).map(Self::Sip)
        };
        parsed.map_err(|_| CarrierError::InvalidRequest("transfer target"))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Phone(p) => p.as_str(),
            Self::Sip(s) => s.as_str(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_plus_and_8_to_15_digits() {
        for ok in ["+14155550100", "+12345678", "+123456789012345"] {
            assert_eq!(PhoneNumber::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(PhoneNumber::parse("+14155550100").unwrap().digits(), "14155550100");
        for bad in
            ["14155550100", "+1234567", "+1234567890123456", "+04155550100", "+1 415 555 0100", "+1415555010a", "+"]
        {
            assert_eq!(PhoneNumber::parse(bad).unwrap_err().code(), "carrier_invalid_request", "{bad:?}");
        }
    }

    #[test]
    fn sip_uris_need_a_scheme_a_host_and_no_markup() {
        for ok in ["sip:alice@example.com", "sips:desk@pbx.example.com:5061", "sip:pbx.example.com", "sip:a@b?x=1&y=2"]
        {
            assert_eq!(SipUri::parse(ok).unwrap().as_str(), ok);
        }
        let long = format!("sip:{}@example.com", "a".repeat(250));
        for bad in [
            "alice@example.com",
            "SIP:alice@example.com",
            "sip:",
            "sip:alice@",
            "sip:alice@:5060",
            "sip:al ice@example.com",
            "sip:alice@example.com\n",
            "sip:\"x\"@example.com",
            "sip:<alice@example.com>",
            "sip:a'b@example.com",
            "sip:alicé@example.com",
            "tel:+14155550100",
            long.as_str(),
        ] {
            assert!(SipUri::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn targets_pick_their_kind() {
        assert!(matches!(Target::parse("+14155550100"), Ok(Target::Phone(_))));
        assert!(matches!(Target::parse("sip:a@b.example"), Ok(Target::Sip(_))));
        let err = Target::parse("555-0100").unwrap_err();
        assert_eq!(err.to_string(), "invalid transfer target");
        assert_eq!(Target::parse("+1415").unwrap_err().to_string(), "invalid transfer target");
    }
}
