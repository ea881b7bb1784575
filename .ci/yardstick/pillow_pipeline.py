#!/usr/bin/env python3
"""Yardstick for mmpoison's JPEG pipeline: Pillow + torchvision, single-threaded, on the JPEGs of a folder.

Test infrastructure only (the product never imports it). Each image goes through OpenAI's CLIP preprocessing:

    Compose([Resize(224, BICUBIC), CenterCrop(224), ToTensor(), Normalize(mean, std)])(Image.open(f).convert("RGB"))

one warm-up pass, then --passes timed passes over the sorted *.jpg files; prints one line
"pillow images/s R images/cpu-s C passes P images N" (C: per second of the process's CPU time). With --digests FILE it also writes, per file, the SHA-256 of the 224×224×3
uint8 pixels before ToTensor (HWC, C order), which imageprep's TestBenchDigests compares with its own.

Debian 12: apt-get install python3-pil python3-torchvision (Pillow 9.4.0, torchvision 0.14.1); run with
/usr/bin/python3.
"""
import argparse
import glob
import hashlib
import os
import time

import numpy
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="folder of *.jpg files")
    ap.add_argument("--passes", type=int, default=3, help="timed passes over the files (default 3; 0: digests only)")
    ap.add_argument("--digests", help="write 'NAME SHA256' of each file's uint8 crop to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    files = sorted(glob.glob(os.path.join(args.dir, "*.jpg")))
    if not files:
        raise SystemExit(f"no *.jpg in {args.dir}")
    geometry = transforms.Compose([transforms.Resize(224, interpolation=InterpolationMode.BICUBIC),
                                   transforms.CenterCrop(224)])
    tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])

    def one(f):
        return tensor(geometry(Image.open(f).convert("RGB")))

    if args.digests:
        with open(args.digests, "w") as out:
            for f in files:
                pix = numpy.ascontiguousarray(numpy.asarray(geometry(Image.open(f).convert("RGB")), dtype=numpy.uint8))
                out.write(f"{os.path.basename(f)} {hashlib.sha256(pix.tobytes()).hexdigest()}\n")
    if args.passes <= 0:
        return
    for f in files:  # warm-up
        one(f)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.passes):
        for f in files:
            one(f)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    n = args.passes * len(files)
    print(f"pillow images/s {n / dt:.1f} images/cpu-s {n / dc:.1f} passes {args.passes} images {len(files)}")


if __name__ == "__main__":
    main()
