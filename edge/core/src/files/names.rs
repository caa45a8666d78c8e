//! What a file or folder may be called.

use super::FilesError;

pub use cloudos_proto::names::{with_note, MAX_NAME_BYTES};

/// Checks a name: not empty, no `/`, no NUL, not `.` or `..`, at most 255 bytes.
pub fn validate_name(name: &str) -> Result<(), FilesError> {
    let why = if name.is_empty() {
        "a name cannot be empty"
    } else if name.len() > MAX_NAME_BYTES {
        "a name can have at most 255 bytes"
    } else if name.contains('/') {
        "a name cannot contain '/'"
    } else if name.contains('\0') {
        "a name cannot contain NUL"
    } else if name == "." || name == ".." {
        "'.' and '..' are not names"
    } else {
        return Ok(());
    };
    Err(FilesError::BadName(why.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_go_before_the_extension_and_keep_names_valid() {
        assert_eq!(with_note("report.txt", "restored"), "report (restored).txt");
        assert_eq!(with_note("Makefile", "restored 2"), "Makefile (restored 2)");
        assert_eq!(with_note(".bashrc", "restored"), ".bashrc (restored)");
        assert_eq!(with_note("a.tar.gz", "x"), "a.tar (x).gz");
        let long = with_note(&format!("{}.txt", "é".repeat(127)), "restored");
        assert!(long.len() <= MAX_NAME_BYTES && long.ends_with(" (restored).txt"));
        assert!(validate_name(&long).is_ok());
        let odd = with_note(&format!("a.{}", "x".repeat(250)), "restored");
        assert!(
            odd.len() <= MAX_NAME_BYTES && odd.starts_with("a.xx") && odd.ends_with(" (restored)")
        );
    }

    #[test]
    fn accepts_ordinary_and_unicode_names() {
        for ok in [
            "a.txt",
            "Résumé 2026.pdf",
            "日本語のファイル",
            "🚀",
            ".hidden",
            "...",
            "a b",
        ] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        assert!(validate_name(&"é".repeat(127)).is_ok()); // 254 bytes
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", ".", "..", "a/b", "/", "a\0b"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(256)).is_err());
        assert!(validate_name(&"é".repeat(128)).is_err()); // 256 bytes
    }
}
