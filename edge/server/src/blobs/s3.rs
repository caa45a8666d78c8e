//! Blobs in any S3 API (AWS, R2's S3 endpoint, MinIO, s3s-fs): `blobs/<sha256>` objects;
//! uploads go to `pending/<id>` (multipart past one part) and are copied into place.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use cloudos_core::ports::{BlobEntry, BlobError, BlobPage, BlobStore, BlobUpload, ByteStream};
use futures_util::StreamExt;

use super::{io, valid_key};

const BLOBS: &str = "blobs/";
const PENDING: &str = "pending/";
/// Part size of multipart uploads (S3's minimum is 5 MiB); also the most one upload buffers.
const PART: usize = 8 * 1024 * 1024;

/// Where the S3 API is and how to sign for it.
#[derive(Clone)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Blobs in one bucket.
#[derive(Clone)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
}

impl S3Blobs {
    /// A client for the bucket (path-style, so local S3 servers work).
    pub fn new(s: &S3Settings) -> Self {
        let mut conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(s.region.clone()))
            .credentials_provider(Credentials::new(
                &s.access_key,
                &s.secret_key,
                None,
                None,
                "cloudos",
            ))
            .force_path_style(true);
        if let Some(endpoint) = &s.endpoint {
            conf = conf.endpoint_url(endpoint);
        }
        S3Blobs {
            client: Client::from_conf(conf.build()),
            bucket: s.bucket.clone(),
        }
    }

    /// Creates the bucket when it does not exist yet.
    pub async fn ensure_bucket(&self) -> Result<(), BlobError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| io(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    /// Discards a multipart upload's parts.
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), BlobError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    /// One page (up to 1,000 keys) under `prefix`; the cursor is S3's continuation token.
    async fn list_prefix(
        &self,
        prefix: &str,
        pending: bool,
        cursor: Option<String>,
    ) -> Result<BlobPage, BlobError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_continuation_token(cursor)
            .send()
            .await
            .map_err(err)?;
        let entries = page
            .contents()
            .iter()
            .filter_map(|obj| {
                let key = obj.key()?.strip_prefix(prefix)?;
                let modified_ms = obj
                    .last_modified()
                    .and_then(|t| t.to_millis().ok())
                    .unwrap_or(0);
                Some(BlobEntry {
                    key: key.to_owned(),
                    modified_ms,
                    pending,
                })
            })
            .collect();
        let next = page
            .is_truncated()
            .unwrap_or(false)
            .then(|| page.next_continuation_token().map(str::to_owned))
            .flatten();
        Ok(BlobPage { entries, next })
    }
}

fn err<E: std::error::Error + 'static>(e: aws_sdk_s3::error::SdkError<E>) -> BlobError {
    io(aws_sdk_s3::error::DisplayErrorContext(e))
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn begin(&self) -> Result<Box<dyn BlobUpload>, BlobError> {
        Ok(Box::new(S3Upload {
            store: self.clone(),
            key: format!("{PENDING}{}", uuid::Uuid::now_v7().simple()),
            buf: BytesMut::new(),
            multipart: None,
            parts: Vec::new(),
            done: false,
        }))
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream, BlobError> {
        if !valid_key(key) {
            return Err(BlobError::NotFound);
        }
        let mut req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(format!("{BLOBS}{key}"));
        if let Some((offset, len)) = range {
            req = req.range(format!("bytes={}-{}", offset, offset + len - 1));
        }
        let out = req.send().await.map_err(|e| match e.as_service_error() {
            Some(s) if s.is_no_such_key() => BlobError::NotFound,
            _ => err(e),
        })?;
        let body = out.body;
        let stream = futures_util::stream::unfold(body, |mut body| async move {
            match body.next().await {
                Some(Ok(b)) => Some((Ok(b), body)),
                Some(Err(e)) => Some((Err(io(e)), body)),
                None => None,
            }
        });
        Ok(stream.boxed())
    }

    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        if !valid_key(key) {
            return Ok(false);
        }
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(format!("{BLOBS}{key}"))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(err(e)),
        }
    }

    async fn delete(&self, key: &str, pending: bool) -> Result<(), BlobError> {
        let full = if pending {
            format!("{PENDING}{key}")
        } else {
            format!("{BLOBS}{key}")
        };
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn list_page(
        &self,
        pending: bool,
        cursor: Option<String>,
    ) -> Result<BlobPage, BlobError> {
        let prefix = if pending { PENDING } else { BLOBS };
        self.list_prefix(prefix, pending, cursor).await
    }
}

struct S3Upload {
    store: S3Blobs,
    key: String,
    buf: BytesMut,
    multipart: Option<String>,
    parts: Vec<CompletedPart>,
    done: bool,
}

impl S3Upload {
    async fn flush_part(&mut self) -> Result<(), BlobError> {
        let s = &self.store;
        let upload_id = match &self.multipart {
            Some(id) => id.clone(),
            None => {
                let out = s
                    .client
                    .create_multipart_upload()
                    .bucket(&s.bucket)
                    .key(&self.key)
                    .send()
                    .await
                    .map_err(err)?;
                let id = out
                    .upload_id()
                    .ok_or_else(|| io("no upload id"))?
                    .to_owned();
                self.multipart = Some(id.clone());
                id
            }
        };
        let number = self.parts.len() as i32 + 1;
        let body: Bytes = self.buf.split().freeze();
        let out = s
            .client
            .upload_part()
            .bucket(&s.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .part_number(number)
            .body(S3Body::from(body))
            .send()
            .await
            .map_err(err)?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }
}

#[async_trait]
impl BlobUpload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        self.buf.extend_from_slice(&chunk);
        if self.buf.len() >= PART {
            self.flush_part().await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>, key: &str) -> Result<(), BlobError> {
        if !valid_key(key) {
            return Err(io("commit key is not a SHA-256"));
        }
        let target = format!("{BLOBS}{key}");
        let s = self.store.clone();
        if self.multipart.is_none() {
            // Small blob: one PUT straight to its final key (same bytes, same key).
            let body = self.buf.split().freeze();
            s.client
                .put_object()
                .bucket(&s.bucket)
                .key(&target)
                .body(S3Body::from(body))
                .send()
                .await
                .map_err(err)?;
            self.done = true;
            return Ok(());
        }
        if !self.buf.is_empty() {
            self.flush_part().await?;
        }
        let upload_id = self.multipart.clone().expect("checked above");
        s.client
            .complete_multipart_upload()
            .bucket(&s.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(err)?;
        // Copying also refreshes an existing equal blob's modification time for the sweep.
        s.client
            .copy_object()
            .bucket(&s.bucket)
            .key(&target)
            .copy_source(format!("{}/{}", s.bucket, self.key))
            .send()
            .await
            .map_err(err)?;
        s.client
            .delete_object()
            .bucket(&s.bucket)
            .key(&self.key)
            .send()
            .await
            .map_err(err)?;
        self.done = true;
        Ok(())
    }

    async fn abort(mut self: Box<Self>) -> Result<(), BlobError> {
        self.done = true;
        match self.multipart.take() {
            Some(id) => self.store.abort_multipart(&self.key, &id).await,
            None => Ok(()),
        }
    }
}

impl Drop for S3Upload {
    // A cut-off request drops the upload: abort its multipart upload in the background.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let (Some(id), Ok(rt)) = (self.multipart.take(), tokio::runtime::Handle::try_current()) {
            let s = self.store.clone();
            let key = self.key.clone();
            rt.spawn(async move {
                let _ = s.abort_multipart(&key, &id).await;
            });
        }
    }
}
