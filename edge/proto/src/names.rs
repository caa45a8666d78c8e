//! Names every side derives alike: the edge when it restores from the Trash, the sandbox's
//! sync when it keeps both sides of a conflict.

/// Longest name in bytes (what common file systems allow).
pub const MAX_NAME_BYTES: usize = 255;

/// `name` with ` (note)` before its extension (`report (restored).txt`; a dotfile's leading
/// dot is no extension), shortened at a character boundary to stay a valid name.
pub fn with_note(name: &str, note: &str) -> String {
    // An "extension" longer than a few dozen bytes is part of the name (and could leave no
    // room for the note).
    let split = name
        .rfind('.')
        .filter(|&i| i > 0 && name.len() - i <= 32)
        .unwrap_or(name.len());
    let (stem, ext) = name.split_at(split);
    let tail = format!(" ({note}){ext}");
    let mut keep = MAX_NAME_BYTES.saturating_sub(tail.len()).min(stem.len());
    while !stem.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{tail}", &stem[..keep])
}
