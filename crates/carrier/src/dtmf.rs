//! Sending DTMF tones into a live call (an IVR on the far side of a transfer, a PIN prompt),
//! through the carrier's REST API.
//!
//! We accept `0-9 * # A-D`, `w` (pause 0.5 s) and `W` (pause 1 s), 1 to 64 characters. What
//! each carrier makes of them:
//!
//! | carrier | sent as | source |
//! |---|---|---|
//! | Telnyx | as is: `0-9 A-D * #`, `w` 0.5 s, `W` 1 s | developers.telnyx.com/api-reference/call-commands/send-dtmf |
//! | Plivo | as is | `w`/`W` are Plivo's 0.5 s / 1 s waits in `send_digits` of Make a Call (plivo.com/docs/voice/api/call/make-a-call); the DTMF API page says only "digits": `A-D`, `w`, `W` there UNVERIFIED |
//! | Vonage | `w` → `p`, `W` → `pp`; `A-D` refused | vonage-python-sdk `vonage_utils.types.Dtmf` = `^[0-9#*p]+$`, `p` a 500 ms pause |
//! | Twilio | not sent: [`CarrierError::Unsupported`] | see below |
//!
//! Twilio has no DTMF endpoint. Its only REST way is a call update with `<Play digits>` TwiML,
//! which replaces the call's TwiML and so ends the `<Connect><Stream>` the session runs on.
//! Digits for a Twilio call would have to be played in-band, as audio on the media stream.

use crate::{plivo, telnyx, vonage, Carrier, CarrierError, Credentials};
use url::Url;

/// Telnyx's example (`1www2WABCDw9`) is 12; 64 leaves room for a PIN and pauses.
const MAX_DIGITS: usize = 64;

/// Sends `digits` into `call_id` (as for [`crate::hang_up`]) at `base`. Digits are checked
/// before any request ([`CarrierError::InvalidRequest`] `"DTMF digits"`); an ended call gives
/// [`CarrierError::CallEnded`], Twilio [`CarrierError::Unsupported`].
pub async fn send_dtmf(
    http: &reqwest::Client,
    base: &Url,
    creds: &Credentials,
    call_id: &str,
    digits: &str,
) -> Result<(), CarrierError> {
    check(digits)?;
    match creds {
        Credentials::Twilio { .. } => {
            Err(CarrierError::Unsupported { carrier: Carrier::Twilio, operation: "send DTMF" })
        }
        Credentials::Telnyx { api_key, .. } => telnyx::send_dtmf(http, base, api_key, call_id, digits).await,
        Credentials::Plivo { auth_id, auth_token } => {
            plivo::send_dtmf(http, base, auth_id, auth_token, call_id, digits).await
        }
        Credentials::Vonage { application_id, private_key, .. } => {
            let digits = for_vonage(digits)?;
            vonage::send_dtmf(http, base, application_id, private_key, call_id, &digits).await
        }
    }
}

fn check(digits: &str) -> Result<(), CarrierError> {
    let allowed = |b: u8| b.is_ascii_digit() || matches!(b, b'*' | b'#' | b'A'..=b'D' | b'w' | b'W');
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.bytes().all(allowed) {
        return Err(CarrierError::InvalidRequest("DTMF digits"));
    }
    Ok(())
}

/// Vonage's alphabet: pauses become `p` (500 ms each), `A-D` have no Vonage form.
fn for_vonage(digits: &str) -> Result<String, CarrierError> {
    let mut out = String::with_capacity(digits.len() * 2);
    for c in digits.chars() {
        match c {
            'w' => out.push('p'),
            'W' => out.push_str("pp"),
            'A'..='D' => return Err(CarrierError::InvalidRequest("DTMF digits")),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_checked_and_translated_for_vonage() {
        for ok in ["1", "1234#", "*9w1W2", "ABCD", &"9".repeat(64)] {
            assert!(check(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "12 3", "a", "E", "1,2", "p", "１", &"9".repeat(65)] {
            assert_eq!(check(bad).unwrap_err().to_string(), "invalid DTMF digits", "{bad:?}");
        }
        assert_eq!(for_vonage("1w2W#*").unwrap(), "1p2pp#*");
        assert!(for_vonage("1A").is_err());
    }
}
