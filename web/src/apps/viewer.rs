//! The Viewer: text, Markdown (rendered and sanitized), images with zoom, highlighted
//! code, and a fallback with size, type and download for everything else.

use cloudos_proto::File;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use super::human_size;
use crate::api;
use crate::desktop::wm::Win;

/// Text previews stop here; bigger files get the fallback with a download.
const MAX_TEXT_BYTES: u64 = 2 * 1024 * 1024;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = cloudosVendor, js_name = markdown, catch)]
    fn js_markdown(text: &str) -> Result<String, JsValue>;
    #[wasm_bindgen(js_namespace = cloudosVendor, js_name = highlight, catch)]
    fn js_highlight(code: &str, language: &str) -> Result<String, JsValue>;
}

/// How a file is previewed.
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    Markdown,
    Code(&'static str),
    Text,
    Image,
    Other,
}

/// Picks the preview from the name and type.
pub fn preview_for(name: &str, mime: &str, size: u64) -> Preview {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if mime.starts_with("image/") && mime != "image/svg+xml"
        || matches!(
            ext.as_str(),
            "png" | "jpg" | "jpeg" | "gif" | "webp" | "avif" | "bmp"
        )
    {
        return Preview::Image;
    }
    let textual = size <= MAX_TEXT_BYTES;
    let code = match ext.as_str() {
        "rs" => Some("rust"),
        "js" | "mjs" | "cjs" | "jsx" => Some("javascript"),
        "ts" | "tsx" => Some("typescript"),
        "py" => Some("python"),
        "go" => Some("go"),
        "c" | "h" => Some("c"),
        "cc" | "cpp" | "hpp" | "cxx" => Some("cpp"),
        "java" => Some("java"),
        "json" => Some("json"),
        "toml" | "ini" | "cfg" => Some("ini"),
        "yaml" | "yml" => Some("yaml"),
        "sh" | "bash" | "zsh" => Some("bash"),
        "sql" => Some("sql"),
        "css" => Some("css"),
        "html" | "htm" | "xml" | "svg" => Some("xml"),
        _ => None,
    };
    match (textual, ext.as_str(), code) {
        (false, _, _) => Preview::Other,
        (true, "md" | "markdown", _) => Preview::Markdown,
        (true, _, Some(lang)) => Preview::Code(lang),
        (true, _, None)
            if mime.starts_with("text/") || matches!(ext.as_str(), "txt" | "log" | "csv") =>
        {
            Preview::Text
        }
        _ => Preview::Other,
    }
}

