//! The hit ratio over time that runs and replays report: offers and hits counted per second,
//! then cut into at most [`WINDOWS`] windows of equal width.

use std::collections::BTreeMap;

/// (offers, hits) per second since the start of a run.
pub(crate) type Seconds = BTreeMap<u64, (u64, u64)>;

/// How many windows a run's hit ratio over time is cut into, at most.
pub(crate) const WINDOWS: u64 = 50;

/// Counts an offer made `second` seconds into a run, and whether it resumed.
pub(crate) fn count_offer(seconds: &mut Seconds, second: u64, resumed: bool) {
    add(seconds, second, (1, u64::from(resumed)));
}

/// Adds (offers, hits) to the count of `second`.
pub(crate) fn add(seconds: &mut Seconds, second: u64, (offers, hits): (u64, u64)) {
    let w = seconds.entry(second).or_default();
    w.0 += offers;
    w.1 += hits;
}

/// The hit ratio per window of time (at most [`WINDOWS`] of equal width), as (seconds since
/// the start to the window's middle, hits / offers), for the windows with an offer.
pub(crate) fn over_time(seconds: &Seconds) -> Vec<(f64, f64)> {
    let Some(&last) = seconds.keys().next_back() else {
        return Vec::new();
    };
    let width = (last + 1).div_ceil(WINDOWS).max(1);
    let mut windows = Seconds::new();
    for (&second, &counts) in seconds {
        add(&mut windows, second / width, counts);
    }
    windows
        .into_iter()
        .filter(|(_, (offers, _))| *offers > 0)
        .map(|(w, (offers, hits))| ((w as f64 + 0.5) * width as f64, hits as f64 / offers as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_fold_into_at_most_fifty_windows_of_offers() {
        let mut seconds = Seconds::new();
        for second in 0..200 {
            // Every other second has an offer; a quarter of them resume.
            if second % 2 == 0 {
                count_offer(&mut seconds, second, second % 8 == 0);
            }
        }
        let windows = over_time(&seconds);
        assert_eq!(windows.len(), 50, "200 seconds, 4 per window");
        assert_eq!(windows[0], (2.0, 0.5));
        assert_eq!(windows[1], (6.0, 0.0));
        assert!(over_time(&Seconds::new()).is_empty());
    }

    #[test]
    fn windows_without_an_offer_are_left_out() {
        let mut seconds = Seconds::new();
        count_offer(&mut seconds, 0, true);
        add(&mut seconds, 9, (0, 0));
        count_offer(&mut seconds, 9, false);
        count_offer(&mut seconds, 9, true);
        assert_eq!(over_time(&seconds), vec![(0.5, 1.0), (9.5, 0.5)]);
    }
}
