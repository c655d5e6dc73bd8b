//! The four carriers whose REST APIs Switchboard calls, by name.

use std::fmt;

/// A carrier with a REST API. Names are the lowercase ones used in config and the vault
/// (`twilio`, `telnyx`, `plivo`, `vonage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Carrier {
    Twilio,
    Telnyx,
    Plivo,
    Vonage,
}

impl Carrier {
    pub const ALL: [Carrier; 4] = [Carrier::Twilio, Carrier::Telnyx, Carrier::Plivo, Carrier::Vonage];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Twilio => "twilio",
            Self::Telnyx => "telnyx",
            Self::Plivo => "plivo",
            Self::Vonage => "vonage",
        }
    }

    /// The production API base; config or a test swaps in a simulator's URL instead.
    pub fn default_base(self) -> &'static str {
        match self {
            Self::Twilio => "https://api.twilio.com",
            Self::Telnyx => "https://api.telnyx.com",
            Self::Plivo => "https://api.plivo.com",
            Self::Vonage => "https://api.nexmo.com",
        }
    }
}

impl fmt::Display for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The production API base of the carrier named `carrier`, `None` for an unknown name.
pub fn default_base(carrier: &str) -> Option<&'static str> {
    Carrier::from_name(carrier).map(Carrier::default_base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bases_parse() {
        for c in Carrier::ALL {
            assert_eq!(Carrier::from_name(c.as_str()), Some(c));
            assert!(url::Url::parse(c.default_base()).is_ok());
        }
        assert_eq!(default_base("vonage"), Some("https://api.nexmo.com"));
        assert_eq!(default_base("Twilio"), None);
    }
}
