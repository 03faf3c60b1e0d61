//! The response body: whole bytes, or an object's bytes streamed from its file in chunks.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, ReadBuf};

/// How much of a file one frame carries.
const CHUNK: usize = 256 * 1024;

/// The body of every response of [`crate::S3::handle`]. An object's bytes
/// are read from its file as the client takes them, so a large GetObject
/// never sits in memory.
#[derive(Debug)]
pub struct S3Body(Inner);

#[derive(Debug)]
enum Inner {
    Full(Option<Bytes>),
    File {
        file: tokio::fs::File,
        remaining: u64,
        /// Where the body starts in the file, and its length: the range
        /// whose cached pages are dropped once it was all sent.
        range: (u64, u64),
    },
}

/// A body at least this long leaves the page cache once it was all read:
/// large objects are read in one pass (MinIO bypasses the cache for them
/// altogether), and kept cached they would crowd out the shards' logs and
/// make every later write land in memory the kernel had not used yet
/// (see `store::release_cached_pages`).
const RELEASE_AFTER_READ_MIN: u64 = 8 * 1024 * 1024;

impl S3Body {
    /// An empty body.
    pub fn empty() -> Self {
        Self(Inner::Full(None))
    }

    /// A body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self(Inner::Full((!bytes.is_empty()).then_some(bytes)))
    }

    /// `len` bytes of `file` from `start`, its current position.
    pub(crate) fn file(file: std::fs::File, start: u64, len: u64) -> Self {
        Self(Inner::File {
            file: tokio::fs::File::from_std(file),
            remaining: len,
            range: (start, len),
        })
    }

    /// Reads the whole body into memory (for in-process callers and tests).
    pub async fn collect(self) -> io::Result<Bytes> {
        match self.0 {
            Inner::Full(bytes) => Ok(bytes.unwrap_or_default()),
            Inner::File {
                mut file,
                remaining,
                ..
            } => {
                use tokio::io::AsyncReadExt;
                let mut buf = Vec::with_capacity(usize::try_from(remaining).unwrap_or(0));
                (&mut file).take(remaining).read_to_end(&mut buf).await?;
                if (buf.len() as u64) < remaining {
                    return Err(truncated());
                }
                Ok(buf.into())
            }
        }
    }
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "object file is shorter than its header says",
    )
}

impl http_body::Body for S3Body {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match &mut self.get_mut().0 {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::File {
                file,
                remaining,
                range,
            } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let want = usize::try_from(*remaining).unwrap_or(CHUNK).min(CHUNK);
                let mut buf = BytesMut::zeroed(want);
                let mut read_buf = ReadBuf::new(&mut buf);
                ready!(Pin::new(&mut *file).poll_read(cx, &mut read_buf))?;
                let n = read_buf.filled().len();
                if n == 0 {
                    return Poll::Ready(Some(Err(truncated())));
                }
                *remaining -= n as u64;
                if *remaining == 0 && range.1 >= RELEASE_AFTER_READ_MIN {
                    use std::os::fd::AsRawFd;
                    crate::store::release_cached_range(file.as_raw_fd(), range.0, range.1);
                }
                buf.truncate(n);
                Poll::Ready(Some(Ok(Frame::data(buf.freeze()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(bytes) => bytes.is_none(),
            Inner::File { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::File { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}
