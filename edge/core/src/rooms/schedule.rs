//! When a room writes its text into its file: 2 s after the last edit, and at least every
//! 30 s while edits keep coming (presence moves neither). Every edit is in the room's log
//! the moment it is accepted; the file is for readers outside the room, and each write is
//! a new version, so a busy room writes seldom. Sans-IO: the host says what
//! happened and when, and sleeps (a timer, a Durable Object alarm) until [`Schedule::due`].

/// A room's text is written into its file this long after its last edit...
pub const CHECKPOINT_AFTER_MS: i64 = 2_000;
/// ...and at least this often while edits keep coming.
pub const CHECKPOINT_AT_LEAST_MS: i64 = 30_000;
/// After a failed write, the next try waits this long.
pub const RETRY_AFTER_MS: i64 = 5_000;

/// The unwritten edits of one room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schedule {
    /// The first unwritten edit and the last one (ms since the epoch).
    dirty: Option<(i64, i64)>,
}

impl Schedule {
    /// An edit was stored at `now_ms`.
    pub fn edited(&mut self, now_ms: i64) {
        self.dirty = Some((self.dirty.map_or(now_ms, |(first, _)| first), now_ms));
    }

    /// When the text should be written (ms since the epoch), if anything is unwritten.
    pub fn due(&self) -> Option<i64> {
        self.dirty
            .map(|(first, last)| (last + CHECKPOINT_AFTER_MS).min(first + CHECKPOINT_AT_LEAST_MS))
    }

    /// The text was written; edits from now on are new.
    pub fn written(&mut self) {
        self.dirty = None;
    }

    /// Writing failed at `now_ms`: try again in [`RETRY_AFTER_MS`].
    pub fn failed(&mut self, now_ms: i64) {
        if self.dirty.is_some() {
            let at = now_ms + RETRY_AFTER_MS;
            self.dirty = Some((at - CHECKPOINT_AT_LEAST_MS, at - CHECKPOINT_AFTER_MS));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_written_after_a_pause_or_after_thirty_seconds_of_typing() {
        let mut s = Schedule::default();
        assert_eq!(s.due(), None);
        s.edited(1_000);
        assert_eq!(s.due(), Some(3_000));
        // Typing on postpones the write, but not past 30 s from the first edit.
        s.edited(2_500);
        assert_eq!(s.due(), Some(4_500));
        s.edited(30_000);
        assert_eq!(s.due(), Some(31_000));
        s.written();
        assert_eq!(s.due(), None);
        s.edited(20_000);
        s.failed(22_000);
        assert_eq!(s.due(), Some(27_000));
    }
}
