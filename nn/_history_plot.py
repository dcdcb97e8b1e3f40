"""Line charts of per-epoch values drawn with Pillow alone, for ``History.plot``.

Training runs on servers without matplotlib, so the chart is drawn with ``ImageDraw``:
one panel per quantity (loss, then each metric), each with axes, ticks, axis labels and a
legend telling the training line from the evaluation line. The PNG is written atomically.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, PANEL_HEIGHT = 760, 250
LEFT, RIGHT, TOP, BOTTOM = 78, 24, 34, 48
COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
AXIS, GRID, TEXT = (60, 60, 60), (225, 225, 225), (20, 20, 20)


@dataclass
class Series:
    label: str
    xs: list[float]
    ys: list[float | None]


@dataclass
class Panel:
    title: str
    ylabel: str
    series: list[Series] = field(default_factory=list)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering ``[low, high]``."""
    if not high > low:
        return [low]
    raw = (high - low) / max(most - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    count = int(math.floor((high - first) / step + 1e-9)) + 1
    return [round(first + i * step, 12) for i in range(count)]


def _label(value: float) -> str:
    return f"{value:.4g}" if value != int(value) or abs(value) >= 1e5 else str(int(value))


def _value_range(panel: Panel) -> tuple[float, float]:
    values = [y for s in panel.series for y in s.ys if y is not None and math.isfinite(y)]
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or max(abs(high) * 0.1, 0.5)
    return low - pad, high + pad


def _draw_panel(image: Image.Image, panel: Panel, top: int, x_range: tuple[float, float]) -> None:
    draw = ImageDraw.Draw(image)
    small, title_font = _font(12), _font(14)
    x0, x1 = LEFT, WIDTH - RIGHT
    y0, y1 = top + TOP, top + PANEL_HEIGHT - BOTTOM
    y_low, y_high = _value_range(panel)
    x_low, x_high = x_range

    def px(x: float) -> float:
        return x0 + (x - x_low) / (x_high - x_low) * (x1 - x0)

    def py(y: float) -> float:
        return y1 - (y - y_low) / (y_high - y_low) * (y1 - y0)

    for tick in nice_ticks(y_low, y_high):
        y = py(tick)
        draw.line([(x0, y), (x1, y)], fill=GRID)
        draw.line([(x0 - 5, y), (x0, y)], fill=AXIS)
        draw.text((x0 - 8, y), _label(tick), fill=TEXT, font=small, anchor="rm")
    first_epoch, last_epoch = math.ceil(x_low), math.floor(x_high)
    for tick in nice_ticks(first_epoch, last_epoch, most=min(11, last_epoch - first_epoch + 1)):
        x = px(tick)
        draw.line([(x, y1), (x, y1 + 5)], fill=AXIS)
        draw.text((x, y1 + 8), str(int(tick)), fill=TEXT, font=small, anchor="mt")
    draw.rectangle([x0, y0, x1, y1], outline=AXIS)
    draw.text(((x0 + x1) / 2, top + 8), panel.title, fill=TEXT, font=title_font, anchor="mt")
    draw.text(((x0 + x1) / 2, y1 + 28), "epoch", fill=TEXT, font=small, anchor="mt")
    _vertical_text(image, panel.ylabel, (16, (y0 + y1) // 2), small)

    points: list[tuple[float, float]] = []
    for color, series in zip(COLORS * 4, panel.series):
        run: list[tuple[float, float]] = []
        for x, y in [*zip(series.xs, series.ys), (None, None)]:
            if x is not None and y is not None and math.isfinite(y):
                run.append((px(x), py(y)))
                continue
            if len(run) > 1:
                draw.line(run, fill=color, width=2, joint="curve")
            for cx, cy in run:
                draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=color)
            points.extend(run)
            run = []
    _legend(draw, panel, (x0, y0, x1, y1), points, small)


def _vertical_text(image: Image.Image, text: str, center: tuple[int, int], font) -> None:
    box = ImageDraw.Draw(image).textbbox((0, 0), text, font=font)
    label = Image.new("RGBA", (box[2] - box[0] + 4, box[3] - box[1] + 4), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((2 - box[0], 2 - box[1]), text, fill=TEXT, font=font)
    label = label.rotate(90, expand=True)
    image.paste(label, (center[0] - label.width // 2, center[1] - label.height // 2), label)


def _legend(draw: ImageDraw.ImageDraw, panel: Panel, plot_box: tuple[int, int, int, int],
            points: list[tuple[float, float]], font) -> None:
    """A boxed key in whichever corner of the plot covers the fewest data points."""
    if not panel.series:
        return
    row = 16
    width = int(max(draw.textlength(s.label, font=font) for s in panel.series)) + 34
    height = row * len(panel.series) + 6
    x0, y0, x1, y1 = plot_box
    corners = [(x1 - 8 - width, y0 + 8), (x1 - 8 - width, y1 - 8 - height),
               (x0 + 8, y0 + 8), (x0 + 8, y1 - 8 - height)]

    def covered(corner: tuple[float, float]) -> int:
        left, top = corner
        return sum(left - 4 <= x <= left + width + 4 and top - 4 <= y <= top + height + 4
                   for x, y in points)

    left, top = min(corners, key=covered)
    draw.rectangle([left, top, left + width, top + height], fill="white", outline=AXIS)
    for i, (color, series) in enumerate(zip(COLORS * 4, panel.series)):
        y = top + 11 + i * row
        draw.line([(left + 6, y), (left + 24, y)], fill=color, width=2)
        draw.text((left + 28, y), series.label, fill=TEXT, font=font, anchor="lm")


def render(panels: list[Panel], path: str | os.PathLike) -> Path:
    """Draw ``panels`` stacked vertically and write them to ``path`` as a PNG, atomically."""
    if not panels:
        raise ValueError("plot: there is nothing to draw yet (no epoch recorded)")
    xs = [x for p in panels for s in p.series for x in s.xs]
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    margin = max((x_high - x_low) * 0.03, 0.5 if x_high == x_low else 0.0)
    x_low, x_high = x_low - margin, x_high + margin
    image = Image.new("RGB", (WIDTH, PANEL_HEIGHT * len(panels)), "white")
    for i, panel in enumerate(panels):
        _draw_panel(image, panel, i * PANEL_HEIGHT, (x_low, x_high))
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        image.save(temporary, format="PNG")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
