//! What every test against the carrier simulator shares: one simulator with one account per
//! carrier, credentials good and wrong, and call ids of each carrier's shape.
#![allow(dead_code)] // each test binary uses its own subset

use carrier::Credentials;
use carrier_sim::{RunningCarrierSim, SimAccounts};
use serde_json::json;

pub const PRIVATE: &str = include_str!("../../testdata/vonage-app.key");
pub const PUBLIC: &str = include_str!("../../testdata/vonage-app.pub");
pub const OTHER_PRIVATE: &str = include_str!("../../testdata/vonage-other.key");

pub const TWILIO_SID: &str = "AC00000000000000000000000000000001";
pub const TWILIO_TOKEN: &str = "twilio-token-1234";
pub const TELNYX_KEY: &str = "KEY-telnyx-5678";
pub const PLIVO_ID: &str = "MAXXXXXXXXXXXXXXXXXX";
pub const PLIVO_TOKEN: &str = "plivo-token-9012";
pub const VONAGE_APP: &str = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab";
pub const WRONG: &str = "wrong-secret-4242";

pub async fn sim() -> RunningCarrierSim {
    let accounts = SimAccounts::default()
        .twilio(TWILIO_SID, TWILIO_TOKEN)
        .telnyx(TELNYX_KEY)
        .plivo(PLIVO_ID, PLIVO_TOKEN)
        .vonage(VONAGE_APP, PUBLIC);
    carrier_sim::start(accounts).await.unwrap()
}

pub fn creds(carrier: &str, secret: &str) -> Credentials {
    let json = match carrier {
        "twilio" => json!({"accountSid": TWILIO_SID, "authToken": secret}),
        "telnyx" => json!({"publicKey": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "apiKey": secret}),
        "plivo" => json!({"authId": PLIVO_ID, "authToken": secret}),
        _ => json!({"applicationId": VONAGE_APP, "privateKey": secret, "signatureSecret": "sig"}),
    };
    Credentials::parse(carrier, &json.to_string()).unwrap()
}

/// One good credential and one wrong one per carrier, with a call id of that carrier's shape.
pub fn cases() -> [(&'static str, Credentials, Credentials, &'static str); 4] {
    [
        ("twilio", creds("twilio", TWILIO_TOKEN), creds("twilio", WRONG), "CA0123456789abcdef0123456789abcdef"),
        ("telnyx", creds("telnyx", TELNYX_KEY), creds("telnyx", WRONG), "v3:u5OAKGEPT3Dx8SZSSDRWEMdNH2OripQhO"),
        ("plivo", creds("plivo", PLIVO_TOKEN), creds("plivo", WRONG), "9f3c6a3e-3b0b-4a0e-8c54-2f1f5c3d7e11"),
        ("vonage", creds("vonage", PRIVATE), creds("vonage", OTHER_PRIVATE), "63f61863-4a51-4f6b-86e1-46edebcf9356"),
    ]
}
