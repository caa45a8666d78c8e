//! The drive, as the sync agent reaches it: the edge's public files API with the sandbox's
//! sync token (what the agent saves is recorded with the origin "sandbox").

use cloudos_proto::{File, PatchFile, Problem, SyncReport, Tree, UploadResponse};
use reqwest::StatusCode;

/// Why a call to the drive failed.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The drive answered with an error (its problem's type and detail).
    #[error("{status}: {detail}")]
    Refused {
        status: u16,
        kind: String,
        detail: String,
    },
    #[error("the drive could not be reached: {0}")]
    Transport(String),
    #[error("reading {0}: {1}")]
    Local(String, std::io::Error),
}

impl DriveError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            DriveError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for DriveError {
    fn from(e: reqwest::Error) -> Self {
        // reqwest's own words name only the URL: the causes say what went wrong.
        let mut text = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        DriveError::Transport(text)
    }
}

/// The user's drive behind the edge's API.
#[derive(Clone)]
pub struct Drive {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Drive {
    /// The API at `base` (`http://127.0.0.1:8080`, or the edge's `https://` origin),
    /// called with `token`.
    pub fn new(base: &str, token: &str) -> Self {
        // One TLS provider for the process (the event socket's client takes the default):
        // several are compiled in when the workspace is built together.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Drive {
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("a client with default TLS settings"),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    /// The event stream's URL (`ws://…/events`).
    pub fn events_url(&self) -> String {
        let rest = self
            .base
            .strip_prefix("https://")
            .map(|r| format!("wss://{r}"))
            .or_else(|| {
                self.base
                    .strip_prefix("http://")
                    .map(|r| format!("ws://{r}"))
            })
            .unwrap_or_else(|| self.base.clone());
        format!("{rest}/events")
    }

    /// The sync token, for the event stream's upgrade.
    pub fn token(&self) -> &str {
        &self.token
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    async fn ok(res: reqwest::Response) -> Result<reqwest::Response, DriveError> {
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status().as_u16();
        let problem = res.json::<Problem>().await.ok();
        Err(DriveError::Refused {
            status,
            kind: problem.as_ref().map(|p| p.kind.clone()).unwrap_or_default(),
            detail: problem.map(|p| p.detail).unwrap_or_else(|| {
                StatusCode::from_u16(status)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            }),
        })
    }

    /// Every file and folder with its path.
    pub async fn tree(&self) -> Result<Tree, DriveError> {
        let res = self.req(reqwest::Method::GET, "/files/tree").send().await?;
        Ok(Self::ok(res).await?.json().await?)
    }

    /// A file's current content, streaming; its `ETag` names the version served.
    pub async fn download(&self, id: &str) -> Result<reqwest::Response, DriveError> {
        let res = self
            .req(reqwest::Method::GET, &format!("/files/{}/content", enc(id)))
            .send()
            .await?;
        Self::ok(res).await
    }

    /// A new file `name` in `parent` (`None`: the root) with the content of `local`.
    pub async fn create(
        &self,
        parent: Option<&str>,
        name: &str,
        local: std::fs::File,
    ) -> Result<File, DriveError> {
        let (body, len) = file_body(local, name)?;
        let mut form = reqwest::multipart::Form::new();
        if let Some(p) = parent {
            form = form.text("parent_id", p.to_owned());
        }
        let part = reqwest::multipart::Part::stream_with_length(body, len)
            .file_name(name.to_owned())
            .mime_str("application/octet-stream")
            .expect("a valid type");
        form = form.part("file", part);
        let res = self
            .req(reqwest::Method::POST, "/files")
            .multipart(form)
            .send()
            .await?;
        let up: UploadResponse = Self::ok(res).await?.json().await?;
        up.files
            .into_iter()
            .next()
            .ok_or_else(|| DriveError::Transport("the upload answered no file".into()))
    }

    /// A new version of `id`, if its current one is still `version` (412 otherwise).
    pub async fn replace(
        &self,
        id: &str,
        version: i64,
        local: std::fs::File,
    ) -> Result<File, DriveError> {
        let (body, len) = file_body(local, id)?;
        let res = self
            .req(reqwest::Method::PUT, &format!("/files/{}/content", enc(id)))
            .header(reqwest::header::IF_MATCH, format!("\"{version}\""))
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body)
            .send()
            .await?;
        Ok(Self::ok(res).await?.json().await?)
    }

    /// A new folder.
    pub async fn make_folder(&self, parent: Option<&str>, name: &str) -> Result<File, DriveError> {
        let res = self
            .req(reqwest::Method::POST, "/folders")
            .json(&cloudos_proto::CreateFolder {
                parent_id: parent.map(str::to_owned),
                name: name.to_owned(),
            })
            .send()
            .await?;
        Ok(Self::ok(res).await?.json().await?)
    }

    /// Renames, moves or sets the executable bit.
    pub async fn patch(&self, id: &str, change: &PatchFile) -> Result<File, DriveError> {
        let res = self
            .req(reqwest::Method::PATCH, &format!("/files/{}", enc(id)))
            .json(change)
            .send()
            .await?;
        Ok(Self::ok(res).await?.json().await?)
    }

    /// Moves a file or folder to the Trash; one that is gone already is fine.
    pub async fn delete(&self, id: &str) -> Result<(), DriveError> {
        let res = self
            .req(reqwest::Method::DELETE, &format!("/files/{}", enc(id)))
            .send()
            .await?;
        match Self::ok(res).await {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Tells the user something (the edge words it).
    pub async fn report(&self, report: &SyncReport) -> Result<(), DriveError> {
        let res = self
            .req(reqwest::Method::POST, "/sync/report")
            .json(report)
            .send()
            .await?;
        Self::ok(res).await.map(|_| ())
    }
}

/// Ids are URL-safe already; anything else is escaped rather than trusted.
fn enc(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An open file as a streaming body, and its length now.
fn file_body(local: std::fs::File, what: &str) -> Result<(reqwest::Body, u64), DriveError> {
    let len = local
        .metadata()
        .map_err(|e| DriveError::Local(what.to_owned(), e))?
        .len();
    let f = tokio::fs::File::from_std(local);
    Ok((
        reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(f)),
        len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `https://` edge (the Worker, for a Fly Machine) is reached over TLS, and its
    /// event stream over `wss://`: against a port where nothing listens the failure is the
    /// connection's, not a scheme this build cannot speak.
    #[tokio::test]
    async fn an_https_edge_is_spoken_to_over_tls() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let drive = Drive::new(&format!("https://127.0.0.1:{port}"), "t");
        let err = drive.tree().await.unwrap_err();
        assert!(matches!(err, DriveError::Transport(_)), "{err:?}");
        let text = format!("{err:?}").to_lowercase();
        assert!(text.contains("connection refused"), "{text}");
        assert!(!text.contains("scheme"), "{text}");
        assert_eq!(drive.events_url(), format!("wss://127.0.0.1:{port}/events"));
        let ws = tokio_tungstenite::connect_async(drive.events_url()).await;
        match ws {
            Err(tokio_tungstenite::tungstenite::Error::Io(_)) => {}
            other => panic!("expected a refused connection, got {other:?}"),
        }
    }
}
