//! The provider that hangs: a listener that accepts every connection and reads what it is
//! sent, but never answers — no HTTP response, no websocket handshake. It stands in for a
//! simulator (same base URL shape, another port) to test that every wait on a provider has a
//! deadline.

use crate::RunningSim;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// A hanging stand-in for a simulator; stops (and drops its connections) on drop.
pub struct Stalled {
    base: url::Url,
    stop: CancellationToken,
}

impl Drop for Stalled {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RunningSim for Stalled {
    fn base_url(&self) -> url::Url {
        self.base.clone()
    }

    fn seen_keys(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A hanging stand-in for `real`: its base URL with the port of a listener that never answers.
pub async fn stall_like(real: &dyn RunningSim) -> std::io::Result<Stalled> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let mut base = real.base_url();
    base.set_port(Some(port)).map_err(|()| std::io::Error::other("simulator URL has no port"))?;
    let stop = CancellationToken::new();
    tokio::spawn(crate::accept_loop(listener, "stalled", stop.clone(), |mut stream, stop| async move {
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                n = stream.read(&mut buf) => if !matches!(n, Ok(n) if n > 0) { return },
            }
        }
    }));
    Ok(Stalled { base, stop })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    struct Fake(url::Url);
    impl RunningSim for Fake {
        fn base_url(&self) -> url::Url {
            self.0.clone()
        }
        fn seen_keys(&self) -> Vec<String> {
            Vec::new()
        }
    }

    #[tokio::test]
    async fn accepts_and_never_answers() {
        let real = Fake(url::Url::parse("http://127.0.0.1:1/v1").unwrap());
        let s = stall_like(&real).await.unwrap();
        assert_eq!(s.base_url().path(), "/v1");
        let addr = format!("127.0.0.1:{}", s.base_url().port().unwrap());
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut b = [0u8; 16];
        let r = tokio::time::timeout(std::time::Duration::from_millis(300), c.read(&mut b)).await;
        assert!(r.is_err(), "no answer at all");
    }
}
