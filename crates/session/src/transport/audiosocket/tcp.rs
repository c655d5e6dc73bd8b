//! The AudioSocket listener: one session per TCP connection. The UUID is read here, under a
//! short deadline, so port scans, health probes and stray HTTP are turned away before a session
//! (and its billing) exists; after that the socket's two halves become the runtime's
//! [`GatewayStream`] and [`GatewaySink`].

use super::{AudioSocketCodec, FrameError, FrameReader, ERROR_FRAME, HANGUP_FRAME, HEADER_LEN, KIND_HANGUP, KIND_UUID};
use crate::transport::{GatewaySink, GatewayStream};
use crate::{metrics as m, SessionDeps};
use axum::extract::ws::Message;
use bytes::Bytes;
use futures::Sink;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How long a refused connection is drained after our hang-up, so that closing with unread
/// input does not reset the connection before the peer reads why.
const DRAIN: Duration = Duration::from_secs(1);

/// What every AudioSocket call on one listener shares.
#[derive(Clone, Debug)]
pub struct ListenerConfig {
    /// The agent that answers: AudioSocket carries no parameters.
    pub agent: String,
    /// A connection that has not sent its UUID by then is refused.
    pub uuid_timeout: Duration,
    /// Each call's UUID must have been registered through the API first.
    pub require_registration: bool,
}

/// Accept AudioSocket connections until the task is dropped.
pub async fn serve(listener: TcpListener, deps: Arc<SessionDeps>, config: ListenerConfig) {
    let config = Arc::new(config);
    loop {
        match listener.accept().await {
            Ok((sock, peer)) => {
                tokio::spawn(connection(sock, peer, deps.clone(), config.clone()));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "audiosocket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Why a connection never became a session.
struct Refused {
    code: &'static str,
    message: String,
}

/// Read the first message: it must be the UUID. `Ok(None)` when the peer left without a word or
/// hung up first.
async fn handshake<R: AsyncRead + Unpin>(r: &mut FrameReader<R>, timeout: Duration) -> Result<Option<Bytes>, Refused> {
    let first = match tokio::time::timeout(timeout, r.next()).await {
        Err(_) => {
            let message = format!("no UUID within {} ms", timeout.as_millis());
            return Err(Refused { code: "uuid_timeout", message });
        }
        Ok(Err(e)) => return Err(Refused { code: e.code(), message: e.to_string() }),
        Ok(Ok(None)) => return Ok(None),
        Ok(Ok(Some(f))) => f,
    };
    // `read_frame` returns at least a header.
    match first.first().copied().unwrap_or(KIND_HANGUP) {
        KIND_UUID if first.len() == HEADER_LEN + 16 => Ok(Some(first)),
        KIND_UUID => Err(Refused { code: "bad_uuid", message: "a UUID is 16 bytes".into() }),
        KIND_HANGUP => Ok(None),
        kind => Err(Refused {
            code: "missing_uuid",
            message: format!("the first message must be the UUID (kind 0x01), not kind 0x{kind:02x}"),
        }),
    }
}

async fn connection(sock: TcpStream, peer: SocketAddr, deps: Arc<SessionDeps>, config: Arc<ListenerConfig>) {
    // 20 ms frames must not wait for Nagle.
    let _ = sock.set_nodelay(true);
    let (read, mut write) = sock.into_split();
    let mut read = FrameReader::new(BufReader::with_capacity(4 * 1024, read));
    let first = match handshake(&mut read, config.uuid_timeout).await {
        Ok(Some(f)) => f,
        Ok(None) => return,
        Err(r) => {
            tracing::warn!(gateway = "asterisk", %peer, code = r.code, "audiosocket connection refused: {}", r.message);
            metrics::counter!(m::GATEWAY_ERRORS, "gateway" => "asterisk", "code" => r.code).increment(1);
            let _ = write.write_all(&[ERROR_FRAME, HANGUP_FRAME].concat()).await;
            let _ = write.shutdown().await;
            let _ = tokio::time::timeout(DRAIN, tokio::io::copy(read.get_mut(), &mut tokio::io::sink())).await;
            return;
        }
    };
    let stream = frame_stream(read, first);
    let sink: GatewaySink = Box::pin(FrameSink::new(write));
    let codec = Box::new(AudioSocketCodec::new(&config.agent));
    let binding = crate::admission::ListenerBinding {
        agent: config.agent.clone(),
        require_registration: config.require_registration,
    };
    let up = crate::UpgradeAuth { listener: Some(binding), ..Default::default() };
    crate::runtime::run_gateway(sink, stream, codec, deps, up).await;
}

struct ReadState<R> {
    r: FrameReader<R>,
    first: Option<Bytes>,
    done: bool,
}

/// Each message as one binary [`Message`]. The peer closing between messages reads as a
/// hang-up, which the protocol makes equivalent; broken framing is an error, then the end.
fn frame_stream<R: AsyncRead + Unpin + Send + 'static>(r: FrameReader<R>, first: Bytes) -> GatewayStream {
    let state = ReadState { r, first: Some(first), done: false };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        if let Some(f) = st.first.take() {
            return Some((Ok(Message::Binary(f)), st));
        }
        let item = match st.r.next().await {
            Ok(Some(f)) => Ok(Message::Binary(f)),
            Ok(None) => {
                st.done = true;
                Ok(Message::Close(None))
            }
            Err(e) => {
                st.done = true;
                Err(axum::Error::new(FramingBroken(e)))
            }
        };
        Some((item, st))
    }))
}

/// Logged by the runtime as the gateway's socket error.
#[derive(Debug, thiserror::Error)]
#[error("audiosocket framing broken ({code}): {0}", code = .0.code())]
struct FramingBroken(FrameError);

