//! `etmem-scan --heatmap FILE.svg`: a picture of access heat over time, as damo draws for
//! DAMON. Address runs down (the scanned VMAs one under another, each labelled with its
//! range and name), time runs right (one column per scan pass), and a cell's colour is
//! the mean count its resident pages gained in that pass (+1 accessed, +3 written, spec
//! §6.2); grey where none of its pages was resident. One panel per process.
//!
//! The SVG carries the layout for scripts: each VMA's band is a `<g class="vma">` with
//! `data-start`/`data-end` (hex addresses) and `data-y0`/`data-y1` (pixels), and the plot
//! area's columns span `data-x0`..`data-x1` of its `<g class="plot">`.

use std::fmt::Write;

use super::scan_text::mapping;
use crate::track::{Run, VmaCounts};
use crate::types::Pid;

/// Pixels of plot height shared out among a panel's VMAs by size.
const PLOT_PX: f64 = 480.0;
/// The least height of one VMA's band, so every VMA can be seen and named.
const MIN_BAND_PX: f64 = 14.0;
/// The plot's width; each pass gets an equal share.
const PLOT_W: f64 = 600.0;
/// Left margin, for the VMA labels.
const LABEL_W: f64 = 300.0;
/// Room right of the plot, for the legend.
const LEGEND_W: f64 = 110.0;
/// Room above a panel (its title) and below it (the time axis).
const TOP: f64 = 46.0;
const BOTTOM: f64 = 44.0;
/// The longest mapping name in a label, in characters.
const NAME_MAX: usize = 20;
/// The colour of a cell with no resident page.
const ABSENT: &str = "#d9d9d9";
/// The colour scale, from no access to the most seen (a perceptual dark-to-bright ramp).
const RAMP: [(u8, u8, u8); 5] = [
    (0, 0, 4),
    (87, 16, 110),
    (188, 55, 84),
    (249, 142, 9),
    (252, 255, 164),
];

/// The heat over time of the processes scanned.
#[derive(Debug, Default)]
pub struct Heatmap {
    panels: Vec<Panel>,
    interval_s: f64,
}

/// One process: its VMAs' bands and, per pass, each bin's mean gain.
#[derive(Debug)]
struct Panel {
    title: String,
    bands: Vec<Band>,
    /// The runs of each VMA after the previous pass (what the gain is counted from).
    prev: Vec<Vec<Run>>,
    /// Per pass, per bin of every band in order: the mean count gained by its resident
    /// base pages, `None` if none was resident.
    frames: Vec<Vec<Option<f64>>>,
}

/// One VMA's part of the address axis, cut into equal bins.
#[derive(Debug)]
struct Band {
    start: u64,
    end: u64,
    name: String,
    bin_bytes: u64,
    bins: usize,
    height: f64,
}

impl Heatmap {
    /// A heat map of passes `interval_s` seconds apart.
    pub fn new(interval_s: f64) -> Heatmap {
        Heatmap {
            panels: Vec::new(),
            interval_s,
        }
    }

    /// Start the panel of process `pid` (`comm`): the passes observed next are its.
    pub fn start_process(&mut self, pid: Pid, comm: &str) {
        self.panels.push(Panel {
            title: format!("pid {pid} ({comm})"),
            bands: Vec::new(),
            prev: Vec::new(),
            frames: Vec::new(),
        });
    }

    /// Name the backend that scanned the current process, in its title.
    pub fn name_backend(&mut self, backend: &str) {
        if let Some(p) = self.panels.last_mut() {
            let _ = write!(p.title, ", backend {backend}");
        }
    }

    /// Take the counts after one pass of the current process.
    pub fn observe(&mut self, counts: &[VmaCounts]) {
        let Some(p) = self.panels.last_mut() else {
            return;
        };
        if p.bands.is_empty() && !counts.is_empty() {
            p.bands = bands(counts);
            p.prev = vec![Vec::new(); counts.len()];
        }
        let mut frame = Vec::with_capacity(p.bands.iter().map(|b| b.bins).sum());
        for ((c, band), prev) in counts.iter().zip(&p.bands).zip(p.prev.iter_mut()) {
            let now: Vec<Run> = c.runs().collect();
            let mut gained = vec![0u64; band.bins];
            let mut resident = vec![0u64; band.bins];
            for_each_gain(&now, prev, |from, to, gain| {
                band.spread(from, to, |bin, pages| {
                    resident[bin] += pages;
                    gained[bin] += pages * u64::from(gain);
                });
            });
            frame.extend(
                gained
                    .iter()
                    .zip(&resident)
                    .map(|(&g, &r)| (r > 0).then(|| g as f64 / r as f64)),
            );
            *prev = now;
        }
        p.frames.push(frame);
    }

