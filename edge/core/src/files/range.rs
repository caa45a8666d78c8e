//! HTTP `Range` requests on file content (RFC 9110 §14).

use super::FilesError;

/// A satisfiable byte range: `offset` and `len` within the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u64,
}

/// Parses a `Range` header against a content of `size` bytes.
///
/// `Ok(None)` means "send everything": no header, another unit, or several ranges (which
/// a server may answer in full). An unsatisfiable single range is an error (416).
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, FilesError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = FilesError::RangeNotSatisfiable { size };
    let range = match (start.trim(), end.trim()) {
        ("", "") => return Ok(None),
        ("", suffix) => {
            let n: u64 = suffix
                .parse()
                .map_err(|_| FilesError::RangeNotSatisfiable { size })?;
            if n == 0 || size == 0 {
                return Err(unsatisfiable);
            }
            let n = n.min(size);
            ByteRange {
                offset: size - n,
                len: n,
            }
        }
        (start, end) => {
            let start: u64 = start
                .parse()
                .map_err(|_| FilesError::RangeNotSatisfiable { size })?;
            if start >= size {
                return Err(unsatisfiable);
            }
            let last = if end.is_empty() {
                size - 1
            } else {
                let e: u64 = end
                    .parse()
                    .map_err(|_| FilesError::RangeNotSatisfiable { size })?;
                if e < start {
                    return Err(unsatisfiable);
                }
                e.min(size - 1)
            };
            ByteRange {
                offset: start,
                len: last - start + 1,
            }
        }
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(offset: u64, len: u64) -> Option<ByteRange> {
        Some(ByteRange { offset, len })
    }

    #[test]
    fn single_ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100).unwrap(), r(0, 10));
        assert_eq!(parse_range(Some("bytes=90-"), 100).unwrap(), r(90, 10));
        assert_eq!(parse_range(Some("bytes=-5"), 100).unwrap(), r(95, 5));
        assert_eq!(parse_range(Some("bytes=-500"), 100).unwrap(), r(0, 100));
        assert_eq!(parse_range(Some("bytes=50-5000"), 100).unwrap(), r(50, 50));
    }

    #[test]
    fn whole_content_cases() {
        assert_eq!(parse_range(None, 100).unwrap(), None);
        assert_eq!(parse_range(Some("items=0-1"), 100).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100).unwrap(), None);
    }

    #[test]
    fn unsatisfiable() {
        for h in [
            "bytes=100-",
            "bytes=200-300",
            "bytes=-0",
            "bytes=5-2",
            "bytes=x-1",
        ] {
            assert!(
                matches!(
                    parse_range(Some(h), 100),
                    Err(FilesError::RangeNotSatisfiable { size: 100 })
                ),
                "{h}"
            );
        }
        assert!(parse_range(Some("bytes=0-"), 0).is_err());
    }
}
