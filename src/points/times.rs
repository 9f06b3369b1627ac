//! A series' timestamps as a run file keeps them: listed, or a regular grid (every series
//! OpenTSDB downsamples without gaps) that is its first timestamp and a step, or a grid with a
//! few breaks (what raw vScope data is: a VM's minute is missing now and then), listed where it
//! breaks. What a grid is, and how many breaks still make one, is decided here once for every
//! writer of points.

use std::ops::Range;

#[cfg(test)]
use super::file::TsAt;

/// A series on a grid with gaps keeps its timestamps out of the run file while it has at most
/// one break in this many points; its breaks are listed (16 bytes each), and each break starts
/// another run of the series in the table.
const MIN_BREAK_SPACING: usize = 64;

/// A series' timestamps as handed over: listed, or a grid's without them in memory (a day of
/// 1,000 VMs is 18 million timestamps that the table would only look at to find where days
/// begin).
#[derive(Debug, Clone, Copy)]
pub enum Times<'a> {
    /// Every timestamp, ascending.
    Listed(&'a [i64]),
    /// `n` points `step` apart from `first`, but at each break (the index of the point after
    /// it and that point's timestamp, ascending), where the grid starts again.
    Grid {
        first: i64,
        step: i64,
        n: usize,
        breaks: &'a [(usize, i64)],
    },
}

impl Times<'_> {
    pub fn len(&self) -> usize {
        match *self {
            Times::Listed(ts) => ts.len(),
            Times::Grid { n, .. } => n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th timestamp.
    pub fn get(&self, i: usize) -> i64 {
        match *self {
            Times::Listed(ts) => ts[i],
            Times::Grid {
                first,
                step,
                breaks,
                ..
            } => {
                let k = breaks.partition_point(|&(at, _)| at <= i);
                let (at, t) = k.checked_sub(1).map_or((0, first), |k| breaks[k]);
                // Wrapping as `grid_step` compares: the same exact timestamps.
                t.wrapping_add((i - at) as i64 * step)
            }
        }
    }

    /// The first index of `range` whose timestamp is not below `t` (its end if none is).
    pub fn first_at_or_after(&self, range: Range<usize>, t: i64) -> usize {
        match *self {
            Times::Listed(ts) => range.start + ts[range].partition_point(|&x| x < t),
            Times::Grid { .. } => {
                let (mut lo, mut hi) = (range.start, range.end);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if self.get(mid) < t {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                lo
            }
        }
    }

    /// Cuts `range` into the stretches that [`PointsAt::read`] reads at once: `range`
    /// itself, but at the breaks of a grid.
    pub fn stretches(&self, range: Range<usize>, mut stretch: impl FnMut(Range<usize>)) {
        if range.is_empty() {
            return;
        }
        let Times::Grid { breaks, .. } = *self else {
            return stretch(range);
        };
        let mut start = range.start;
        let inside = breaks.partition_point(|&(at, _)| at <= range.start);
        for &(at, _) in &breaks[inside..] {
            if at >= range.end {
                break;
            }
            stretch(start..at);
            start = at;
        }
        stretch(start..range.end)
    }

    /// Appends every timestamp to `ts`.
    pub fn extend(&self, ts: &mut Vec<i64>) {
        match *self {
            Times::Listed(listed) => ts.extend_from_slice(listed),
            Times::Grid { n, step, .. } => {
                ts.reserve(n);
                self.stretches(0..n, |r| {
                    let first = self.get(r.start);
                    let grid =
                        (0..r.len() as i64).map(|k| first.wrapping_add(k.wrapping_mul(step)));
                    ts.extend(grid);
                });
            }
        }
    }

    /// The times of `ts` as stored in the form `form`, the grid's breaks found into `breaks`:
    /// what a page's sink is handed for a series spooled so (for tests that spool by hand).
    #[cfg(test)]
    pub(crate) fn of<'a>(
        ts: &'a [i64],
        form: TsAt,
        breaks: &'a mut Vec<(usize, i64)>,
    ) -> Times<'a> {
        let step = match form {
            TsAt::At(_) => return Times::Listed(ts),
            TsAt::Grid { step } | TsAt::Broken { step } => step,
        };
        breaks.clear();
        breaks.extend(grid_breaks(ts, step));
        Times::Grid {
            first: ts.first().copied().unwrap_or(0),
            step,
            n: ts.len(),
            breaks,
        }
    }
}

/// The step of `ts` if it is a regular grid (any one or no point is one).
pub(super) fn grid_step(ts: &[i64]) -> Option<i64> {
    let step = match ts {
        [a, b, ..] => b.checked_sub(*a)?,
        _ => 0,
    };
    ts.windows(2)
        .all(|w| w[1].wrapping_sub(w[0]) == step)
        .then_some(step)
}