    /// The SVG document.
    pub fn svg(&self) -> String {
        let max = self
            .panels
            .iter()
            .flat_map(|p| p.frames.iter().flatten().flatten())
            .fold(1.0f64, |m, &v| m.max(v));
        let heights: Vec<f64> = self
            .panels
            .iter()
            .map(|p| TOP + p.bands.iter().map(|b| b.height).sum::<f64>() + BOTTOM)
            .collect();
        let total_h = 30.0 + heights.iter().sum::<f64>();
        let total_w = LABEL_W + PLOT_W + LEGEND_W;
        let mut o = String::new();
        let _ = writeln!(
            o,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h:.0}" viewBox="0 0 {total_w} {total_h:.0}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            o,
            r#"<text x="10" y="20" font-size="14">etmem-scan access heat: address down, time right, colour = mean count gained per pass</text>"#
        );
        let mut y = 30.0;
        for (p, h) in self.panels.iter().zip(&heights) {
            p.svg(&mut o, y, max, self.interval_s);
            y += h;
        }
        legend(&mut o, max);
        o.push_str("</svg>\n");
        o
    }
}

impl Panel {
    fn svg(&self, o: &mut String, top: f64, max: f64, interval_s: f64) {
        let y0 = top + TOP;
        let _ = writeln!(
            o,
            r#"<text x="10" y="{:.1}" font-size="12">{}</text>"#,
            top + 20.0,
            escape(&self.title)
        );
        let passes = self.frames.len().max(1);
        let col_w = PLOT_W / passes as f64;
        let _ = writeln!(
            o,
            r#"<g class="plot" data-x0="{LABEL_W}" data-x1="{}">"#,
            LABEL_W + PLOT_W
        );
        let mut y = y0;
        let mut first_bin = 0;
        for band in &self.bands {
            let _ = writeln!(
                o,
                r#"<g class="vma" data-start="{:#x}" data-end="{:#x}" data-y0="{y:.2}" data-y1="{:.2}">"#,
                band.start,
                band.end,
                y + band.height
            );
            let bin_h = band.height / band.bins as f64;
            for (col, frame) in self.frames.iter().enumerate() {
                let x = LABEL_W + col as f64 * col_w;
                let fills: Vec<String> = frame[first_bin..first_bin + band.bins]
                    .iter()
                    .map(|&v| colour(v, max))
                    .collect();
                // Bins of one colour next to each other are drawn as one rectangle.
                let mut bin = 0;
                while bin < band.bins {
                    let fill = &fills[bin];
                    let mut next = bin + 1;
                    while next < band.bins && fills[next] == *fill {
                        next += 1;
                    }
                    let _ = writeln!(
                        o,
                        r#"<rect x="{x:.2}" y="{:.2}" width="{col_w:.2}" height="{:.2}" fill="{fill}"/>"#,
                        y + bin as f64 * bin_h,
                        (next - bin) as f64 * bin_h
                    );
                    bin = next;
                }
            }
            o.push_str("</g>\n");
            let mid = y + band.height / 2.0 + 4.0;
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{mid:.1}" text-anchor="end">{:x}-{:x} {}</text>"#,
                LABEL_W - 6.0,
                band.start,
                band.end,
                escape(&band.name)
            );
            let _ = writeln!(
                o,
                r##"<line x1="{LABEL_W}" y1="{y:.2}" x2="{}" y2="{y:.2}" stroke="#ffffff" stroke-width="0.5"/>"##,
                LABEL_W + PLOT_W
            );
            y += band.height;
            first_bin += band.bins;
        }
        o.push_str("</g>\n");
        // The time axis: a tick at the end of each pass (at most about ten labelled).
        let _ = writeln!(
            o,
            r##"<line x1="{LABEL_W}" y1="{y:.2}" x2="{}" y2="{y:.2}" stroke="#000"/>"##,
            LABEL_W + PLOT_W
        );
        let every = passes.div_ceil(10);
        for pass in (0..passes).filter(|p| (p + 1) % every == 0 || *p == 0) {
            let x = LABEL_W + (pass as f64 + 1.0) * col_w;
            let _ = writeln!(
                o,
                r##"<line x1="{x:.2}" y1="{y:.2}" x2="{x:.2}" y2="{:.2}" stroke="#000"/><text x="{x:.2}" y="{:.2}" text-anchor="middle">{}</text>"##,
                y + 4.0,
                y + 16.0,
                seconds((pass + 1) as f64 * interval_s)
            );
        }
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.2}" text-anchor="middle">time since the scan began (s)</text>"#,
            LABEL_W + PLOT_W / 2.0,
            y + 32.0
        );
        let _ = writeln!(
            o,
            r#"<text x="10" y="{:.2}">VMA (address range, mapping)</text>"#,
            y0 - 8.0
        );
    }
}

