"""Benchmark training the fusion classifier: seconds to early stop on an Ekman-6-sized cache.

    python benchmarks/train.py [--videos 819] [--rows 16] [--lr 1e-5 ...] [--patience 3]
                               [--epochs 40] [--threads N] [--device cpu] [--cache DIR]

A synthetic feature cache in the extractor's on-disk format (``make_synthetic_feature_set``) with
the reference's feature widths (clip 512, beats / face_emotion / sentiments 768), ``--videos``
training videos (819 like Ekman-6's train split; 10 % held out for validation, stratified) and
``--rows`` rows per sequence feature, is written once into ``--cache``. Then the full model
(d_model 512, about 10.5 M parameters) is trained with the reference's settings (Adam, batch 32,
dropout 0.5) at each ``--lr`` until validation accuracy has not improved for ``--patience``
epochs. The table gives the epochs run, the best epoch, wall and CPU seconds in all and per epoch
(median), and the best validation accuracy. The machine may be shared: CPU seconds (user +
system of this process) are shown beside wall seconds.
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import device_name, table  # noqa: E402

log = logging.getLogger("bench.train")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build_cache(directory: Path, videos: int, rows: int) -> Path:
    from vemoclap.labels import EMOTIONS
    from vemoclap.testing.features import make_synthetic_feature_set

    marker = directory / f".done-{videos}-{rows}"
    if marker.is_file():
        return directory
    base, extra = divmod(videos, len(EMOTIONS))
    counts = {label: base + (1 if i < extra else 0) for i, label in enumerate(EMOTIONS)}
    make_synthetic_feature_set(directory, n_per_class=counts, test_per_class=0, rows=(rows, rows), seed=0)
    marker.touch()
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=819)
    parser.add_argument("--rows", type=int, default=16, help="rows per sequence feature (default 16)")
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-5])
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40, help="most epochs per run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "vemoclap-bench-train")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from vemoclap.training.features import load_feature_set
    from vemoclap.training.train import train

    if args.threads:
        torch.set_num_threads(args.threads)
    cache = build_cache(args.cache / f"cache-{args.videos}-{args.rows}", args.videos, args.rows)
    tick = time.perf_counter()
    feature_set = load_feature_set(cache)
    load_seconds = time.perf_counter() - tick
    print(
        f"{device_name(args.device)}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"cache: {len(feature_set)} videos × {args.rows} rows, loaded in {load_seconds:.1f} s"
    )

    rows = []
    for lr in args.lr:
        out = Path(tempfile.mkdtemp(prefix="vemoclap-bench-train-out-"))
        wall, cpu = time.perf_counter(), cpu_seconds()
        report = train(
            feature_set,
            out,
            lr=lr,
            epochs=args.epochs,
            patience=args.patience,
            batch_size=args.batch_size,
            device=args.device,
            progress=False,
        )
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        per_epoch = statistics.median(r.seconds for r in report.history)
        rows.append(
            {
                "lr": f"{lr:g}",
                "epochs": report.epochs_run,
                "best epoch": report.best_epoch,
                "early stop": "yes" if report.stopped_early else "no (max epochs)",
                "wall s": f"{wall:.1f}",
                "CPU s": f"{cpu:.1f}",
                "s / epoch": f"{per_epoch:.1f}",
                "val acc": f"{report.best_val_accuracy:.3f}",
            }
        )
        print(table(rows[-1:], list(rows[-1])), flush=True)
    print()
    print(
        f"training to early stop (patience {args.patience}), {len(feature_set)} videos "
        f"({report.n_train} fit + {report.n_val} validation), batch {args.batch_size}, d_model 512:"
    )
    print(table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
