//! What the Files app asks the API, one function per question, so the state code reads as
//! what it does and the paths are written once.

use cloudos_proto::{CreateFolder, File, FileList, Me, PatchFile};

use crate::api::{self, ApiErr};

/// A folder's children (`None`: the root).
pub async fn children(folder: Option<&str>) -> Result<Vec<File>, ApiErr> {
    let path = match folder {
        Some(id) => format!("/files?parent={}", api::enc(id)),
        None => "/files".into(),
    };
    Ok(api::get::<FileList>(&path).await?.items)
}

/// The folders from the root down to `folder`, itself included (the breadcrumbs).
pub async fn path_to(folder: &str) -> Result<Vec<File>, ApiErr> {
    let up = api::get::<FileList>(&format!("/files/{}/ancestors", api::enc(folder))).await?;
    let here = details(folder).await?;
    Ok(up.items.into_iter().chain([here]).collect())
}

/// One file's metadata, with a short-lived download URL.
pub async fn details(id: &str) -> Result<File, ApiErr> {
    api::get::<File>(&format!("/files/{}", api::enc(id))).await
}

/// The account, for the quota bar.
pub async fn me() -> Result<Me, ApiErr> {
    api::get::<Me>("/me").await
}

/// A new folder in `parent` (`None`: the root).
pub async fn create_folder(parent: Option<String>, name: String) -> Result<File, ApiErr> {
    let body = CreateFolder {
        parent_id: parent,
        name,
    };
    api::post::<_, File>("/folders", &body).await
}

/// Renames a file or folder.
pub async fn rename(id: &str, name: String) -> Result<File, ApiErr> {
    patch(
        id,
        PatchFile {
            name: Some(name),
            ..Default::default()
        },
    )
    .await
}

/// Moves a file or folder into `target` (`None`: the root).
pub async fn move_into(id: &str, target: Option<String>) -> Result<File, ApiErr> {
    patch(
        id,
        PatchFile {
            parent_id: Some(target),
            ..Default::default()
        },
    )
    .await
}

async fn patch(id: &str, change: PatchFile) -> Result<File, ApiErr> {
    api::patch::<_, File>(&format!("/files/{}", api::enc(id)), &change).await
}

/// Deletes a file, or a folder with everything in it.
pub async fn delete(id: &str) -> Result<(), ApiErr> {
    api::delete(&format!("/files/{}", api::enc(id))).await
}
