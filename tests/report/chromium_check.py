"""Renders a report's HTML in a real headless Chromium and checks what a reader would see.

    python chromium_check.py CHROMIUM report.html screenshot.png [SECTION_ID ...]

- the page logs no console message of level warning or error (Chromium's own log, on stderr),
  which also catches anything the page's Content-Security-Policy refused to load;
- the page names no external resource (no `src`/`href`/`url()` but fragments and `data:`, and no
  `http(s)://` but the SVG namespace);
- every section given is in the rendered DOM with a chart (an `<svg>` that draws shapes);
- a screenshot at laptop size (1366x900) is not blank: many pixels that are not background, in
  several colours.

Before checking the report, it proves it can fail: a page that logs a console error and one that
tries to load an image from the network must both be caught. Exits 1 with the reasons on failure.
"""

import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1366,900",
    "--enable-logging=stderr",
    "--v=0",
]
TIMEOUT = 120


def chromium(binary, url, *extra):
    with tempfile.TemporaryDirectory() as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *extra, url]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        return p.returncode, p.stdout, p.stderr


def console_messages(stderr):
    """The page's console messages, from Chromium's log (`...:CONSOLE(line)] "text", source: ...`)."""
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


def load_png(path):
    """(width, height, rows of RGB(A) tuples) of an 8-bit RGB or RGBA PNG, with the standard library."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), f"PNG depth {depth} colour type {colour}"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    i = 0
    for _ in range(height):
        kind = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pr) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def screenshot_problems(path):
    width, height, channels, rows = load_png(path)
    problems = []
    if (width, height) != (1366, 900):
        problems.append(f"screenshot is {width}x{height}, not 1366x900")
    inked, colours = 0, set()
    for row in rows[::3]:
        for x in range(0, width * channels, channels * 3):
            rgb = row[x : x + 3]
            colours.add(bytes(v & 0xF0 for v in rgb))
            if min(rgb) < 200:
                inked += 1
    sampled = len(rows[::3]) * len(range(0, width * channels, channels * 3))
    if inked < sampled * 0.01:
        problems.append(f"screenshot is nearly blank ({inked} of {sampled} sampled pixels drawn)")
    if len(colours) < 8:
        problems.append(f"screenshot has only {len(colours)} colours")
    return problems


def page_problems(binary, path, sections):
    problems = []
    url = "file://" + os.path.abspath(path)
    code, dom, stderr = chromium(binary, url, "--dump-dom")
    if code != 0:
        problems.append(f"chromium exited {code}: {stderr[-2000:]}")
    for line in console_messages(stderr):
        problems.append(f"console: {line.strip()}")
    with open(path, encoding="utf-8") as f:
        html = f.read()
    for m in re.finditer(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html):
        if not (m.group(1).startswith("#") or m.group(1).startswith("data:")):
            problems.append(f"external reference: {m.group(0)}")
    for m in re.finditer(r"url\(([^)]*)\)", html):
        if not m.group(1).strip("'\" ").startswith(("#", "data:")):
            problems.append(f"external reference: {m.group(0)}")
    for m in re.finditer(r"https?://[^\s\"'<>)]+", html):
        if m.group(0) != "http://www.w3.org/2000/svg":
            problems.append(f"network address in the page: {m.group(0)}")
    if "<script" in html.lower():
        problems.append("the page has a script")
    for section in sections:
        start = dom.find(f'<section id="{section}"')
        if start < 0:
            problems.append(f"section {section} is not in the rendered page")
            continue
        end = dom.find("</section>", start)
        body = dom[start:end]
        charts = re.findall(r"<svg\b.*?</svg>", body, flags=re.S)
        drawn = [c for c in charts if len(re.findall(r"<(?:polyline|rect|circle|line)\b", c)) >= 5]
        if not drawn:
            problems.append(f"section {section} has no chart drawn ({len(charts)} svg elements)")
    return problems


def self_test(binary):
    """The checks catch what they are meant to: a console error, a blocked network load."""
    csp = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
    failures = []
    with tempfile.TemporaryDirectory() as d:
        noisy = os.path.join(d, "noisy.html")
        with open(noisy, "w") as f:
            f.write("<!DOCTYPE html><html><body><script>console.error('planted error')</script></body></html>")
        _, _, stderr = chromium(binary, "file://" + noisy, "--dump-dom")
        if not any("planted error" in m for m in console_messages(stderr)):
            failures.append("a console.error was not seen in Chromium's log")
        fetching = os.path.join(d, "fetching.html")
        with open(fetching, "w") as f:
            f.write(f"<!DOCTYPE html><html><head>{csp}</head><body><img src=\"http://127.0.0.1:9/x.png\"></body></html>")
        _, _, stderr = chromium(binary, "file://" + fetching, "--dump-dom")
        if not console_messages(stderr):
            failures.append("a network load refused by the CSP was not seen in Chromium's log")
    return failures


def main():
    binary, path, png, *sections = sys.argv[1:]
    problems = [f"self-test: {p}" for p in self_test(binary)]
    problems += page_problems(binary, path, sections)
    code, _, stderr = chromium(binary, "file://" + os.path.abspath(path), f"--screenshot={png}")
    if code != 0 or not os.path.exists(png):
        problems.append(f"no screenshot (exit {code}): {stderr[-2000:]}")
    else:
        problems += screenshot_problems(png)
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"ok: {len(sections)} sections with charts, no console message, no network, screenshot drawn")


if __name__ == "__main__":
    main()
