"""`mer experiment`: the paper's cross-validation protocol as one command.

    mer experiment DATA --output DIR [--durations 3 5 10] [--folds 10] [--rounds 5]
        [--variants mask-mean no-mask baseline] [--heads bilstm] [--paper-size]
        [--max-ae-epochs N] [--max-head-epochs N] [--seed 0] [--limit-songs N] [--jobs N]

Writes results.csv, report.md, config.json, histories.json and PNG plots into DIR
(features are cached in DIR/cache and reused by later runs), then prints where the
outputs went and the headline table (Table 5 of the first variant).
"""

from __future__ import annotations

import argparse

from mer_tfx import console, contract, presets
from mer_tfx.commands.options import add_old_names

# The choices of --targets, --variants and --heads, read without importing the
# experiment (and TensorFlow), so that --help and argument errors come at once.
TARGETS = tuple(contract.TARGETS)
VARIANTS = presets.VARIANTS
HEADS = presets.HEADS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="dataset folder (PMEmo or 4Q layout) or manifest CSV")
    add_old_names(parser, parser.add_argument("--output", required=True, metavar="DIR",
                                              help="output folder"), "--out")
    parser.add_argument("--durations", type=float, nargs="+", default=None, metavar="SECONDS",
                        help="segment durations (default: all of the dataset's: 4Q 3 5 10, "
                             "PMEmo 1 3 5 10)")
    parser.add_argument("--folds", type=int, default=10, help="k of k-fold CV (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--variants", nargs="+", default=["mask-mean"], choices=VARIANTS,
                        help="mask-mean (the paper's model), mask-zero, no-mask (ablation), "
                             "baseline (CNN+BiLSTM trained jointly), logreg (logistic regression "
                             "on each song's log-mel mean and standard deviation per band: "
                             "the floor a deep model must clear)")
    parser.add_argument("--heads", nargs="+", default=["bilstm"], metavar="NAME[:KEY=VALUE,...]",
                        help=f"stage-2 heads sharing each fold's autoencoder: NAME among "
                             f"{', '.join(HEADS)}, then optional head settings, e.g. "
                             "bilstm:learning_rate=1e-4,rnn_units=64,dropout=0.5,normalize=true,"
                             "pool=mean,seeds=5,grid_shifts=2 (pool: mean or meanstd of "
                             "each segment's embedding over the encoder's time frames; "
                             "seeds: heads averaged; grid_shifts: segment grids shifted by "
                             "k/K of a segment, trained on and averaged over). "
                             "Default: bilstm, as the preset says")
    parser.add_argument("--label-fraction", type=float, nargs="+", default=[1.0],
                        metavar="F", dest="label_fractions",
                        help="shares of each fold's training songs whose labels every variant "
                             "uses, e.g. 0.25 0.5 1 (a learning curve, the same songs for every "
                             "variant); below 1 the two-stage variants also run with the other "
                             "training songs' audio given to stage 1 unlabelled ('+rest'), "
                             "paired in the report, which fits accuracy = a + b*ln(n) per "
                             "model and predicts it at n = 810 (default: 1)")
    parser.add_argument("--unlabeled-data", metavar="DIR", default=None,
                        help="a folder of audio without labels that every two-stage stage 1 "
                             "also trains on (never the dataset's own songs)")
    parser.add_argument("--group-by", choices=("artist",), default=None,
                        help="keep each artist's songs in one fold (StratifiedGroupKFold), so "
                             "no artist is on both sides of a fold; needs the dataset's artists "
                             "(4Q: panda_dataset_taffc_metadata.csv; a manifest: an 'artist' "
                             "column). Default: folds by song")
    parser.add_argument("--paper-size", action="store_true",
                        help="Table 2/3 model sizes (default: the '-small' CPU presets)")
    parser.add_argument("--max-ae-epochs", type=int, default=None,
                        help="cap on autoencoder epochs (default: the preset's)")
    parser.add_argument("--max-head-epochs", type=int, default=None,
                        help="cap on head / baseline epochs (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit-songs", type=int, default=None,
                        help="use only N songs, balanced over quadrants (quick runs)")
    parser.add_argument("--run-folds", type=int, default=None, metavar="N",
                        help="train only the first N folds of each round and print the "
                             "extrapolated time of the full run")
    parser.add_argument("--layout", default=None, help="dataset layout (default: detected)")
    parser.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction,
                        default=True,
                        help="build the models under mixed_float16 when a GPU is visible "
                             "(default; ignored on CPUs); --no-mixed-precision for float32")
    parser.add_argument("--cache-dir", default=None, help="feature cache (default: OUTPUT/cache)")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="train N folds at once in N worker processes, each with "
                             "cpu_count/N threads (default 1; 2 on a 2-core CPU finishes "
                             "sooner, see docs/experiment.md)")
    parser.add_argument("--no-resume", action="store_true",
                        help="start over instead of reusing finished rows in OUTPUT/results.csv")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write report.md and the plots from the rows an "
                             "earlier, perhaps interrupted, run left in OUTPUT (marked partial "
                             "while jobs are missing)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--verbose", action="store_true",
                        help="also show what TensorFlow prints (always in the log file "
                        "OUTPUT/mer-experiment.log)")


