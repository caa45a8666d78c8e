//! What the benchmark binaries share.

use std::time::Duration;

/// The `p` quantile (0…1) of sorted samples, by nearest rank (zero for none).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
