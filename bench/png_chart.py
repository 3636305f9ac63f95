"""A line chart as a PNG, with no plotting library: an RGB canvas, lines, boxes and a 3x5 font.

Only what the benchmark chart needs: series of (x, y) points on a linear y axis from 0, the x
values placed evenly (fleet sizes), a title, axis ticks and a legend.
"""

import struct
import zlib

# 3x5 glyphs, one string of 5 rows of 3 bits per character.
FONT = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001010010010", "8": "111101111101111",
    "9": "111101111001111", "A": "010101111101101", "B": "110101110101110",
    "C": "111100100100111", "D": "110101101101110", "E": "111100110100111",
    "F": "111100110100100", "G": "111100101101111", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101111", "K": "101101110101101",
    "L": "100100100100111", "M": "101111111101101", "N": "110101101101101",
    "O": "111101101101111", "P": "111101111100100", "Q": "111101101111001",
    "R": "110101110101101", "S": "111100111001111", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101",
    "X": "101101010101101", "Y": "101101010010010", "Z": "111001010100111",
    " ": "000000000000000", ".": "000000000000010", "-": "000000111000000",
    "/": "001001010100100", "(": "010100100100010", ")": "010001001001010",
    ":": "000010000010000", ",": "000000000010100", "=": "000111000111000",
    "+": "000010111010000",
}
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)
PALETTE = [(214, 39, 40), (31, 119, 180), (44, 160, 44), (255, 127, 14), (148, 103, 189),
           (127, 127, 127)]


class Canvas:
    def __init__(self, width, height):
        self.width, self.height = width, height
        self.pixels = bytearray(WHITE * (width * height))

    def point(self, x, y, color):
        if 0 <= x < self.width and 0 <= y < self.height:
            offset = 3 * (y * self.width + x)
            self.pixels[offset:offset + 3] = bytes(color)

    def box(self, x0, y0, x1, y1, color):
        for y in range(min(y0, y1), max(y0, y1) + 1):
            for x in range(min(x0, x1), max(x0, x1) + 1):
                self.point(x, y, color)

    def line(self, x0, y0, x1, y1, color, *, width=2):
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for step in range(steps + 1):
            x = round(x0 + (x1 - x0) * step / steps)
            y = round(y0 + (y1 - y0) * step / steps)
            self.box(x, y, x + width - 1, y + width - 1, color)

    def text(self, x, y, text, color=BLACK, scale=2):
        for index, char in enumerate(text.upper()):
            glyph = FONT.get(char, FONT[" "])
            for bit, on in enumerate(glyph):
                if on == "1":
                    left = x + (index * 4 + bit % 3) * scale
                    top = y + (bit // 3) * scale
                    self.box(left, top, left + scale - 1, top + scale - 1, color)

    def png(self):
        raw = b"".join(b"\x00" + bytes(self.pixels[3 * y * self.width:3 * (y + 1) * self.width])
                       for y in range(self.height))

        def chunk(kind, data):
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def line_chart(title, x_labels, series, y_label, *, width=900, height=520):
    """series: [(name, [y or None per x label])]. Returns PNG bytes."""
    canvas = Canvas(width, height)
    left, right, top, bottom = 80, width - 260, 50, height - 60
    values = [v for _, ys in series for v in ys if v is not None]
    y_max = max(values) * 1.1 if values and max(values) > 0 else 1.0
    canvas.text(left, 15, title, scale=3)
    canvas.text(10, top - 20, y_label)
    for tick in range(6):
        value = y_max * tick / 5
        y = bottom - round((bottom - top) * tick / 5)
        canvas.line(left, y, right, y, GREY, width=1)
        canvas.text(10, y - 5, "{:.0f}".format(value))
    canvas.line(left, top, left, bottom, BLACK)
    canvas.line(left, bottom, right, bottom, BLACK)

    def x_at(index):
        return left + round((right - left) * (index + 0.5) / len(x_labels))

    for index, label in enumerate(x_labels):
        canvas.text(x_at(index) - 4 * len(label), bottom + 12, label)
    for number, (name, ys) in enumerate(series):
        color = PALETTE[number % len(PALETTE)]
        points = [(x_at(i), bottom - round((bottom - top) * y / y_max))
                  for i, y in enumerate(ys) if y is not None]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            canvas.line(x0, y0, x1, y1, color)
        for x, y in points:
            canvas.box(x - 3, y - 3, x + 3, y + 3, color)
        legend_y = top + 22 * number
        canvas.box(right + 20, legend_y, right + 34, legend_y + 10, color)
        canvas.text(right + 42, legend_y, name)
    return canvas.png()
