//! The blob port over an R2 bucket: `blobs/<sha256>` for content, `pending/<id>` for uploads
//! that have not been committed yet.

use async_trait::async_trait;
use bytes::Bytes;
use cloudos_core::ports::{BlobEntry, BlobError, BlobPage, BlobStore, BlobUpload, ByteStream};
use futures_util::StreamExt;
use worker::send::{SendFuture, SendWrapper};
use worker::{Bucket, FixedLengthStream, MultipartUpload, Range, UploadedPart};

/// Bytes gathered before one multipart part is sent (R2 wants ≥ 5 MiB per part but the last).
const PART_BYTES: usize = 8 * 1024 * 1024;

/// Content-addressed blobs in R2.
pub struct R2Blobs {
    bucket: SendWrapper<Bucket>,
    ids: std::sync::Arc<dyn cloudos_core::ports::Ids>,
}

impl R2Blobs {
    /// Blobs in `bucket`; pending upload names come from `ids`.
    pub fn new(bucket: Bucket, ids: std::sync::Arc<dyn cloudos_core::ports::Ids>) -> Self {
        R2Blobs {
            bucket: SendWrapper::new(bucket),
            ids,
        }
    }
}

fn io(e: worker::Error) -> BlobError {
    BlobError::Io(e.to_string())
}

fn content_key(key: &str) -> String {
    format!("blobs/{key}")
}

#[async_trait]
impl BlobStore for R2Blobs {
    async fn begin(&self) -> Result<Box<dyn BlobUpload>, BlobError> {
        Ok(Box::new(R2Upload {
            bucket: self.bucket.clone(),
            pending: format!("pending/{}", self.ids.new_id()),
            buffer: Vec::new(),
            multipart: None,
            parts: Vec::new(),
            size: 0,
        }))
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream, BlobError> {
        let bucket = self.bucket.clone();
        let key = content_key(key);
        let body = SendFuture::new(async move {
            let mut get = bucket.get(key);
            if let Some((offset, length)) = range {
                get = get.range(Range::OffsetWithLength { offset, length });
            }
            let object = get
                .execute()
                .await
                .map_err(io)?
                .ok_or(BlobError::NotFound)?;
            object
                .body()
                .ok_or(BlobError::NotFound)?
                .stream()
                .map_err(io)
        })
        .await?;
        // The JS stream is not Send; each poll happens on the Worker's one thread anyway.
        let stream = futures_util::stream::unfold(SendWrapper::new(body), |mut body| {
            SendFuture::new(async move {
                let item = body.next().await?;
                Some((item.map(Bytes::from).map_err(io), body))
            })
        });
        Ok(Box::pin(stream))
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        let bucket = self.bucket.clone();
        let key = content_key(key);
        SendFuture::new(async move { Ok(bucket.head(key).await.map_err(io)?.is_some()) }).await
    }

    async fn delete(&self, key: &str, pending: bool) -> Result<(), BlobError> {
        let bucket = self.bucket.clone();
        let key = if pending {
            format!("pending/{key}")
        } else {
            content_key(key)
        };
        SendFuture::new(async move { bucket.delete(key).await.map_err(io) }).await
    }

    async fn list_page(
        &self,
        pending: bool,
        cursor: Option<String>,
    ) -> Result<BlobPage, BlobError> {
        let bucket = self.bucket.clone();
        let prefix = if pending { "pending/" } else { "blobs/" };
        SendFuture::new(async move {
            let mut list = bucket.list().prefix(prefix);
            if let Some(c) = cursor {
                list = list.cursor(c);
            }
            let page = list.execute().await.map_err(io)?;
            let entries = page
                .objects()
                .iter()
                .map(|o| BlobEntry {
                    key: o.key().trim_start_matches(prefix).to_owned(),
                    modified_ms: o.uploaded().as_millis() as i64,
                    pending,
                })
                .collect();
            let next = if page.truncated() {
                page.cursor()
            } else {
                None
            };
            Ok(BlobPage { entries, next })
        })
        .await
    }
}

/// An upload: small ones are buffered and written once at commit; larger ones go to
/// `pending/<id>` as a multipart upload and are copied to their content key at commit
/// (R2 has no rename).
struct R2Upload {
    bucket: SendWrapper<Bucket>,
    pending: String,
    buffer: Vec<u8>,
    multipart: Option<SendWrapper<MultipartUpload>>,
    parts: Vec<SendWrapper<UploadedPart>>,
    size: u64,
}

impl R2Upload {
    async fn send_part(&mut self) -> Result<(), BlobError> {
        let chunk = std::mem::take(&mut self.buffer);
        let bucket = self.bucket.clone();
        let pending = self.pending.clone();
        let number = self.parts.len() as u16 + 1;
        let existing = self.multipart.take();
        let (upload, part) = SendFuture::new(async move {
            let upload = match existing {
                Some(u) => u,
                None => SendWrapper::new(
                    bucket
                        .create_multipart_upload(pending)
                        .execute()
                        .await
                        .map_err(io)?,
                ),
            };
            let part = upload.upload_part(number, chunk).await.map_err(io)?;
            Ok::<_, BlobError>((upload, SendWrapper::new(part)))
        })
        .await?;
        self.multipart = Some(upload);
        self.parts.push(part);
        Ok(())
    }
}

#[async_trait]
impl BlobUpload for R2Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        self.size += chunk.len() as u64;
        self.buffer.extend_from_slice(&chunk);
        if self.buffer.len() >= PART_BYTES {
            self.send_part().await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, key: &str) -> Result<(), BlobError> {
        let target = content_key(key);
        if self.multipart.is_none() {
            let bucket = self.bucket.clone();
            let bytes = std::mem::take(&mut self.buffer);
            // Writing equal bytes again also marks an existing blob fresh for the sweep.
            return SendFuture::new(async move {
                bucket.put(target, bytes).execute().await.map_err(io)?;
                Ok(())
            })
            .await;
        }
        if !self.buffer.is_empty() {
            self.send_part().await?;
        }
        let R2Upload {
            bucket,
            pending,
            multipart,
            parts,
            size,
            ..
        } = *self;
        SendFuture::new(async move {
            let upload = multipart
                .map(|u| u.0)
                .ok_or_else(|| BlobError::Io("multipart upload missing".into()))?;
            upload
                .complete(parts.into_iter().map(|p| p.0))
                .await
                .map_err(io)?;
            let object = bucket
                .get(pending.clone())
                .execute()
                .await
                .map_err(io)?
                .ok_or(BlobError::NotFound)?;
            let body = object
                .body()
                .ok_or(BlobError::NotFound)?
                .stream()
                .map_err(io)?;
            bucket
                .put(target, FixedLengthStream::wrap(body, size))
                .execute()
                .await
                .map_err(io)?;
            bucket.delete(pending).await.map_err(io)
        })
        .await
    }

    async fn abort(self: Box<Self>) -> Result<(), BlobError> {
        let R2Upload {
            bucket,
            pending,
            multipart,
            ..
        } = *self;
        SendFuture::new(async move {
            if let Some(upload) = multipart {
                upload.abort().await.map_err(io)?;
            }
            bucket.delete(pending).await.map_err(io)
        })
        .await
    }
}