/// The step of a grid with breaks that `ts` is on, and how many breaks, if it has few enough to
/// keep its timestamps out of the file: strictly increasing timestamps, whose smallest distance
/// is the step, and a break wherever the distance is another.
pub(super) fn broken_grid(ts: &[i64]) -> Option<(i64, usize)> {
    let mut step = i64::MAX;
    for w in ts.windows(2) {
        step = step.min(w[1].checked_sub(w[0]).filter(|&d| d > 0)?);
    }
    let breaks = grid_breaks(ts, step).count();
    (breaks <= ts.len() / MIN_BREAK_SPACING).then_some((step, breaks))
}

/// Where the grid of `step` that `ts` is on breaks: the index of each point that is not one
/// step after the point before it, and its timestamp (what a header lists, [`Times::Grid`]).
pub(crate) fn grid_breaks(ts: &[i64], step: i64) -> impl Iterator<Item = (usize, i64)> + '_ {
    let after = ts.windows(2).enumerate();
    after.filter_map(move |(k, w)| (w[1].wrapping_sub(w[0]) != step).then_some((k + 1, w[1])))
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;

    #[test]
    fn grids_are_found_exactly() {
        assert_eq!(grid_step(&[]), Some(0));
        assert_eq!(grid_step(&[5]), Some(0));
        assert_eq!(grid_step(&[5, 7, 9]), Some(2));
        assert_eq!(grid_step(&[5, 7, 10]), None);
        assert_eq!(
            grid_step(&[i64::MIN, i64::MAX]),
            None,
            "a step that overflows"
        );
    }

    #[test]
    fn a_grid_with_breaks_needs_few_of_them_and_increasing_timestamps() {
        let minutes = |n: i64| (0..n).map(|k| k * 60_000).collect::<Vec<i64>>();
        let mut ts = minutes(640);
        ts.drain(100..103);
        ts.remove(400);
        assert_eq!(broken_grid(&ts), Some((60_000, 2)));
        // One break in fewer than 64 points is too many.
        let mut ts = minutes(640);
        for at in (0..10).map(|k| 600 - 60 * k) {
            ts.remove(at);
        }
        assert_eq!(ts.len(), 630);
        assert_eq!(broken_grid(&ts), None, "10 breaks in 630 points");
        // The smallest distance is the step, wherever it first appears.
        let mut ts: Vec<i64> = (0..640).map(|k| k * 60_000).collect();
        ts.remove(1);
        assert_eq!(broken_grid(&ts), Some((60_000, 1)));
        let mut same = minutes(640);
        same[300] = same[299];
        assert_eq!(broken_grid(&same), None, "a repeated timestamp");
        let mut back = minutes(640);
        back.swap(300, 301);
        assert_eq!(broken_grid(&back), None, "out of order");
        let mut huge = minutes(640);
        huge[639] = i64::MAX;
        huge[0] = i64::MIN;
        assert_eq!(broken_grid(&huge), None, "a distance that overflows");
    }

    #[test]
    #[allow(
        clippy::single_range_in_vec_init,
        reason = "the stretches are ranges, one of them"
    )]
    fn a_broken_grid_is_read_a_stretch_at_a_time() {
        let ts = [0, 10, 20, 50, 60, 100];
        let cut = |form: TsAt, range: Range<usize>| {
            let mut got = Vec::new();
            let mut breaks = Vec::new();
            let times = Times::of(&ts, form, &mut breaks);
            times.stretches(range, |r| got.push(r));
            // The times say every timestamp as it was.
            assert_eq!((0..ts.len()).map(|i| times.get(i)).collect::<Vec<_>>(), ts);
            got
        };
        let broken = TsAt::Broken { step: 10 };
        assert_eq!(cut(broken, 0..6), [0..3, 3..5, 5..6]);
        assert_eq!(cut(broken, 1..5), [1..3, 3..5], "a partition's share");
        assert!(cut(broken, 3..3).is_empty(), "nothing");
        assert_eq!(cut(TsAt::At(0), 0..6), [0..6]);
        let grid = [0, 10, 20, 30];
        let mut breaks = Vec::new();
        let times = Times::of(&grid, TsAt::Grid { step: 10 }, &mut breaks);
        let mut got = Vec::new();
        times.stretches(1..4, |r| got.push(r));
        assert_eq!(got, [1..4]);
        assert_eq!((0..4).map(|i| times.get(i)).collect::<Vec<_>>(), grid);
    }
}
