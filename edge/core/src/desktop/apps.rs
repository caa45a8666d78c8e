//! The app catalogue: every app, first-party included, is a manifest.

use cloudos_proto::{AppManifest, Size};

use super::DesktopError;
use crate::ids::UserId;
use crate::{stmt, App};

fn builtin(
    id: &str,
    name: &str,
    description: &str,
    default_size: (f64, f64),
    min_size: (f64, f64),
    permissions: &[&str],
    pinned: bool,
) -> AppManifest {
    AppManifest {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        icon: format!("/icons/{id}.svg"),
        entry: format!("builtin:{id}"),
        default_size: Size {
            width: default_size.0,
            height: default_size.1,
        },
        min_size: Size {
            width: min_size.0,
            height: min_size.1,
        },
        permissions: permissions.iter().map(|p| (*p).into()).collect(),
        multi_window: true,
        pinned,
    }
}

/// The apps that ship with Cloud OS.
pub fn first_party() -> Vec<AppManifest> {
    vec![
        builtin(
            "files",
            "Files",
            "Browse, upload, move and preview your files",
            (860.0, 540.0),
            (420.0, 280.0),
            &["files:read", "files:write"],
            true,
        ),
        builtin(
            "terminal",
            "Terminal",
            "A shell in your own sandbox, with a home that persists",
            (760.0, 460.0),
            (360.0, 200.0),
            &["sandbox"],
            true,
        ),
        builtin(
            "editor",
            "Editor",
            "Edit text and code together, live, with tabs",
            (900.0, 600.0),
            (420.0, 260.0),
            &["files:read", "files:write"],
            true,
        ),
        builtin(
            "viewer",
            "Viewer",
            "Preview text, Markdown, code and images",
            (720.0, 520.0),
            (320.0, 220.0),
            &["files:read"],
            false,
        ),
        builtin(
            "about",
            "About Cloud OS",
            "Version, storage and keyboard shortcuts",
            (440.0, 420.0),
            (320.0, 260.0),
            &[],
            false,
        ),
    ]
}

/// The apps the user's desktop offers: first-party apps, then the ones they installed.
pub async fn available(app: &App, who: &UserId) -> Result<Vec<AppManifest>, DesktopError> {
    let mut apps = first_party();
    let rows = app
        .ports
        .meta
        .query(stmt!(
            "SELECT a.manifest FROM apps a JOIN installs i ON i.app_id = a.id
             WHERE i.user_id = ? ORDER BY a.id",
            who
        ))
        .await?;
    // A manifest that no longer parses is skipped rather than breaking the whole desktop.
    apps.extend(
        rows.iter()
            .filter_map(|r| serde_json::from_str::<AppManifest>(&r.text(0)).ok()),
    );
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_party_manifests_are_unique_and_usable() {
        let apps = first_party();
        let mut ids: Vec<_> = apps.iter().map(|a| a.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), apps.len());
        assert!(apps.iter().any(|a| a.id == "files" && a.pinned));
        for a in &apps {
            assert!(a.entry.starts_with("builtin:"), "{}", a.id);
            assert!(a.min_size.width <= a.default_size.width, "{}", a.id);
            assert!(a.min_size.height <= a.default_size.height, "{}", a.id);
        }
    }
}
