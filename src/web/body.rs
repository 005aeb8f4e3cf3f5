//! Reading a request body chunk by chunk, never all at once: a body that
//! stops arriving is given up on, one past the size cap is refused, and a
//! body refused before it was read is still drained (within limits) so the
//! client gets its answer page rather than a reset connection.

use std::time::{Duration, Instant};

use axum::body::{Body, BodyDataStream, Bytes};
use futures_util::StreamExt;

use crate::web::error::AppError;

/// The whole body may not exceed this (uploads included); what a proxy's
/// `client_max_body_size` would be.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// How much of a body that is not kept (too large, or refused before it
/// was needed) is read and thrown away, and for how long.
const DRAIN_LIMIT_BYTES: usize = 64 * 1024 * 1024;
const DRAIN_LIMIT_TIME: Duration = Duration::from_secs(30);
/// A body that sends nothing for this long is given up on (408). A slow
/// body that keeps moving is read to its end, however long it takes.
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Why a body could not be read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the body stopped arriving")]
    Stalled,
    #[error("the connection broke in the body")]
    Broken,
}

impl From<BodyError> for AppError {
    fn from(e: BodyError) -> AppError {
        match e {
            BodyError::TooLarge => AppError::PayloadTooLarge,
            BodyError::Stalled => AppError::RequestTimeout,
            BodyError::Broken => AppError::BadRequest("Запрос оборвался на середине.".into()),
        }
    }
}

/// The most [`BodyReader::chunk`] hands over at once (the connection may
/// deliver a few hundred kilobytes in one piece).
pub const MAX_CHUNK: usize = 64 * 1024;

/// A body being read, at most [`MAX_BODY_BYTES`] of it.
pub struct BodyReader {
    stream: BodyDataStream,
    /// What is left of the last piece the connection delivered.
    rest: Bytes,
    read: usize,
    /// Why reading stopped early, kept for the answer (the multipart
    /// parser sees only that its stream failed).
    failure: Option<BodyError>,
}

impl BodyReader {
    pub fn new(body: Body) -> BodyReader {
        BodyReader {
            stream: body.into_data_stream(),
            rest: Bytes::new(),
            read: 0,
            failure: None,
        }
    }

    /// The next chunk (at most [`MAX_CHUNK`] bytes), `None` at the end;
    /// after a failure, the failure again.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        if let Some(failure) = self.failure {
            return Err(failure);
        }
        if self.rest.is_empty() {
            match self.next_piece().await? {
                Some(piece) => self.rest = piece,
                None => return Ok(None),
            }
        }
        let take = self.rest.len().min(MAX_CHUNK);
        Ok(Some(self.rest.split_to(take)))
    }

    async fn next_piece(&mut self) -> Result<Option<Bytes>, BodyError> {
        let next = match tokio::time::timeout(STALL_LIMIT, self.stream.next()).await {
            Err(_) => Err(BodyError::Stalled),
            Ok(None) => Ok(None),
            Ok(Some(Err(_))) => Err(BodyError::Broken),
            Ok(Some(Ok(chunk))) => {
                self.read += chunk.len();
                if self.read > MAX_BODY_BYTES {
                    Err(BodyError::TooLarge)
                } else {
                    Ok(Some(chunk))
                }
            }
        };
        self.failure = next.as_ref().err().copied();
        next
    }

    /// Why reading failed, if it did.
    pub fn failure(&self) -> Option<BodyError> {
        self.failure
    }

    /// Reads what is left and keeps nothing of it: at most
    /// [`DRAIN_LIMIT_BYTES`] in all, for at most [`DRAIN_LIMIT_TIME`], and
    /// not at all once the body stalled or broke.
    pub async fn drain(mut self) {
        if matches!(self.failure, Some(BodyError::Stalled | BodyError::Broken)) {
            return;
        }
        let since = Instant::now();
        while self.read <= DRAIN_LIMIT_BYTES && since.elapsed() <= DRAIN_LIMIT_TIME {
            match tokio::time::timeout(STALL_LIMIT, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.read += chunk.len(),
                _ => return,
            }
        }
    }
}

/// A body refused before it was needed: drained and forgotten.
pub async fn discard(body: Body) {
    BodyReader::new(body).drain().await
}
