//! Which part of a long folder to draw: only the rows in view (plus a margin) are in the DOM,
//! so a folder of thousands of items opens as fast as one of thirty.

/// Height of a row in the list view, in CSS pixels (`.file-item` in style.css).
pub const ROW_HEIGHT: f64 = 32.0;
/// Height of a tile in the grid view, in CSS pixels (`.files-window.grid .file-item`).
pub const TILE_HEIGHT: f64 = 108.0;
/// Narrowest a tile may be, in CSS pixels.
pub const TILE_MIN_WIDTH: f64 = 104.0;
/// Space between tiles, in CSS pixels.
pub const GAP: f64 = 6.0;
/// Inner padding of the scrolling list, in CSS pixels (`.files-list`).
pub const PADDING: f64 = 4.0;
/// Rows drawn beyond each edge of the view, so fast scrolling shows no blank strip.
const OVERSCAN: usize = 6;

/// The scrolling list as last measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    pub scroll_top: f64,
    pub width: f64,
    pub height: f64,
}

impl Default for Viewport {
    /// A guess used until the list is measured; it only decides how many rows the first frame draws.
    fn default() -> Self {
        Viewport {
            scroll_top: 0.0,
            width: 640.0,
            height: 480.0,
        }
    }
}

/// The items to draw and where their block sits in the scrolled content.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// Index of the first item drawn.
    pub start: usize,
    /// One past the last item drawn.
    pub end: usize,
    /// Items per row: 1 in the list view.
    pub cols: usize,
    /// Distance from the top of the content to the first drawn row, in pixels.
    pub offset: f64,
    /// Height of all rows together, so the scrollbar matches the whole folder.
    pub total: f64,
}

/// Items per row: one in the list view, as many minimum-width tiles as fit in the grid view.
pub fn columns(grid: bool, width: f64) -> usize {
    if !grid {
        return 1;
    }
    let inner = (width - 2.0 * PADDING).max(0.0);
    (((inner + GAP) / (TILE_MIN_WIDTH + GAP)).floor() as usize).max(1)
}

/// Distance between the tops of two consecutive rows.
pub fn pitch(grid: bool) -> f64 {
    if grid {
        TILE_HEIGHT + GAP
    } else {
        ROW_HEIGHT
    }
}

/// The span of `count` items to draw for this view.
pub fn span(count: usize, grid: bool, vp: Viewport) -> Span {
    let cols = columns(grid, vp.width);
    let pitch = pitch(grid);
    let rows = count.div_ceil(cols);
    let top = (vp.scroll_top - PADDING).max(0.0);
    let first_row = ((top / pitch).floor() as usize).saturating_sub(OVERSCAN);
    let last_row = (((top + vp.height) / pitch).ceil() as usize + OVERSCAN).min(rows);
    let first_row = first_row.min(last_row);
    Span {
        start: (first_row * cols).min(count),
        end: (last_row * cols).min(count),
        cols,
        offset: first_row as f64 * pitch,
        total: if rows == 0 {
            0.0
        } else {
            rows as f64 * pitch - if grid { GAP } else { 0.0 }
        },
    }
}

/// The scroll position that brings item `index` fully into view, or `None` if it already is.
pub fn scroll_to_show(index: usize, grid: bool, vp: Viewport) -> Option<f64> {
    let cols = columns(grid, vp.width);
    let pitch = pitch(grid);
    let top = PADDING + (index / cols) as f64 * pitch;
    let bottom = top + if grid { TILE_HEIGHT } else { ROW_HEIGHT };
    if top < vp.scroll_top {
        Some(top - PADDING)
    } else if bottom > vp.scroll_top + vp.height {
        Some(bottom + PADDING - vp.height)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp(scroll_top: f64, width: f64, height: f64) -> Viewport {
        Viewport {
            scroll_top,
            width,
            height,
        }
    }

    #[test]
    fn a_long_list_draws_only_the_rows_in_view_plus_a_margin() {
        let s = span(1000, false, vp(0.0, 600.0, 320.0));
        assert_eq!((s.start, s.end, s.cols), (0, 10 + OVERSCAN, 1));
        assert_eq!(s.total, 32_000.0);
        assert_eq!(s.offset, 0.0);

        // Scrolled to row 500: rows 494..516 are drawn, placed where row 494 belongs.
        let s = span(1000, false, vp(PADDING + 500.0 * ROW_HEIGHT, 600.0, 320.0));
        assert_eq!((s.start, s.end), (500 - OVERSCAN, 510 + OVERSCAN));
        assert_eq!(s.offset, (500 - OVERSCAN) as f64 * ROW_HEIGHT);

        // At the very end, the span stops at the last item.
        let s = span(
            1000,
            false,
            vp(32_000.0 - 320.0 + 2.0 * PADDING, 600.0, 320.0),
        );
        assert_eq!(s.end, 1000);
    }

    #[test]
    fn a_short_or_empty_folder_is_drawn_whole() {
        assert_eq!(span(7, false, vp(0.0, 600.0, 480.0)).end, 7);
        let empty = span(0, true, vp(0.0, 600.0, 480.0));
        assert_eq!((empty.start, empty.end, empty.total), (0, 0, 0.0));
    }

    #[test]
    fn the_grid_fits_as_many_tiles_as_the_width_allows_and_spans_whole_rows() {
        assert_eq!(columns(true, 2.0 * PADDING + 104.0), 1);
        assert_eq!(columns(true, 2.0 * PADDING + 3.0 * 104.0 + 2.0 * GAP), 3);
        assert_eq!(columns(true, 10.0), 1);
        assert_eq!(columns(false, 2000.0), 1);

        let width = 2.0 * PADDING + 5.0 * 104.0 + 4.0 * GAP;
        let s = span(1000, true, vp(PADDING + 50.0 * pitch(true), width, 480.0));
        assert_eq!(s.cols, 5);
        assert_eq!(s.start % 5, 0, "a span starts at the beginning of a row");
        assert_eq!(s.start, (50 - OVERSCAN) * 5);
        assert_eq!(s.total, 200.0 * pitch(true) - GAP);
    }

    #[test]
    fn keyboard_selection_scrolls_just_enough_to_show_the_item() {
        let view = vp(0.0, 600.0, 320.0);
        assert_eq!(scroll_to_show(3, false, view), None);
        // Row 20 lies below the view: scroll so its bottom edge is at the bottom.
        let to = scroll_to_show(20, false, view).expect("scrolls down");
        assert_eq!(to, PADDING + 21.0 * ROW_HEIGHT + PADDING - 320.0);
        // Row 2 lies above a view scrolled to row 100: scroll so it is at the top.
        let to = scroll_to_show(2, false, vp(100.0 * ROW_HEIGHT, 600.0, 320.0)).expect("up");
        assert_eq!(to, 2.0 * ROW_HEIGHT);
    }
}
