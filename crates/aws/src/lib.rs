//! The AWS plumbing shared by the Transcribe, Polly and Bedrock adapters and their simulators.
//! Signature Version 4 ([`Signer`]) signs HTTPS requests in the `Authorization`-header form and
//! websocket upgrades in the presigned-URL form, and [`verify`] is the same algorithm run the
//! other way so a simulator refuses a wrong key or a tampered request with AWS's own 403
//! (`UnrecognizedClientException` / `InvalidSignatureException`). [`eventstream`] is the
//! CRC-checked binary framing AWS streams use in both directions. The provider key is one string,
//! `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]` ([`Credentials`], whose `Debug` never shows
//! a secret), and the region comes from the endpoint host ([`region_from_url`], with a `?region=`
//! / `us-east-1` fallback for simulator URLs). HMAC, SHA-256 and CRC32 come from RustCrypto and
//! `crc32fast`; only the protocol logic lives here, checked against AWS's published vectors.

mod credentials;
pub mod eventstream;
pub mod sigv4;
mod time;
pub mod verify;

pub use credentials::{region_from_host, region_from_url, Credentials, CredentialsError, DEFAULT_REGION};
pub use sigv4::{sha256_hex, SignedHeaders, Signer, EMPTY_PAYLOAD_SHA256};
pub use time::AmzDate;
pub use verify::{verify, AuthError, IncomingRequest, Verified};
