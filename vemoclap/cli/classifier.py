"""Subcommands for the classifier: ``train``, ``evaluate``, ``parity``, ``ablate``.

Each handler returns an exit code. Bad input raises one-line ``ValueError`` subclasses:
:class:`~vemoclap.training.features.FeatureSetError`,
:class:`~vemoclap.training.train.TrainingError`, :class:`~vemoclap.fusion.CheckpointError`
(and the feature store's ``FeatureFileError`` for a damaged feature file); a missing blacklist file
is a ``FileNotFoundError``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .options import add_device, add_models_dir, add_quiet, csv_list

log = logging.getLogger(__name__)


def _load(args: argparse.Namespace):
    from ..training.features import load_feature_set

    exclude: list[str] = []
    if getattr(args, "blacklist", None):
        from ..training.blacklist import read_blacklist

        exclude = read_blacklist(args.blacklist)
    return load_feature_set(args.features_dir, exclude=exclude, progress=not args.quiet)


def _train_options(args: argparse.Namespace):
    from ..training.train import TrainOptions

    return TrainOptions(
        features=csv_list(args.features),
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        dropout=args.dropout,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        class_balanced=args.class_balanced,
        beta=args.beta,
        patience=args.patience,
        val_fraction=args.val_fraction,
        seed=args.seed,
        device=args.device,
        amp=not args.no_amp,
        d_model=args.d_model,
        n_frames=args.frames,
        progress=not args.quiet,
        recipe=getattr(args, "recipe", None),
    )


def _cmd_train(args: argparse.Namespace) -> int:
    from ..training.train import train

    feature_set = _load(args)
    report = train(feature_set, args.out, _train_options(args))
    print(report.summary())
    print(f"learning curves: {report.curves_path}")
    if args.evaluate:
        from ..training.evaluate import evaluate

        result = evaluate(
            report.checkpoint, feature_set, split=args.evaluate, out_dir=Path(args.out) / f"eval_{args.evaluate}"
        )
        print(result.summary())
    return 0


def _heads(value: str) -> list[int]:
    text = value.strip().lower()
    if text == "both":
        return [4, 8]
    try:
        counts = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        counts = []
    if not counts or any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError(f"'{value}' is not a head count, a list like 4,8, or 'both'")
    return counts


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ..training.evaluate import compare_heads, evaluate

    folder = args.checkpoint if args.checkpoint.is_dir() else args.checkpoint.parent
    out = args.out if args.out is not None else folder / f"eval_{args.split}"
    heads = args.heads or []
    if len(heads) > 1:
        comparison = compare_heads(
            args.checkpoint, _load(args), heads, split=args.split, out_dir=out, device=args.device
        )
        print(comparison.table())
        print(comparison.summary())
        print(f"reports: {out}/heads_N; what settles it: {out / 'heads.md'}")
        return 0
    report = evaluate(
        args.checkpoint,
        _load(args),
        split=args.split,
        out_dir=out,
        device=args.device,
        heads=heads[0] if heads else None,
    )
    print(report.summary())
    return 0


def _video_arg(value: str) -> tuple[str, str | None, Path]:
    """``PATH``, ``NAME=PATH`` or ``NAME:PUBLISHED_ID=PATH`` (the id of its rows in the published features)."""
    name, sep, path = value.rpartition("=")
    if not sep:
        return Path(value).stem, None, Path(value)
    name, colon, published = name.partition(":")
    if not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"'{value}' is not PATH, NAME=PATH or NAME:PUBLISHED_ID=PATH")
    return name.strip(), published.strip() or None, Path(path)


def _cmd_parity(args: argparse.Namespace) -> int:
    import json

    from .._util import atomic_write_text, to_jsonable
    from ..parity import DEFAULT_SETTINGS, Setting, run_parity, sample_videos

    videos: dict[str, Path] = {}
    ids: dict[str, str] = {}
    for name, published, path in args.video or []:
        if not path.is_file():
            from ..errors import NotFound

            raise NotFound(f"{path}: no such video file (--video {name}=PATH)")
        videos[name] = path
        if published:
            ids[name] = published
    if args.samples is not None or not videos:
        videos.update(sample_videos(csv_list(args.samples) if args.samples not in (None, "all") else None))
    settings = [Setting.parse(text) for text in args.setting] if args.setting else list(DEFAULT_SETTINGS)
    checkpoint = None if args.no_classifier else _parity_checkpoint(args.checkpoint, args.models_dir)
    report = run_parity(
        args.features_dir,
        videos,
        checkpoint=checkpoint,
        settings=settings,
        heads=args.heads or [4, 8],
        published_ids=ids,
        extractors=csv_list(args.extractors),
        device=args.device,
        models_dir=args.models_dir,
    )
    print(report.table())
    if args.json:
        atomic_write_text(args.json, json.dumps(to_jsonable(report.to_dict()), indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0


def _parity_checkpoint(checkpoint: str, models_dir):
    if checkpoint != "reference":
        return Path(checkpoint)
    from ..models import classifier_dir

    return classifier_dir(models_dir)


def _cmd_ablate(args: argparse.Namespace) -> int:
    from ..training.ablate import ablate

    table = ablate(
        _load(args), args.out, options=_train_options(args), eval_split=args.split, checkpoint=args.checkpoint
    )
    print(table[["variant", "accuracy", "macro_f1"]].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {Path(args.out) / 'ablation.md'} and ablation.csv")
    return 0


def _recipe_names() -> list[str]:
    from ..recipes import names

    return names()


def _add_features_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "features_dir",
        type=Path,
        metavar="CACHE",
        help="a feature cache folder (written by `vemoclap extract` / `import-features`)",
    )
    parser.add_argument(
        "--blacklist",
        type=Path,
        default=None,
        help="also leave out the videos whose file names this list holds (e.g. ekman_blacklist.txt)",
    )
    add_quiet(parser, "no progress bars")


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--features",
        default=None,
        help="comma-separated feature names to use (default: every extractor's feature the cache has)",
    )
    parser.add_argument("--epochs", type=int, default=200, help="most epochs (default 200; early stopping ends sooner)")
    parser.add_argument("--lr", type=float, default=1e-5, help="learning rate (default 1e-5, the reference's)")
    parser.add_argument("--batch-size", type=int, default=32, help="default 32")
    parser.add_argument("--dropout", type=float, default=0.5, help="default 0.5")
    parser.add_argument("--optimizer", choices=["adam", "adamw"], default="adam", help="default adam")
    parser.add_argument("--weight-decay", type=float, default=None, help="default 0 for adam, 0.01 for adamw")
    parser.add_argument(
        "--class-balanced",
        action="store_true",
        help="weigh the loss by class (effective number of samples, Cui et al. 2019)",
    )
    parser.add_argument(
        "--beta", type=float, default=0.999, help="β of the class-balanced loss (default 0.999; 1 = inverse frequency)"
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=10,
        help="stop after this many epochs without a better validation accuracy (default 10; 0: never)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of train held out for validation when the cache has no val split (default 0.1)",
    )
    parser.add_argument("--seed", type=int, default=0, help="default 0")
    add_device(parser)
    parser.add_argument("--no-amp", action="store_true", help="no mixed precision on the GPU")
    parser.add_argument("--d-model", type=int, default=512, help="width of the fusion network (default 512)")
    parser.add_argument("--frames", type=int, default=16, help="rows of each sequence feature it sees (default 16)")


def add_train(subparsers) -> None:
    train = subparsers.add_parser("train", help="train the fusion classifier on a feature cache")
    _add_features_dir(train)
    train.add_argument(
        "--out",
        type=Path,
        required=True,
        help="checkpoint folder to write (e.g. weights/NAME): classifier.safetensors + .json, "
        "history.json, learning_curves.png",
    )
    train.add_argument(
        "--recipe",
        default=None,
        choices=_recipe_names(),
        help="the feature recipe to record in the checkpoint (default: the one the feature files record, as it ran)",
    )
    _add_training_options(train)
    train.add_argument(
        "--evaluate",
        nargs="?",
        const="test",
        default=None,
        metavar="SPLIT",
        help="evaluate on SPLIT (default test) afterwards, into OUT/eval_SPLIT",
    )
    train.set_defaults(func=_cmd_train)


def add_evaluate(subparsers) -> None:
    evaluate = subparsers.add_parser("evaluate", help="accuracy, P/R/F1, confusion matrix, AUCs and a report")
    evaluate.add_argument("checkpoint", type=Path, help="a classifier folder (ours or the reference's)")
    _add_features_dir(evaluate)
    evaluate.add_argument("--split", default="test", help="which split to evaluate (default test)")
    evaluate.add_argument("--out", type=Path, default=None, help="report folder (default CHECKPOINT/eval_SPLIT)")
    add_device(evaluate, "cpu", "cpu (default), cuda, auto …")
    evaluate.add_argument(
        "--heads",
        type=_heads,
        default=None,
        metavar="N[,M]",
        help="run the weights with N attention heads (default: the checkpoint's; 4 for a reference-layout "
        "one, as its app builds; its config says 8); several ('4,8' or 'both') compare them, "
        "one report each under OUT/heads_N and a table in OUT/heads.md",
    )
    evaluate.set_defaults(func=_cmd_evaluate)


def add_parity(subparsers) -> None:
    parity = subparsers.add_parser(
        "parity", help="compare our features of the reference's sample videos with its published features"
    )
    parity.add_argument(
        "features_dir",
        type=Path,
        metavar="FEATURES",
        help="the reference's published Ekman-6 features, imported with `vemoclap import-features`",
    )
    parity.add_argument(
        "--samples",
        default=None,
        metavar="NAMES",
        help="reference sample videos to compare, comma-separated (anger,joy …) or 'all' "
        "(default: all six labelled ones, unless --video is given); fetched on first use",
    )
    parity.add_argument(
        "--video",
        type=_video_arg,
        action="append",
        metavar="NAME[:ID]=PATH",
        help="another video to compare (repeatable); ID: its id in the published features "
        "(default: the published video with the nearest CLIP rows)",
    )
    parity.add_argument(
        "--setting",
        action="append",
        metavar="RECIPE[,extractor.option=value…]",
        help="an extraction setting to compare (repeatable; frames.FIELD=value sets the recipe's frame "
        "settings, e.g. frames.positions=scenes; default: reference, reference with the app's BEATs chunk "
        "indices, reference with the bundled OCR models, reference with the training-era scene sampler, vemoclap)",
    )
    parity.add_argument(
        "--checkpoint", default="reference", help="classifier whose predictions to show (default: the reference's)"
    )
    parity.add_argument("--no-classifier", action="store_true", help="features only, no predictions")
    parity.add_argument(
        "--heads", type=_heads, default=None, metavar="N[,M]", help="attention heads to predict with (default 4,8)"
    )
    parity.add_argument("--extractors", default=None, help="comma-separated extractors (default: the reference's)")
    add_device(parity)
    add_models_dir(parity)
    parity.add_argument("--json", type=Path, default=None, help="also write every number to this JSON file")
    parity.set_defaults(func=_cmd_parity)


def add_ablate(subparsers) -> None:
    ablate = subparsers.add_parser("ablate", help="compare the fusion model with baselines and without each modality")
    _add_features_dir(ablate)
    ablate.add_argument("--out", type=Path, default=Path("ablation"), help="output folder (default ablation)")
    ablate.add_argument("--split", default="test", help="split the variants are scored on (default test)")
    ablate.add_argument(
        "--checkpoint", type=Path, default=None, help="use this trained fusion model instead of training one"
    )
    _add_training_options(ablate)
    ablate.set_defaults(func=_cmd_ablate)


__all__ = ["add_ablate", "add_evaluate", "add_parity", "add_train"]
