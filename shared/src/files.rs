//! The vendor's report files: objects the vendor puts into the stack's upload bucket (`UPLOAD_BUCKET`)
//! and names in a `push-file` command. An object is checked before Lever is asked (it exists, it
//! belongs to the command's tenant, it is within Lever's 30 MB and of a type Lever shows), then
//! streamed from S3 into Lever's multipart upload: never held whole in memory.

use crate::lever::FileSource;
use std::sync::Arc;

/// Lever's limit for one file (lever-api.md §5).
pub const MAX_BYTES: u64 = 30 * 1024 * 1024;

/// What may be attached, by the file name's extension, and the type sent with it: documents and
/// images a recruiter opens in Lever (no archives, no executables).
pub const PERMITTED: &[(&str, &str)] = &[
    ("pdf", "application/pdf"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("rtf", "application/rtf"),
    ("txt", "text/plain"),
    ("csv", "text/csv"),
    ("html", "text/html"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
];

/// Why an object cannot be attached; each names the object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UploadError {
    #[error("no object `{0}` in the upload bucket")]
    Missing(String),
    #[error(
        "object `{key}` is {size} bytes; Lever takes files of at most {MAX_BYTES} bytes (30 MB)"
    )]
    TooLarge { key: String, size: u64 },
    #[error(
        "`{name}` is not a permitted type (by its extension: one of {})",
        permitted()
    )]
    NotPermitted { name: String },
    #[error("object key `{key}` is not under the tenant's prefix `{tenant}/`")]
    OtherTenant { key: String, tenant: String },
    #[error("object `{0}` is empty")]
    Empty(String),
    /// S3 answered the object with a 4xx other than 404 (access denied, say): permanent.
    #[error("the upload bucket refused object `{key}` ({status}): {message}")]
    Refused {
        key: String,
        status: u16,
        message: String,
    },
    /// S3 could not be asked: worth trying again.
    #[error("the upload bucket is unavailable: {0}")]
    Unavailable(String),
}

/// The name a command's file has in Lever: the file's name with a reference to the command
/// (`report [ref 3f9a1c2b7d4e].pdf`), so a retry whose last answer was lost finds its own upload
/// and never another command's of the same report. Lever keeps the name and shows no hash.
pub fn tagged_name(name: &str, tenant: &str, command: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{tenant}/{command}").as_bytes());
    let tag = &hex::encode(digest)[..12];
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem} [ref {tag}].{ext}"),
        _ => format!("{name} [ref {tag}]"),
    }
}

fn permitted() -> String {
    PERMITTED
        .iter()
        .map(|(ext, _)| *ext)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An object checked for attaching.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub key: String,
    /// The name Lever shows.
    pub name: String,
    pub size: u64,
    pub content_type: &'static str,
}

/// An S3 client for `aws`. A local emulator (`AWS_ENDPOINT_URL`) serves buckets by path, not by
/// host name.
pub fn s3_client(aws: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(aws.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The upload bucket.
#[derive(Clone)]
pub struct Uploads {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl Uploads {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str) -> Self {
        Uploads {
            client,
            bucket: bucket.to_string(),
        }
    }

    /// Checks `key` for `tenant`: one `HeadObject`. `name` (default: the key's last segment) is
    /// what Lever shows and decides the type.
    pub async fn check(
        &self,
        tenant: &str,
        key: &str,
        name: Option<&str>,
    ) -> Result<Checked, UploadError> {
        if !key.starts_with(&format!("{tenant}/")) {
            return Err(UploadError::OtherTenant {
                key: key.to_string(),
                tenant: tenant.to_string(),
            });
        }
        let name = name
            .unwrap_or_else(|| key.rsplit('/').next().unwrap_or(key))
            .trim()
            .to_string();
        let ext = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let Some((_, content_type)) = PERMITTED.iter().find(|(e, _)| *e == ext) else {
            return Err(UploadError::NotPermitted { name });
        };
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let size = match head {
            Ok(h) => h.content_length().unwrap_or(0).max(0) as u64,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {
                return Err(UploadError::Missing(key.to_string()));
            }
            // Access denied and other refusals stay refused however often they are asked.
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| (400..500).contains(&r.status().as_u16())) =>
            {
                let status = e.raw_response().map_or(0, |r| r.status().as_u16());
                return Err(UploadError::Refused {
                    key: key.to_string(),
                    status,
                    message: aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                });
            }
            Err(e) => {
                return Err(UploadError::Unavailable(
                    aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                ));
            }
        };
        if size == 0 {
            return Err(UploadError::Empty(key.to_string()));
        }
        if size > MAX_BYTES {
            return Err(UploadError::TooLarge {
                key: key.to_string(),
                size,
            });
        }
        Ok(Checked {
            key: key.to_string(),
            name,
            size,
            content_type,
        })
    }

    /// The object's bytes as a stream, opened anew for each attempt.
    pub fn source(&self, key: &str) -> Arc<dyn FileSource> {
        Arc::new(S3Object {
            uploads: self.clone(),
            key: key.to_string(),
        })
    }
}

struct S3Object {
    uploads: Uploads,
    key: String,
}

impl FileSource for S3Object {
    fn open(&self) -> futures::future::BoxFuture<'_, Result<reqwest::Body, String>> {
        Box::pin(async move {
            let out = self
                .uploads
                .client
                .get_object()
                .bucket(&self.uploads.bucket)
                .key(&self.key)
                .send()
                .await
                .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(&e).to_string())?;
            // S3's chunks go on to Lever as they come.
            let chunks = futures::stream::try_unfold(out.body, |mut body| async move {
                Ok::<_, aws_sdk_s3::primitives::ByteStreamError>(
                    body.try_next().await?.map(|chunk| (chunk, body)),
                )
            });
            Ok(reqwest::Body::wrap_stream(chunks))
        })
    }
}