impl Band {
    /// Call `f(bin, pages)` for the base pages of `from..to` (within the band) in each
    /// bin they fall in.
    fn spread(&self, from: u64, to: u64, mut f: impl FnMut(usize, u64)) {
        let mut at = from.max(self.start);
        let to = to.min(self.end);
        while at < to {
            let bin = (((at - self.start) / self.bin_bytes) as usize).min(self.bins - 1);
            let bin_end = (self.start + (bin as u64 + 1) * self.bin_bytes).min(self.end);
            let end = to.min(bin_end).max(at + 1);
            f(bin, (end - at).div_ceil(4096));
            at = end;
        }
    }
}

/// The bands of the VMAs of `counts`: heights by size, at least [`MIN_BAND_PX`], and a
/// bin per pixel (or per page, for a VMA of fewer pages).
fn bands(counts: &[VmaCounts]) -> Vec<Band> {
    let total: u64 = counts.iter().map(|c| c.vma().range.len()).sum();
    counts
        .iter()
        .map(|c| {
            let r = c.vma().range;
            let height = (PLOT_PX * r.len() as f64 / total.max(1) as f64)
                .max(MIN_BAND_PX)
                .round();
            let pages = r.len().div_ceil(4096).max(1);
            let bins = (height as u64).min(pages).max(1);
            Band {
                start: r.start,
                end: r.end,
                name: short_name(mapping(&c.vma().path)),
                bin_bytes: pages.div_ceil(bins) * 4096,
                bins: bins as usize,
                height,
            }
        })
        .collect()
}

/// Walk the resident runs `now` against those of the previous pass `prev` (both sorted):
/// `f(from, to, gain)` for each piece of `now` with the count it gained (a page not
/// resident before gained its whole count).
fn for_each_gain(now: &[Run], prev: &[Run], mut f: impl FnMut(u64, u64, u16)) {
    let mut j = 0;
    for r in now {
        let (a, b) = (r.range.start, r.range.end);
        while j < prev.len() && prev[j].range.end <= a {
            j += 1;
        }
        let mut at = a;
        while at < b {
            let (end, before) = match prev.get(j) {
                Some(p) if p.range.start <= at => (b.min(p.range.end), p.count),
                Some(p) => (b.min(p.range.start), 0),
                None => (b, 0),
            };
            f(at, end, r.count.saturating_sub(before));
            at = end;
            if prev.get(j).is_some_and(|p| p.range.end <= at) {
                j += 1;
            }
        }
    }
}