/// Writes binary messages as they are (the encoder framed them); a close is our hang-up and a
/// half-close of the socket. Nothing is written after the hang-up. Errors are reported every
/// time, never by panicking, since the writer sends its close even to a dead socket.
struct FrameSink<W> {
    w: W,
    out: Vec<u8>,
    pos: usize,
    hung_up: bool,
    shut: bool,
}

impl<W> FrameSink<W> {
    fn new(w: W) -> Self {
        Self { w, out: Vec::with_capacity(1024), pos: 0, hung_up: false, shut: false }
    }
}

impl<W: AsyncWrite + Unpin> FrameSink<W> {
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.w).poll_write(cx, &self.out[self.pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.pos += n;
        }
        self.out.clear();
        self.pos = 0;
        ready!(Pin::new(&mut self.w).poll_flush(cx))?;
        if self.hung_up && !self.shut {
            ready!(Pin::new(&mut self.w).poll_shutdown(cx))?;
            self.shut = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> Sink<Message> for FrameSink<W> {
    type Error = axum::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_flush(cx)
    }

    fn start_send(self: Pin<&mut Self>, msg: Message) -> Result<(), Self::Error> {
        let this = self.get_mut();
        if this.hung_up {
            return Ok(());
        }
        match msg {
            Message::Binary(b) => this.out.extend_from_slice(&b),
            Message::Close(_) => {
                this.out.extend_from_slice(&HANGUP_FRAME);
                this.hung_up = true;
            }
            Message::Text(_) | Message::Ping(_) | Message::Pong(_) => {}
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().poll_write_out(cx).map_err(axum::Error::new)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx)).map_err(axum::Error::new)?;
        if !this.shut {
            ready!(Pin::new(&mut this.w).poll_shutdown(cx)).map_err(axum::Error::new)?;
            this.shut = true;
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{push_frame, KIND_SLIN};
    use super::*;
    use futures::{SinkExt, StreamExt};
    use tokio::io::AsyncReadExt;

    const UUID: [u8; 16] = [7; 16];

    async fn shake(bytes: &[u8], timeout_ms: u64) -> Result<Option<Bytes>, &'static str> {
        let (mut a, b) = tokio::io::duplex(1024);
        a.write_all(bytes).await.unwrap();
        let r = handshake(&mut FrameReader::new(b), Duration::from_millis(timeout_ms)).await.map_err(|r| r.code);
        drop(a);
        r
    }

    #[tokio::test]
    async fn the_uuid_comes_first_or_the_connection_is_refused() {
        let mut ok = Vec::new();
        push_frame(&mut ok, KIND_UUID, &UUID);
        assert_eq!(shake(&ok, 500).await.unwrap().map(|f| f.len()), Some(19));
        assert_eq!(shake(&HANGUP_FRAME, 500).await, Ok(None));
        assert_eq!(shake(b"", 50).await, Err("uuid_timeout"), "silence");
        assert_eq!(shake(b"GET / HTTP/1.1\r\n\r\n", 500).await, Err("unknown_kind"));
        let mut audio = Vec::new();
        push_frame(&mut audio, KIND_SLIN, &[0; 320]);
        assert_eq!(shake(&audio, 500).await, Err("missing_uuid"));
        let mut short = Vec::new();
        push_frame(&mut short, KIND_UUID, &UUID[..4]);
        assert_eq!(shake(&short, 500).await, Err("bad_uuid"));
        assert_eq!(shake(&[KIND_UUID, 0xff, 0xff], 500).await, Err("oversize"));
    }

    #[tokio::test]
    async fn stream_ends_with_a_hangup_or_an_error() {
        let mut wire = Vec::new();
        push_frame(&mut wire, KIND_SLIN, &[1; 320]);
        let first = Bytes::from_static(&[KIND_UUID, 0, 16, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]);
        let mut s = frame_stream(FrameReader::new(std::io::Cursor::new(wire.clone())), first.clone());
        assert!(matches!(s.next().await, Some(Ok(Message::Binary(b))) if b == first));
        assert!(matches!(s.next().await, Some(Ok(Message::Binary(b))) if b.len() == 323));
        assert!(matches!(s.next().await, Some(Ok(Message::Close(None)))), "socket closed = hang-up");
        assert!(s.next().await.is_none());

        wire.extend_from_slice(&[KIND_SLIN, 0xff, 0xff]);
        let mut s = frame_stream(FrameReader::new(std::io::Cursor::new(wire)), first);
        s.next().await;
        s.next().await;
        let Some(Err(e)) = s.next().await else { panic!("oversize is an error") };
        assert!(e.to_string().contains("oversize"), "{e}");
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn sink_writes_frames_then_hangs_up_once() {
        let (a, mut b) = tokio::io::duplex(4096);
        let mut sink = FrameSink::new(a);
        sink.send(Message::Binary(Bytes::from_static(&[KIND_SLIN, 0, 2, 1, 2]))).await.unwrap();
        sink.send(Message::Binary(Bytes::from_static(&ERROR_FRAME))).await.unwrap();
        sink.send(Message::Close(None)).await.unwrap();
        sink.send(Message::Binary(Bytes::from_static(&[KIND_SLIN, 0, 2, 1, 2]))).await.unwrap();
        sink.send(Message::Close(None)).await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, [KIND_SLIN, 0, 2, 1, 2, 0xff, 0, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn a_dead_socket_is_an_error_every_time_not_a_panic() {
        let (a, b) = tokio::io::duplex(64);
        drop(b);
        let mut sink = FrameSink::new(a);
        for _ in 0..3 {
            assert!(sink.send(Message::Binary(Bytes::from_static(&[KIND_SLIN, 0, 2, 1, 2]))).await.is_err());
        }
        let _ = sink.send(Message::Close(None)).await;
    }
}
