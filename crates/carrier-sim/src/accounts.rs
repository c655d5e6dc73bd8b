//! The credentials a simulator accepts, built up one account at a time.

use std::fmt;

/// Accepted accounts. Vonage apps are registered with their *public* key, as in the Vonage
/// dashboard: the simulator verifies JWTs and never holds the private key.
#[derive(Clone, Default)]
pub struct SimAccounts {
    pub(super) twilio: Vec<(String, String)>,
    pub(super) telnyx: Vec<String>,
    pub(super) plivo: Vec<(String, String)>,
    pub(super) vonage: Vec<(String, String)>,
}

impl SimAccounts {
    pub fn twilio(mut self, account_sid: impl Into<String>, auth_token: impl Into<String>) -> Self {
        self.twilio.push((account_sid.into(), auth_token.into()));
        self
    }

    pub fn telnyx(mut self, api_key: impl Into<String>) -> Self {
        self.telnyx.push(api_key.into());
        self
    }

    pub fn plivo(mut self, auth_id: impl Into<String>, auth_token: impl Into<String>) -> Self {
        self.plivo.push((auth_id.into(), auth_token.into()));
        self
    }

    /// `public_key_pem` is SPKI (`-----BEGIN PUBLIC KEY-----`).
    pub fn vonage(mut self, application_id: impl Into<String>, public_key_pem: impl Into<String>) -> Self {
        self.vonage.push((application_id.into(), public_key_pem.into()));
        self
    }

    pub(super) fn twilio_ok(&self, sid: &str, token: &str) -> bool {
        self.twilio.iter().any(|(s, t)| s == sid && t == token)
    }

    pub(super) fn telnyx_ok(&self, key: &str) -> bool {
        self.telnyx.iter().any(|k| k == key)
    }

    pub(super) fn plivo_ok(&self, id: &str, token: &str) -> bool {
        self.plivo.iter().any(|(i, t)| i == id && t == token)
    }

    pub(super) fn vonage_public_key(&self, application_id: &str) -> Option<&str> {
        self.vonage.iter().find(|(a, _)| a == application_id).map(|(_, pem)| pem.as_str())
    }
}

impl fmt::Debug for SimAccounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SimAccounts(twilio: {}, telnyx: {}, plivo: {}, vonage: {})",
            self.twilio.len(),
            self.telnyx.len(),
            self.plivo.len(),
            self.vonage.len()
        )
    }
}
