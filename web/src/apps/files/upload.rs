//! Uploads with progress and cancel: one XMLHttpRequest per file, since fetch reports no
//! upload progress.

use std::collections::HashMap;
use std::rc::Rc;

use cloudos_proto::Problem;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{FormData, ProgressEvent, XmlHttpRequest};

use crate::session;

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadState {
    Sending,
    Done,
    Failed(String),
    Cancelled,
}

/// One upload row in the Files window.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub id: u32,
    pub name: String,
    pub loaded: f64,
    pub total: f64,
    pub state: UploadState,
}

/// The uploads of one Files window.
#[derive(Clone, Copy)]
pub struct Uploads {
    pub rows: RwSignal<Vec<Upload>>,
    requests: StoredValue<HashMap<u32, XmlHttpRequest>, LocalStorage>,
    next: StoredValue<u32>,
}

impl Default for Uploads {
    fn default() -> Self {
        Self::new()
    }
}

impl Uploads {
    /// No uploads yet.
    pub fn new() -> Self {
        Uploads {
            rows: RwSignal::new(vec![]),
            requests: StoredValue::new_local(HashMap::new()),
            next: StoredValue::new(1),
        }
    }

    fn update(self, id: u32, f: impl FnOnce(&mut Upload)) {
        self.rows.update(|rows| {
            if let Some(r) = rows.iter_mut().find(|r| r.id == id) {
                f(r);
            }
        });
    }

    /// Starts uploading `files` into `parent`; `done` runs after each one that succeeded.
    pub fn start(self, files: Vec<web_sys::File>, parent: Option<String>, done: Rc<dyn Fn()>) {
        for file in files {
            let id = self.next.get_value();
            self.next.set_value(id + 1);
            self.rows.update(|r| {
                r.push(Upload {
                    id,
                    name: file.name(),
                    loaded: 0.0,
                    total: file.size(),
                    state: UploadState::Sending,
                })
            });
            if let Err(e) = self.send(id, &file, parent.as_deref(), done.clone()) {
                let why = e
                    .as_string()
                    .unwrap_or_else(|| "the browser refused the upload".into());
                self.update(id, |r| r.state = UploadState::Failed(why));
            }
        }
    }

    fn send(
        self,
        id: u32,
        file: &web_sys::File,
        parent: Option<&str>,
        done: Rc<dyn Fn()>,
    ) -> Result<(), JsValue> {
        let xhr = XmlHttpRequest::new()?;
        xhr.open("POST", "/files")?;
        if let Some(t) = session::token() {
            xhr.set_request_header("Authorization", &format!("Bearer {t}"))?;
        }
        let form = FormData::new()?;
        if let Some(p) = parent {
            form.append_with_str("parent_id", p)?;
        }
        form.append_with_blob_and_filename("file", file, &file.name())?;

        let progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |ev: ProgressEvent| {
            if ev.length_computable() {
                self.update(id, |r| {
                    r.loaded = ev.loaded();
                    r.total = ev.total();
                });
            }
        });
        xhr.upload()?
            .set_onprogress(Some(progress.as_ref().unchecked_ref()));
        progress.forget();

        let req = xhr.clone();
        let loaded = Closure::<dyn FnMut()>::new(move || {
            let status = req.status().unwrap_or(0);
            if status == 201 {
                self.update(id, |r| {
                    r.state = UploadState::Done;
                    r.loaded = r.total;
                });
                done();
                // A finished row fades from the list after a moment.
                gloo_timers::callback::Timeout::new(4_000, move || {
                    self.rows.update(|rows| {
                        rows.retain(|r| !(r.id == id && r.state == UploadState::Done))
                    });
                })
                .forget();
            } else {
                let text = req.response_text().ok().flatten().unwrap_or_default();
                let why = serde_json::from_str::<Problem>(&text)
                    .map(|p| p.detail)
                    .unwrap_or_else(|_| format!("the server answered {status}"));
                if status == 401 {
                    session::expired();
                }
                self.update(id, |r| r.state = UploadState::Failed(why));
            }
            self.requests.update_value(|m| {
                m.remove(&id);
            });
        });
        xhr.set_onload(Some(loaded.as_ref().unchecked_ref()));
        loaded.forget();

        let failed = Closure::<dyn FnMut()>::new(move || {
            self.update(id, |r| {
                if r.state == UploadState::Sending {
                    r.state = UploadState::Failed("the connection to the server was lost".into());
                }
            });
        });
        xhr.set_onerror(Some(failed.as_ref().unchecked_ref()));
        failed.forget();

        xhr.send_with_opt_form_data(Some(&form))?;
        self.requests.update_value(|m| {
            m.insert(id, xhr);
        });
        Ok(())
    }

    /// Stops an upload; the server keeps nothing of it.
    pub fn cancel(self, id: u32) {
        if let Some(xhr) = self.requests.try_update_value(|m| m.remove(&id)).flatten() {
            let _ = xhr.abort();
        }
        self.update(id, |r| r.state = UploadState::Cancelled);
    }

    /// Removes finished, failed and cancelled rows.
    pub fn clear_finished(self) {
        self.rows
            .update(|rows| rows.retain(|r| r.state == UploadState::Sending));
    }
}

/// The files of a `FileList` (input or drop) as a vector.
pub fn file_list(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else { return vec![] };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}
