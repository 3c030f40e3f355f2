"""``python -m videochat.train RECIPE [key=value ...]`` — the torchrun entry point.

Single node:  torchrun --nproc_per_node 8 -m videochat.train stage2 data_dir=/data
Multi-node:   torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d \\
                  --rdzv-endpoint HOST:29500 --rdzv-id job1 -m videochat.train stage2 …
(run the same command on every node; HOST is any one of them, reachable from all).
"""

from __future__ import annotations

import sys

from videochat.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
