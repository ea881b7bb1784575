#!/usr/bin/env python3
"""Runs the PyTorch yardstick (../shared/bench/torch_clip_bench.py, which builds its tensors on the CPU) on another
device, e.g. a GPU, unchanged: the model and every tensor are made on --device (torch.set_default_device), and the
yardstick's seeded CPU generators draw their batches on the CPU before the batch moves there. Its timings stay
honest on a GPU because every step ends in .item() or int(), which waits for the device. Test infrastructure only.

    python3 .ci/yardstick/torch_on_device.py --device cuda --mode train --batch 128 --steps 10 --warmup 3 <shape flags>
"""
import os, runpy, sys

import torch

YARDSTICK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "bench",
                         "torch_clip_bench.py")


def main():
    args = sys.argv[1:]
    device = "cpu"
    if "--device" in args:
        i = args.index("--device")
        device = args[i + 1]
        del args[i:i + 2]
    if device != "cpu":
        torch.set_default_device(device)  # PyTorch 2.0 or later
    for name in ("rand", "randint"):
        draw = getattr(torch, name)

        def on_device(*a, _draw=draw, generator=None, **k):
            if generator is None:
                return _draw(*a, **k)
            return _draw(*a, generator=generator, device=generator.device, **k).to(device)

        setattr(torch, name, on_device)
    sys.argv = [YARDSTICK] + args
    runpy.run_path(YARDSTICK, run_name="__main__")


if __name__ == "__main__":
    main()
