//! `etmem-scan --heatmap`: the SVG it writes, rendered by a real renderer (librsvg's
//! `rsvg-convert`), shows the workload's hot region bright and its cold region dark, in
//! the bands the picture says they are in.

mod common;

use std::process::Command;

use common::workload::Workload;
use common::{run, skip, texts};

/// The `data-NAME="..."` attribute of an SVG element's text.
fn attr<'a>(element: &'a str, name: &str) -> &'a str {
    let key = format!("data-{name}=\"");
    let at = element
        .find(&key)
        .unwrap_or_else(|| panic!("no {key} in {element}"))
        + key.len();
    let len = element[at..].find('"').unwrap();
    &element[at..at + len]
}

/// The band of the VMA holding `addr`: (y0, y1) in pixels.
fn band_of(svg: &str, addr: u64) -> (f64, f64) {
    for el in svg.split("<g class=\"vma\"").skip(1) {
        let el = &el[..el.find('>').unwrap()];
        let hex = |n| u64::from_str_radix(attr(el, n).trim_start_matches("0x"), 16).unwrap();
        if (hex("start")..hex("end")).contains(&addr) {
            return (
                attr(el, "y0").parse().unwrap(),
                attr(el, "y1").parse().unwrap(),
            );
        }
    }
    panic!("no band holds {addr:#x}");
}

/// The RGB pixel at (x, y) of an 8-bit RGB or RGBA PNG.
fn pixel(png_file: &str, x: f64, y: f64) -> (u8, u8, u8) {
    let decoder = png::Decoder::new(std::fs::File::open(png_file).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let channels = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    let at = y as usize * info.line_size + x as usize * channels;
    (buf[at], buf[at + 1], buf[at + 2])
}

fn brightness((r, g, b): (u8, u8, u8)) -> u32 {
    u32::from(r) + u32::from(g) + u32::from(b)
}

#[test]
fn heatmap_shows_the_hot_region_bright_and_the_cold_region_dark() {
    if Command::new("rsvg-convert")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip("rsvg-convert (Debian librsvg2-bin) is not installed");
    }
    let w = Workload::spawn(&["--hot-mib", "16", "--cold-mib", "64"]);
    let (hot, cold) = (w.hot.unwrap(), w.cold.unwrap());
    let dir = std::env::temp_dir().join(format!("etmem-heatmap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg_file = dir.join("heat.svg").display().to_string();
    let png_file = dir.join("heat.png").display().to_string();
    let pid = w.pid.to_string();
    let o = run(&[
        "scan",
        "-p",
        &pid,
        "-l",
        "3",
        "-i",
        "0.3",
        "--heatmap",
        &svg_file,
    ]);
    let (out, err) = texts(&o);
    assert!(o.status.success(), "{out}{err}");
    let svg = std::fs::read_to_string(&svg_file).unwrap();
    assert!(svg.starts_with("<svg "), "{svg}");
    assert!(svg.contains("time since the scan began (s)") && svg.contains("not resident"));
    assert!(
        svg.contains(&format!("{:x}-{:x} [anon]", hot.start, hot.end)),
        "{svg}"
    );
    let r = Command::new("rsvg-convert")
        .args([&svg_file, "-o", &png_file])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let plot = &svg[svg.find("<g class=\"plot\"").unwrap()..];
    let (x0, x1): (f64, f64) = (
        attr(plot, "x0").parse().unwrap(),
        attr(plot, "x1").parse().unwrap(),
    );
    let x = (x0 + x1) / 2.0;
    let (h0, h1) = band_of(&svg, hot.start);
    let (c0, c1) = band_of(&svg, cold.start);
    let hot_px = pixel(&png_file, x, (h0 + h1) / 2.0);
    let cold_px = pixel(&png_file, x, (c0 + c1) / 2.0);
    println!("hot {hot_px:?} at y {h0}..{h1}, cold {cold_px:?} at y {c0}..{c1}");
    // The ramp's top is #fcffa4, its bottom #000004.
    assert!(brightness(hot_px) > 600, "hot region drawn {hot_px:?}");
    assert!(brightness(cold_px) < 60, "cold region drawn {cold_px:?}");
    // A directory that does not exist is refused before the scan, naming it.
    let o = run(&["scan", "-p", &pid, "--heatmap", "/nonexistent-dir/h.svg"]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("/nonexistent-dir is not a directory"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