def run(args: argparse.Namespace) -> int:
    import logging
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Every fold builds new models, which TensorFlow reports as "retracing": expected here.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    from pathlib import Path

    from mer_tfx.datasets import check_unlabeled_data
    from mer_tfx.experiment import report
    from mer_tfx.experiment.protocol import estimate_seconds, run_experiment

    result = run_experiment(
        args.data, out_dir=args.output, durations=args.durations, small=not args.paper_size,
        folds=args.folds, rounds=args.rounds, targets=args.targets, variants=args.variants,
        heads=args.heads, seed=args.seed, max_ae_epochs=args.max_ae_epochs,
        max_head_epochs=args.max_head_epochs, limit_songs=args.limit_songs,
        run_folds=args.run_folds, layout=args.layout,
        mixed_precision=args.mixed_precision, cache_dir=args.cache_dir,
        resume=not args.no_resume, plots=not args.no_plots, progress=not args.no_progress,
        workers=args.jobs, label_fractions=args.label_fractions, group_by=args.group_by,
        report_only=args.report_only,
        unlabeled_data=check_unlabeled_data(args.unlabeled_data, data_root=Path(args.data)))
    out = console.out()  # the summary; the libraries' output is in the log
    print(f"\nresults:   {result.results_csv}", file=out)
    print(f"report:    {result.report_md}", file=out)
    print(f"config:    {result.config_json}", file=out)
    print(f"per song:  {result.predictions_csv}", file=out)
    for path in result.plots:
        print(f"plot:      {path}", file=out)
    if result.skipped:
        print(f"skipped {len(result.skipped)} file(s) or song(s):", file=out)
        for name, reason in result.skipped[:20]:
            print(f"  {name}: {reason}", file=out)
        if len(result.skipped) > 20:
            print(f"  ... and {len(result.skipped) - 20} more (see config.json)", file=out)
    if result.unfinished:
        print(f"partial:   {result.unfinished} fold job(s) of this protocol have no results "
              "yet; the same command without --report-only trains them", file=out)
    print("\nAccuracy and F1, mean ± std over folds x rounds (%):\n", file=out)
    print(report.performance_table(result.rows), file=out)
    if args.run_folds is not None and args.run_folds < args.folds:
        print(f"\nEstimated training time of all {args.folds} folds x {args.rounds} round(s), "
              f"from the {args.run_folds} fold(s) run (features cached):", file=out)
        for setting, seconds in estimate_seconds(
                result.rows, folds=args.folds, rounds=args.rounds).items():
            print(f"  {setting}: {seconds / 60:.1f} min", file=out)
    if console.log_path() is not None:
        console.say(f"mer experiment: what the libraries printed is in {console.log_path()}")
    return 0
