//! The core over a real in-memory libSQL (the same `MetaStore` adapter the native server
//! runs, the same migrations) and fakes for time, ids, blobs and events, so a test of a rule
//! (a stale version, a taken name, the quota) exercises the SQL that enforces it.
//!
//! ```ignore
//! let t = TestApp::new().await;
//! let ann = t.user("ann").await;
//! let folder = files::organize::create_folder(&t.app, &ann, None, "src").await?;
//! ```

pub mod fakes;

use std::sync::Arc;

use cloudos_core::auth::accounts;
use cloudos_core::files::upload::write_new_file;
use cloudos_core::files::{Made, Origin};
use cloudos_core::ids::UserId;
use cloudos_core::ports::{NoSandboxes, NoSockets, Ports, Sandboxes, Sockets};
use cloudos_core::{App, Config};
use cloudos_libsql::LibsqlMeta;
use cloudos_proto::SignupRequest;

pub use fakes::{FakeClock, Interleaving, MemoryBlobs, RecordedEvents, SeqIds};

/// `text` as a request body of one chunk.
pub fn text_body(
    text: &str,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin {
    futures_util::stream::iter([Ok(bytes::Bytes::from(text.to_owned()))])
}

/// Where every test's clock starts (2023-11-14).
pub const START_MS: i64 = 1_700_000_000_000;

/// An app over a fresh database, with handles on the fakes for assertions.
pub struct TestApp {
    pub app: App,
    pub blobs: MemoryBlobs,
    pub events: Arc<RecordedEvents>,
    pub clock: Arc<FakeClock>,
}

/// Settings and ports of a [`TestApp`] before it is built.
pub struct TestAppBuilder {
    config: Config,
    sandboxes: Arc<dyn Sandboxes>,
    sockets: Arc<dyn Sockets>,
}

impl TestAppBuilder {
    /// The quota of users created from now on.
    pub fn quota(mut self, bytes: u64) -> Self {
        self.config.default_quota_bytes = bytes;
        self
    }

    /// Changes any other setting.
    pub fn config(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// A sandbox provider other than none.
    pub fn sandboxes(mut self, provider: Arc<dyn Sandboxes>) -> Self {
        self.sandboxes = provider;
        self
    }

    /// A socket port other than none.
    pub fn sockets(mut self, port: Arc<dyn Sockets>) -> Self {
        self.sockets = port;
        self
    }

    /// Opens an empty in-memory database and applies every migration.
    pub async fn build(self) -> TestApp {
        let blobs = MemoryBlobs::default();
        let events = Arc::new(RecordedEvents::default());
        let clock = Arc::new(FakeClock::at(START_MS));
        let meta = LibsqlMeta::memory().await.expect("an in-memory database");
        let ports = Ports {
            meta: Arc::new(Interleaving(meta)),
            blobs: Arc::new(blobs.clone()),
            clock: clock.clone(),
            ids: Arc::new(SeqIds::default()),
            events: events.clone(),
            sandboxes: self.sandboxes,
            sockets: self.sockets,
            cpu: Arc::new(cloudos_core::ports::InlineCpu),
        };
        let app = App::new(ports, self.config);
        app.migrate().await.expect("the migrations apply");
        TestApp {
            app,
            blobs,
            events,
            clock,
        }
    }
}

impl TestApp {
    /// A builder with the defaults of [`TestApp::new`].
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            config: Config::with_secret(b"unit-test-secret-unit-test-secret".to_vec()),
            sandboxes: Arc::new(NoSandboxes),
            sockets: Arc::new(NoSockets),
        }
    }

    /// An app with default settings and no sandboxes.
    pub async fn new() -> TestApp {
        Self::builder().build().await
    }

    /// Signs up `name@example.com` through the account service and returns the principal.
    pub async fn user(&self, name: &str) -> UserId {
        self.session(name).await.0
    }

    /// Like [`TestApp::user`], with the access token the signup issued.
    pub async fn session(&self, name: &str) -> (UserId, String) {
        let res = accounts::signup(
            &self.app,
            &SignupRequest {
                email: format!("{name}@example.com"),
                password: "correct horse battery".into(),
                name: name.into(),
            },
        )
        .await
        .expect("signup");
        (res.user.id.into(), res.token)
    }

    /// The sign-in session of a new user `name` (what a request of theirs acts under).
    pub async fn signed_in(&self, name: &str) -> cloudos_core::auth::Session {
        let (_, token) = self.session(name).await;
        accounts::authenticate(&self.app, &token)
            .await
            .expect("a fresh token")
    }

    /// A new sign-in session of the existing user `name` (after a logout, say).
    pub async fn signed_in_again(&self, name: &str) -> cloudos_core::auth::Session {
        let res = accounts::login(
            &self.app,
            &cloudos_proto::LoginRequest {
                email: format!("{name}@example.com"),
                password: "correct horse battery".into(),
            },
            None,
        )
        .await
        .expect("login");
        accounts::authenticate(&self.app, &res.token)
            .await
            .expect("a fresh token")
    }

    /// Stores `text` as a new file `name` of `who` in `parent`, as an upload would.
    pub async fn write_text(
        &self,
        who: &UserId,
        parent: Option<&cloudos_core::ids::FileId>,
        name: &str,
        text: &str,
    ) -> cloudos_proto::File {
        let made = Made::by(Origin::Upload, who);
        write_new_file(
            &self.app,
            who,
            parent,
            name,
            "text/plain",
            &made,
            &mut text_body(text),
        )
        .await
        .expect("a new file")
    }

    /// Removes an account's row, as if it were deleted while its tokens are still out.
    pub async fn remove_account(&self, who: &UserId) {
        self.app
            .ports
            .meta
            .execute(cloudos_core::stmt!("DELETE FROM users WHERE id = ?", who))
            .await
            .expect("the account's row is removed");
    }
}