/// Whether the Editor opens `f` (text and code a live room holds: at most 2 MiB); the
/// Viewer opens the rest.
pub fn editable(f: &File) -> bool {
    let mime = f.mime.as_deref().unwrap_or("");
    f.size <= cloudos_proto::MAX_ROOM_BYTES
        && matches!(
            preview_for(&f.name, mime, f.size),
            Preview::Code(_) | Preview::Text | Preview::Markdown
        )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Viewer window for the file in `win.arg`.
#[component]
pub fn Viewer(win: Win) -> impl IntoView {
    let file_id = win.arg;
    let title = win.title;
    let meta = LocalResource::new(move || {
        let id = file_id.get();
        async move {
            let id = id.ok_or_else(|| "No file to show.".to_owned())?;
            api::get::<File>(&format!("/files/{}", api::enc(&id)))
                .await
                .map_err(|e| e.message)
        }
    });
    view! {
        <div class="viewer" data-viewer tabindex="0" aria-label="Preview">
            <Suspense fallback=|| view! { <p class="viewer-status">"Loading…"</p> }>
                {move || meta.get().map(|r| match r {
                    Ok(f) => {
                        title.set(f.name.clone());
                        view! { <Body file=f /> }.into_any()
                    }
                    Err(e) => view! { <p class="form-error" role="alert">{e}</p> }.into_any(),
                })}
            </Suspense>
        </div>
    }
}

#[component]
fn Body(file: File) -> impl IntoView {
    let kind = preview_for(&file.name, file.mime.as_deref().unwrap_or(""), file.size);
    let url = file.download_url.clone().unwrap_or_default();
    match kind {
        Preview::Image => view! { <ImageView url=url name=file.name.clone() /> }.into_any(),
        Preview::Other => view! { <Fallback file=file /> }.into_any(),
        text_kind => {
            let path = format!("/files/{}/content", api::enc(&file.id));
            let content = LocalResource::new(move || {
                let path = path.clone();
                async move { api::get_text(&path).await.map_err(|e| e.message) }
            });
            view! {
                <Suspense fallback=|| view! { <p class="viewer-status">"Loading…"</p> }>
                    {move || {
                        let kind = text_kind.clone();
                        content.get().map(move |r| match r {
                            Err(e) => view! { <p class="form-error" role="alert">{e}</p> }.into_any(),
                            Ok(text) => match kind {
                                Preview::Markdown => {
                                    let html = js_markdown(&text).unwrap_or_else(|_| format!("<pre>{}</pre>", escape(&text)));
                                    view! { <article class="markdown" data-preview="markdown" inner_html=html></article> }.into_any()
                                }
                                Preview::Code(lang) => {
                                    let html = js_highlight(&text, lang).unwrap_or_else(|_| escape(&text));
                                    view! { <pre class="code hljs" data-preview="code" data-language=lang><code inner_html=html></code></pre> }.into_any()
                                }
                                _ => view! { <pre class="plain" data-preview="text">{text}</pre> }.into_any(),
                            },
                        })
                    }}
                </Suspense>
            }
            .into_any()
        }
    }
}

/// An image with zoom (buttons, keyboard and Ctrl+wheel).
#[component]
fn ImageView(url: String, name: String) -> impl IntoView {
    let zoom = RwSignal::new(1.0f64);
    let fit = RwSignal::new(true);
    let set = move |z: f64| {
        fit.set(false);
        zoom.set(z.clamp(0.1, 8.0));
    };
    view! {
        <div class="image-view" data-preview="image">
            <div class="image-tools" role="toolbar" aria-label="Zoom">
                <button aria-label="Zoom out" data-action="zoom-out" on:click=move |_| set(zoom.get_untracked() / 1.25)>"−"</button>
                <span data-zoom>{move || if fit.get() { "Fit".to_owned() } else { format!("{:.0}%", zoom.get() * 100.0) }}</span>
                <button aria-label="Zoom in" data-action="zoom-in" on:click=move |_| set(zoom.get_untracked() * 1.25)>"+"</button>
                <button on:click=move |_| { fit.set(true); zoom.set(1.0); }>"Fit"</button>
                <button on:click=move |_| set(1.0)>"100%"</button>
            </div>
            <div class="image-stage" tabindex="0"
                on:wheel=move |ev: web_sys::WheelEvent| {
                    if ev.ctrl_key() {
                        ev.prevent_default();
                        set(zoom.get_untracked() * if ev.delta_y() < 0.0 { 1.1 } else { 1.0 / 1.1 });
                    }
                }
                on:keydown=move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
                    "+" | "=" => set(zoom.get_untracked() * 1.25),
                    "-" => set(zoom.get_untracked() / 1.25),
                    "0" => { fit.set(true); zoom.set(1.0); }
                    _ => {}
                }>
                <img src=url alt=name class:fit=move || fit.get()
                    style:transform=move || if fit.get() { String::new() } else { format!("scale({})", zoom.get()) } />
            </div>
        </div>
    }
}

/// Size, type and a download for what cannot be previewed.
#[component]
fn Fallback(file: File) -> impl IntoView {
    let url = file.download_url.clone().unwrap_or_default();
    view! {
        <div class="fallback" data-preview="fallback">
            <img src="/icons/file.svg" alt="" />
            <h3>{file.name.clone()}</h3>
            <p>{human_size(file.size)} " · " {file.mime.clone().unwrap_or_else(|| "unknown type".into())}</p>
            <p>"There is no preview for this kind of file."</p>
            <a class="button primary" href=url download=file.name.clone()>"Download"</a>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_follow_name_and_type() {
        assert_eq!(
            preview_for("README.md", "text/markdown", 10),
            Preview::Markdown
        );
        assert_eq!(
            preview_for("main.rs", "text/x-rust", 10),
            Preview::Code("rust")
        );
        assert_eq!(preview_for("a.png", "image/png", 10), Preview::Image);
        assert_eq!(preview_for("notes.txt", "text/plain", 10), Preview::Text);
        assert_eq!(
            preview_for("big.txt", "text/plain", MAX_TEXT_BYTES + 1),
            Preview::Other
        );
        assert_eq!(
            preview_for("x.bin", "application/octet-stream", 10),
            Preview::Other
        );
    }
}
