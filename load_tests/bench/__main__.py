"""``python -m load_tests.bench [--smoke] [--requisitions N] [--transfers N] [--stage-seconds S] [--out DIR]``."""

# locust runs in this process: gevent must patch the standard library before anything else
# imports it (ssl, sockets, threads), as locust's own command line does.
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from load_tests.bench.run import STAGES, BenchOptions, command_line, run  # noqa: E402
from load_tests.bench.stack import StackOptions  # noqa: E402


def parse(argv: list[str]) -> BenchOptions:
    """The run's options from the command line (defaults: the full benchmark)."""
    parser = argparse.ArgumentParser(
        prog="python -m load_tests.bench", description="The whole system under load, as production runs it."
    )
    parser.add_argument("--smoke", action="store_true", help="tiny volume, every stage for ~1 s (the test)")
    parser.add_argument("--requisitions", type=int, help="requisitions to load (default 100,000)")
    parser.add_argument("--transfers", type=int, help="ledger transfers to load (default 1,000,000)")
    parser.add_argument("--stage-seconds", type=float, help="measured seconds per stage and step (default 60)")
    parser.add_argument("--out", type=Path, help="where the reports go (default load_tests/reports)")
    parser.add_argument("--work-dir", type=Path, help="the run's logs, var/ and Redis files (default var/bench)")
    parser.add_argument("--gunicorn-workers", type=int, help="gateway gunicorn workers (default: production's, 4)")
    parser.add_argument("--gunicorn-threads", type=int, help="threads per gunicorn worker (default: production's, 4)")
    parser.add_argument("--worker-concurrency", type=int, help="threads per Celery worker (default 4)")
    parser.add_argument("--read-users", type=int, help="users of the dashboard stage (default 500)")
    parser.add_argument("--page-users", type=int, help="users of the pages stage (default 100)")
    parser.add_argument("--pay-rate", type=int, help="payments per second (default 20)")
    parser.add_argument("--chain-rate", type=int, help="whole chains per second (default 20)")
    parser.add_argument("--report-rate", type=int, help="reports per second (default 10)")
    parser.add_argument("--runs", type=int, help="payment runs, one after the other (default 5)")
    parser.add_argument("--run-size", type=int, help="payments in each run (default 100)")
    parser.add_argument("--create-max", type=int, help="highest creation step per second (default 500)")
    parser.add_argument("--profile", choices=("missed", "always", "never"), help="py-spy profiles (default missed)")
    parser.add_argument("--stages", nargs="+", choices=tuple(STAGES), help="run only these stages")
    parser.add_argument("--db-prefix", help="names of the run's databases (default pettycash_bench_)")
    parser.add_argument("--keep-databases", action="store_true", help="do not drop the run's databases at the end")
    parser.add_argument(
        "--redis-url", help="a Redis database to use, e.g. redis://127.0.0.1:6379/12 (default: a server of its own)"
    )
    args = parser.parse_args(argv)

    options = BenchOptions.smoke_options() if args.smoke else BenchOptions()
    cfg, so = options.stages, options.stack
    cfg = dataclasses.replace(
        cfg,
        **{
            k: v
            for k, v in {
                "stage_seconds": args.stage_seconds,
                "read_users": args.read_users,
                "page_users": args.page_users,
                "pay_rate": args.pay_rate,
                "chain_rate": args.chain_rate,
                "report_rate": args.report_rate,
                "runs": args.runs,
                "run_size": args.run_size,
                "profile": args.profile,
            }.items()
            if v is not None
        },
    )
    if args.create_max is not None:
        cfg = dataclasses.replace(cfg, create_rates=tuple(r for r in cfg.create_rates if r <= args.create_max))
    so = StackOptions(
        db_prefix=args.db_prefix or so.db_prefix,
        gunicorn_workers=args.gunicorn_workers or so.gunicorn_workers,
        gunicorn_threads=args.gunicorn_threads or so.gunicorn_threads,
        worker_concurrency=args.worker_concurrency or so.worker_concurrency,
        redis_url=args.redis_url or so.redis_url,
    )
    overrides = {
        k: v
        for k, v in {
            "requisitions": args.requisitions,
            "transfers": args.transfers,
            "out": args.out,
            "work_dir": args.work_dir,
            "only": tuple(args.stages) if args.stages else None,
            "keep_databases": args.keep_databases or None,
        }.items()
        if v is not None
    }
    return dataclasses.replace(options, stages=cfg, stack=so, command=command_line(argv), **overrides)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    options = parse(sys.argv[1:])
    try:
        _json, _markdown, failed = run(options)
    except KeyboardInterrupt:
        print("bench: interrupted; everything it started is stopped", file=sys.stderr)
        sys.exit(130)
    if failed:
        print(f"bench: stages that broke: {failed}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
