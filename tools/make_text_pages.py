#!/usr/bin/python3
"""Render pages of printed text as PP-OCR detection inputs, for calibration and
evaluation of the text detector.

Usage:
    /usr/bin/python3 tools/make_text_pages.py --out FILE.npz [--pages N] [--size S] [--seed K]
    /usr/bin/python3 tools/make_text_pages.py --lines --out FILE.npz [--pages N] [--seed K]

Writes FILE.npz with array `x` float32 [N,3,S,S]: white pages with lines of
random words in DejaVu fonts (Debian's fonts-dejavu-core) of random sizes and
grey levels, normalized as PaddleOCR's detector expects ((v / 255 - mean) / std,
ImageNet mean and std). With --lines: N single lines of text as PaddleOCR's
direction classifier takes them, `x` [N,3,48,192] ((v / 255 - 0.5) / 0.5),
every other one turned upside down, and `labels` int64 [N] (0 upright, 1
turned). Needs python3-pil and numpy.
"""
import argparse
import os
import random
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"]
WORDS = ("model server batch latency quantize tensor kernel accuracy invoice total amount date "
         "address street number order shipping price quantity receipt page chapter section table "
         "figure 2026 42 3.14 #17 A-113 Zone").split()
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def page(size, rng):
    img = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    y = rng.randint(5, 30)
    while y < size - 20:
        font_size = rng.randint(14, 40)
        font = ImageFont.truetype(rng.choice([f for f in FONTS if os.path.exists(f)]), font_size)
        x = rng.randint(5, size // 4)
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))
        grey = rng.randint(0, 90)
        draw.text((x, y), line, fill=(grey, grey, grey), font=font)
        y += int(font_size * rng.uniform(1.4, 2.5))
    v = np.asarray(img, np.float32) / 255.0
    return ((v - MEAN) / STD).transpose(2, 0, 1)


def text_line(rng, turned):
    font = ImageFont.truetype(rng.choice([f for f in FONTS if os.path.exists(f)]), rng.randint(26, 34))
    line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))
    width = int(font.getlength(line)) + 8
    img = Image.new("RGB", (width, 48), (255, 255, 255))
    grey = rng.randint(0, 90)
    ImageDraw.Draw(img).text((4, 4), line, fill=(grey, grey, grey), font=font)
    if turned:
        img = img.rotate(180)
    # Resized to height 48 (already) and at most 192 wide, padded with zeros on the right.
    img = img.resize((min(192, width), 48))
    v = (np.asarray(img, np.float32) / 255.0 - 0.5) / 0.5
    out = np.zeros((48, 192, 3), np.float32)
    out[:, :v.shape[1]] = v
    return out.transpose(2, 0, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--pages", type=int, default=4)
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lines", action="store_true", help="single text lines for the direction classifier")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = args.out + ".tmp.npz"
    if args.lines:
        x = np.stack([text_line(rng, i % 2 == 1) for i in range(args.pages)]).astype(np.float32)
        np.savez(tmp, x=x, labels=np.arange(args.pages, dtype=np.int64) % 2)
    else:
        x = np.stack([page(args.size, rng) for _ in range(args.pages)]).astype(np.float32)
        np.savez(tmp, x=x)
    os.replace(tmp, args.out)
    print("wrote %s: x %s" % (args.out, x.shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