/// The fill of a cell: the ramp at `v / max`, or grey without resident pages.
fn colour(v: Option<f64>, max: f64) -> String {
    let Some(v) = v else {
        return ABSENT.to_string();
    };
    let t = (v / max).clamp(0.0, 1.0) * (RAMP.len() - 1) as f64;
    let i = (t.floor() as usize).min(RAMP.len() - 2);
    let f = t - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (RAMP[i], RAMP[i + 1]);
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

/// The colour scale, right of the plots: 0 at the bottom, `max` at the top, and the
/// grey of "not resident".
fn legend(o: &mut String, max: f64) {
    let x = LABEL_W + PLOT_W + 20.0;
    let (top, h) = (64.0, 200.0);
    let steps = 50;
    let _ = writeln!(
        o,
        r#"<g class="legend"><text x="{x}" y="{:.1}">count/pass</text>"#,
        top - 8.0
    );
    for s in 0..steps {
        let v = max * (steps - s) as f64 / steps as f64;
        let _ = writeln!(
            o,
            r#"<rect x="{x}" y="{:.2}" width="16" height="{:.2}" fill="{}"/>"#,
            top + s as f64 * h / steps as f64,
            h / steps as f64 + 0.5,
            colour(Some(v), max)
        );
    }
    for (v, y) in [
        (max, top + 4.0),
        (max / 2.0, top + h / 2.0 + 4.0),
        (0.0, top + h),
    ] {
        let _ = writeln!(o, r#"<text x="{:.1}" y="{y:.1}">{v:.2}</text>"#, x + 22.0);
    }
    let _ = writeln!(
        o,
        r#"<rect x="{x}" y="{:.1}" width="16" height="12" fill="{ABSENT}"/><text x="{:.1}" y="{:.1}">not resident</text></g>"#,
        top + h + 20.0,
        x + 22.0,
        top + h + 30.0
    );
}

/// A mapping's name for a label: a file's base name, at most [`NAME_MAX`] characters
/// (the label column is narrow; the full path is in etmem-scan's text output).
fn short_name(path: &str) -> String {
    let base = if path.starts_with('/') {
        path.rsplit('/').next().unwrap_or(path)
    } else {
        path
    };
    match base.char_indices().nth(NAME_MAX) {
        Some((cut, _)) => format!("{}…", &base[..cut]),
        None => base.to_string(),
    }
}

/// Seconds for an axis label: whole when whole.
fn seconds(s: f64) -> String {
    if (s - s.round()).abs() < 1e-9 {
        format!("{}", s.round())
    } else {
        format!("{s:.1}")
    }
}

/// `text` for SVG character data.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PageSize, Range};

    fn run(start: u64, end: u64, count: u16) -> Run {
        Run {
            range: Range::new(start, end),
            size: PageSize::Base,
            count,
        }
    }

    #[test]
    fn gains_are_counted_against_the_previous_pass() {
        let prev = [run(0x1000, 0x3000, 1), run(0x5000, 0x6000, 2)];
        let now = [run(0x0000, 0x4000, 2), run(0x5000, 0x6000, 2)];
        let mut got = Vec::new();
        for_each_gain(&now, &prev, |a, b, g| got.push((a, b, g)));
        assert_eq!(
            got,
            [
                (0x0000, 0x1000, 2),
                (0x1000, 0x3000, 1),
                (0x3000, 0x4000, 2),
                (0x5000, 0x6000, 0)
            ]
        );
    }

    #[test]
    fn pages_spread_over_the_bins_they_fall_in() {
        let band = Band {
            start: 0x10000,
            end: 0x20000,
            name: String::new(),
            bin_bytes: 0x4000,
            bins: 4,
            height: 16.0,
        };
        let mut got = Vec::new();
        band.spread(0x13000, 0x19000, |bin, pages| got.push((bin, pages)));
        assert_eq!(got, [(0, 1), (1, 4), (2, 1)]);
    }

    #[test]
    fn colours_run_from_dark_to_bright_and_grey_for_absent() {
        assert_eq!(colour(Some(0.0), 4.0), "#000004");
        assert_eq!(colour(Some(4.0), 4.0), "#fcffa4");
        assert_eq!(colour(None, 4.0), ABSENT);
        assert_eq!(seconds(2.0), "2");
        assert_eq!(seconds(0.5), "0.5");
        assert_eq!(escape("a<b>&"), "a&lt;b&gt;&amp;");
        assert_eq!(
            short_name("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            "libc.so.6"
        );
        assert_eq!(short_name("[heap]"), "[heap]");
        assert_eq!(
            short_name("/x/a_very_long_library_name.so"),
            "a_very_long_library_…"
        );
    }
}
