//! The report's charts as inline SVG: lines over time, horizontal bars and scatter plots, with
//! axes, tick labels, units and legends. Written here rather than with a chart crate: `plotters`
//! needs a font backend to lay out text (or draws none), and `charming` renders through the
//! ECharts script, which a self-contained, script-free page cannot load. Text uses the page's
//! font through CSS, so no font is embedded or fetched.

use std::fmt::Write;

use chrono::DateTime;

use super::model::{BarChart, Chart, LineChart, ScatterChart};

/// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies and in print.
const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#6B6B6B", "#B8860B",
];
const WIDTH: f64 = 720.0;
const DAY_MS: i64 = 86_400_000;

pub fn render(chart: &Chart) -> String {
    match chart {
        Chart::Lines(c) => lines(c),
        Chart::Bars(c) => bars(c),
        Chart::Scatter(c) => scatter(c),
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Up to `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// Round tick values covering `[lo, hi]`: steps of 1, 2 or 5 × 10^k, about `count` of them.
fn ticks(lo: f64, hi: f64, count: usize) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, lo + 1.0)
    };
    let raw = (hi - lo) / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).floor() * step;
    let last = (hi / step).ceil() * step;
    let mut values = Vec::new();
    let mut v = first;
    while v <= last + step * 1e-9 {
        values.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    (first, last, values)
}

fn number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A value as written beside its bar: three significant digits at least.
fn number_exact(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A legend laid out in rows under the plot; returns its height.
fn legend(out: &mut String, items: &[(String, &str, bool)], x0: f64, y0: f64) -> f64 {
    let (mut x, mut y) = (x0, y0);
    for (name, colour, dashed) in items {
        let label = clip(name, 34);
        let w = 30.0 + 6.6 * label.chars().count() as f64;
        if x + w > WIDTH - 8.0 && x > x0 {
            x = x0;
            y += 18.0;
        }
        let dash = if *dashed {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"3\"{dash}/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"legend\">{}</text>",
            y - 4.0,
            x + 20.0,
            y - 4.0,
            x + 25.0,
            y,
            escape(&label)
        );
        x += w + 10.0;
    }
    y - y0 + 18.0
}

/// A labelled horizontal line across the plot, from `x0` to `x1` at `y`.
fn threshold(out: &mut String, x0: f64, x1: f64, y: f64, label: &str) {
    let _ = write!(
        out,
        "<line x1=\"{x0}\" x2=\"{x1:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"threshold\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick threshold-label\">{}</text>",
        x1 + 4.0,
        y + 4.0,
        escape(label)
    );
}

/// One chart's `<svg>` element: its plot, then its legend below.
fn chart(height: f64, title: &str, plot: &str, legend: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" \
         aria-label=\"{}\"><title>{}</title>",
        escape(title),
        escape(title)
    );
    out.push_str(plot);
    out.push_str(legend);
    out.push_str("</svg>");
    out
}

fn lines(c: &LineChart) -> String {
    let (left, right, top) = (64.0, 86.0, 12.0);
    let plot_h = 240.0;
    let bottom_axis = 44.0;
    let xs = c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (Some(x_min), Some(x_max)) = (xs.clone().min(), xs.max()) else {
        return empty("no data to draw");
    };
    let x_min = x_min.div_euclid(DAY_MS) * DAY_MS;
    let x_max = (x_max + DAY_MS - 1).div_euclid(DAY_MS) * DAY_MS;
    let x_max = if x_max <= x_min {
        x_min + DAY_MS
    } else {
        x_max
    };
    let (y_lo, y_hi) = c.y_range.unwrap_or_else(|| {
        let ys = c.series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
        let lo = ys.clone().fold(f64::INFINITY, f64::min).min(0.0);
        let hi = ys.fold(f64::NEG_INFINITY, f64::max);
        (lo, if hi.is_finite() { hi } else { 1.0 })
    });
    let (y_lo, y_hi, y_ticks) = ticks(y_lo, y_hi, 5);
    let plot_w = WIDTH - left - right;
    let sx = |t: i64| left + (t - x_min) as f64 / (x_max - x_min) as f64 * plot_w;
    let sy = |v: f64| top + plot_h - (v.clamp(y_lo, y_hi) - y_lo) / (y_hi - y_lo) * plot_h;

    let mut body = String::new();
    // Grid and y ticks.
    for v in &y_ticks {
        let y = sy(*v);
        let _ = write!(
            body,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            left + plot_w,
            left - 6.0,
            y + 4.0,
            number(*v)
        );
    }
    // x ticks: every 3 hours over two days or less, else whole UTC days thinned to about 10.
    let days = ((x_max - x_min) / DAY_MS).max(1);
    let (tick, every) = if days <= 2 {
        (3 * 3_600_000, 1)
    } else {
        (DAY_MS, ((days as f64 / 10.0).ceil() as i64).max(1))
    };
    let mut t = x_min;
    let mut i = 0;
    while t <= x_max {
        let x = sx(t);
        if i % every == 0 {
            let _ = write!(
                body,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{:.1}\" class=\"grid\"/>",
                top + plot_h
            );
            let format = if t % DAY_MS == 0 { "%m-%d" } else { "%H:%M" };
            let label = DateTime::from_timestamp_millis(t)
                .map(|d| d.format(format).to_string())
                .unwrap_or_default();
            let _ = write!(
                body,
                "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{label}</text>",
                top + plot_h + 16.0
            );
        }
        t += tick;
        i += 1;
    }
    let _ = write!(
        body,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">date (UTC)</text>\
         <text transform=\"translate(16 {:.1}) rotate(-90)\" class=\"axis\" text-anchor=\"middle\">{} ({})</text>",
        left + plot_w / 2.0,
        top + plot_h + 36.0,
        top + plot_h / 2.0,
        escape(&c.y_label),
        escape(&c.y_unit)
    );
    for (v, label) in &c.thresholds {
        if *v < y_lo || *v > y_hi {
            continue;
        }
        threshold(&mut body, left, left + plot_w, sy(*v), label);
    }
    let mut items = Vec::new();
    let mut colour_index = 0usize;
    for s in &c.series {
        if !s.dashed {
            colour_index = items.len();
        }
        let colour = PALETTE[colour_index % PALETTE.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", sx(*t), sy(*v)))
            .collect();
        let dash = if s.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            body,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash}><title>{}</title></polyline>",
            points.join(" "),
            escape(&s.name)
        );
        if s.points.len() <= 40 && !s.dashed {
            for (t, v) in &s.points {
                let _ = write!(
                    body,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"/>",
                    sx(*t),
                    sy(*v)
                );
            }
        }
        if !s.dashed {
            items.push((s.name.clone(), colour, false));
        }
    }
    // Dashed lines are drawn in their data's colour; one legend entry says what dashes mean.
    if c.series.iter().any(|s| s.dashed) {
        items.push(("fitted line".to_string(), "#6B6B6B", true));
    }
    let _ = write!(
        body,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{plot_w:.1}\" height=\"{plot_h}\" class=\"frame\"/>"
    );
    let mut legend_svg = String::new();
    let legend_h = legend(
        &mut legend_svg,
        &items,
        left,
        top + plot_h + bottom_axis + 14.0,
    );
    let height = top + plot_h + bottom_axis + legend_h + 8.0;
    chart(height, &c.title, &body, &legend_svg)
}

fn bars(c: &BarChart) -> String {
    if c.bars.is_empty() {
        return empty("no data to draw");
    }
    let (left, right, top) = (190.0, 24.0, 8.0);
    let n = c.series.len().max(1) as f64;
    let bar_h = if n > 1.0 { 9.0 } else { 13.0 };
    let group_h = bar_h * n + 7.0;
    let plot_h = group_h * c.bars.len() as f64;
    let plot_w = WIDTH - left - right;
    let max = c
        .bars
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0, f64::max);
    let (_, hi, x_ticks) = ticks(0.0, if max > 0.0 { max } else { 1.0 }, 6);
    let sx = |v: f64| left + v.max(0.0) / hi * plot_w;
    let mut body = String::new();
    for v in &x_ticks {
        let x = sx(*v);
        let _ = write!(
            body,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{:.1}\" class=\"grid\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{}</text>",
            top + plot_h,
            top + plot_h + 15.0,
            number(*v)
        );
    }
    for (g, (label, values)) in c.bars.iter().enumerate() {
        let y0 = top + g as f64 * group_h + 3.5;
        let _ = write!(
            body,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y0 + bar_h * n / 2.0 + 4.0,
            escape(&clip(label, 28))
        );
        for (k, v) in values.iter().enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            let y = y0 + k as f64 * bar_h;
            let _ = write!(
                body,
                "<rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\">\
                 <title>{}: {} {}</title></rect>",
                (sx(*v) - left).max(0.5),
                bar_h - 1.0,
                escape(&format!(
                    "{label} {}",
                    c.series.get(k).map_or("", String::as_str)
                )),
                number(*v),
                escape(&c.unit)
            );
            if values.len() == 1 {
                // One bar a group: its value is written beside it.
                let x = sx(*v);
                let (anchor, x, class) = if x > left + plot_w - 48.0 {
                    ("end", x - 4.0, "tick on-bar")
                } else {
                    ("start", x + 4.0, "tick")
                };
                let _ = write!(
                    body,
                    "<text x=\"{x:.1}\" y=\"{:.1}\" class=\"{class}\" text-anchor=\"{anchor}\">{}</text>",
                    y + bar_h - 3.0,
                    number_exact(*v)
                );
            }
        }
    }
    let _ = write!(
        body,
        "<line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{:.1}\" class=\"axis-line\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{} ({})</text>",
        top + plot_h,
        left + plot_w / 2.0,
        top + plot_h + 34.0,
        escape(&c.x_label),
        escape(&c.unit)
    );
    let mut legend_svg = String::new();
    let legend_h = if c.series.len() > 1 {
        let items: Vec<(String, &str, bool)> = c
            .series
            .iter()
            .enumerate()
            .map(|(k, s)| (s.clone(), PALETTE[k % PALETTE.len()], false))
            .collect();
        legend(&mut legend_svg, &items, left, top + plot_h + 56.0)
    } else {
        0.0
    };
    let height = top + plot_h + 44.0 + legend_h + 8.0;
    chart(height, &c.title, &body, &legend_svg)
}

fn scatter(c: &ScatterChart) -> String {
    let (left, top) = (64.0, 12.0);
    let plot = 300.0;
    let (lo, hi) = c.range;
    let s = |v: f64| (v.clamp(lo, hi) - lo) / (hi - lo) * plot;
    let (_, _, t) = ticks(lo, hi, 5);
    let mut body = String::new();
    for v in &t {
        let (x, y) = (left + s(*v), top + plot - s(*v));
        let _ = write!(
            body,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{:.1}\" class=\"grid\"/>\
             <line x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"middle\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            top + plot,
            left + plot,
            top + plot + 15.0,
            number(*v),
            left - 6.0,
            y + 4.0,
            number(*v)
        );
    }
    for (v, label) in &c.x_lines {
        let x = left + s(*v);
        let _ = write!(
            body,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{:.1}\" class=\"threshold\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"tick threshold-label\">{}</text>",
            top + plot,
            x + 3.0,
            top + 12.0,
            escape(label)
        );
    }
    for (v, label) in &c.y_lines {
        threshold(&mut body, left, left + plot, top + plot - s(*v), label);
    }
    let mut items = Vec::new();
    for (k, (name, points)) in c.classes.iter().enumerate() {
        let colour = class_colour(name, k);
        for (x, y) in points {
            let _ = write!(
                body,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\" fill-opacity=\"0.7\"/>",
                left + s(*x),
                top + plot - s(*y)
            );
        }
        items.push((format!("{name} ({})", points.len()), colour, false));
    }
    let _ = write!(
        body,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{plot}\" height=\"{plot}\" class=\"frame\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{} ({})</text>\
         <text transform=\"translate(16 {:.1}) rotate(-90)\" class=\"axis\" text-anchor=\"middle\">{} ({})</text>",
        left + plot / 2.0,
        top + plot + 36.0,
        escape(&c.x_label),
        escape(&c.unit),
        top + plot / 2.0,
        escape(&c.y_label),
        escape(&c.unit)
    );
    // The legend sits to the right of the square plot.
    for (i, (name, colour, _)) in items.iter().enumerate() {
        let y = top + 30.0 + i as f64 * 22.0;
        let x = left + plot + 60.0;
        let _ = write!(
            body,
            "<circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\" class=\"legend\">{}</text>",
            y - 4.0,
            x + 12.0,
            escape(name)
        );
    }
    chart(top + plot + 48.0, &c.title, &body, "")
}

/// Verdicts keep their meaning's colour in every chart: red undersized, amber oversized.
fn class_colour(name: &str, k: usize) -> &'static str {
    match name {
        "undersized" => "#D55E00",
        "oversized" => "#E69F00",
        "ok" => "#0072B2",
        _ => PALETTE[k % PALETTE.len()],
    }
}

fn empty(message: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} 60\" role=\"img\">\
         <text x=\"{:.0}\" y=\"34\" class=\"axis\" text-anchor=\"middle\">{}</text></svg>",
        WIDTH / 2.0,
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (lo, hi, t) = ticks(0.0, 87.0, 5);
        assert_eq!((lo, hi), (0.0, 100.0));
        assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let (lo, hi, _) = ticks(3.2, 3.2, 5);
        assert!(lo < 3.2 && hi > 3.2);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b>&\"c'\n"), "a&lt;b&gt;&amp;&quot;c&#39; ");
    }
}
