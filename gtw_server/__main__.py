"""``python -m gtw_server``: run the trading gateway.

python -m gtw_server --secret-file secret.txt                 # simulator, loopback
python -m gtw_server --terminal mt5 --config gateway.toml      # a real terminal (Windows)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gtw_server.config import CONFIG_FILE_ENV, SECRET_ENV, load_config, load_data_dir
from gtw_server.curve import keygen
from gtw_server.errors import ConfigError, GatewayError
from gtw_server.journal_doctor import check, recover
from gtw_server.log import configure_logging
from gtw_server.server import Gateway
from protocol import VERSION

__all__ = [
    "build_journal_parser",
    "build_keygen_parser",
    "build_parser",
    "journal_main",
    "keygen_main",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gtw_server",
        description="The MT5 trading gateway: a ZeroMQ ROUTER that validates, journals and "
        "executes orders through a MetaTrader 5 terminal (or the built-in simulator).",
        epilog=f"The shared secret comes from --secret-file or the environment variable "
        f"{SECRET_ENV}. Flags override the config file, which overrides the defaults. "
        "Make CURVE keys with: python -m gtw_server keygen DIR --name NAME. Check or recover "
        "the journal with: python -m gtw_server journal check|recover.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    parser.add_argument(
        "--config", metavar="FILE", help=f"TOML config file (default: ${CONFIG_FILE_ENV})"
    )
    parser.add_argument("--bind", help="ZeroMQ endpoint (default tcp://127.0.0.1:5555)")
    parser.add_argument(
        "--events",
        metavar="ENDPOINT",
        help="where to publish ticks, bars and state changes (default: the port after "
        '--bind\'s; "off" for none)',
    )
    parser.add_argument(
        "--terminal", choices=("sim", "mt5"), help="simulated terminal (default) or MetaTrader5"
    )
    parser.add_argument("--data-dir", metavar="DIR", help="journal and simulator state")
    parser.add_argument(
        "--secret-file", metavar="FILE", help="file holding the shared signing secret"
    )
    parser.add_argument(
        "--operator-secret-file",
        metavar="FILE",
        help="file holding the operator's secret: HALT and RESUME must be signed with it",
    )
    parser.add_argument(
        "--no-signature-validation",
        action="store_true",
        help="accept unsigned orders (tests and demos only)",
    )
    parser.add_argument(
        "--signature-ttl-ms", type=int, metavar="MS", help="signature lifetime (default 5000)"
    )
    parser.add_argument(
        "--curve-secret-key",
        metavar="FILE",
        help="the gateway's CURVE certificate (.key_secret); turns encryption on",
    )
    parser.add_argument(
        "--curve-clients", metavar="DIR", help="directory of the allowed clients' .key files"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --bind without CURVE (trusted private networks only)",
    )
    parser.add_argument(
        "--reset-sim",
        action="store_true",
        help="start the simulated broker afresh: a new account, no positions or history",
    )
    parser.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on this port"
    )
    parser.add_argument(
        "--log-level",
        choices=("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"),
        type=str.upper,
    )
    return parser


def build_keygen_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gtw_server keygen",
        description="Write a CURVE key pair: NAME.key (public: give it to the other side) "
        "and NAME.key_secret (keep it; readable only by you).",
    )
    parser.add_argument("directory", metavar="DIR")
    parser.add_argument("--name", required=True, help="e.g. gateway, or a strategy node's name")
    return parser


def keygen_main(argv: Sequence[str]) -> int:
    args = build_keygen_parser().parse_args(argv)
    try:
        public, secret = keygen(Path(args.directory), args.name)
    except ConfigError as exc:
        print(f"keygen: {exc}", file=sys.stderr)
        return 2
    print(f"public key: {public}   (copy to the other side)")
    print(f"secret key: {secret}   (keep here, owner-only)")
    return 0


def build_journal_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gtw_server journal",
        description="Look after the gateway's journal (docs/OPERATIONS.md, "
        '"When the journal is damaged").',
    )
    # Accepted before or after the command; after it, an absent flag keeps the earlier one.
    places = argparse.ArgumentParser(add_help=False)
    for flags, default in ((parser, None), (places, argparse.SUPPRESS)):
        flags.add_argument(
            "--config",
            metavar="FILE",
            default=default,
            help=f"TOML config file (default: ${CONFIG_FILE_ENV})",
        )
        flags.add_argument(
            "--data-dir", metavar="DIR", default=default, help="the gateway's data directory"
        )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "check",
        parents=[places],
        help="check the journal (exit 0 sound, 1 damaged or missing); safe beside a gateway",
    )
    recover = commands.add_parser(
        "recover",
        parents=[places],
        help="move a damaged journal aside and start a new one (the gateway must be stopped)",
    )
    recover.add_argument(
        "--force", action="store_true", help="even when the journal is sound (forgets its orders)"
    )
    return parser


def journal_main(argv: Sequence[str]) -> int:
    args = build_journal_parser().parse_args(argv)
    try:
        config_file = args.config or os.environ.get(CONFIG_FILE_ENV) or None
        data_dir = load_data_dir(config_file=config_file, override=args.data_dir)
        if args.command == "check":
            sound, lines = check(data_dir)
            print("\n".join(lines))
            return 0 if sound else 1
        print("\n".join(recover(data_dir, force=args.force)))
    except GatewayError as exc:
        print(f"journal {args.command}: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["keygen"]:
        return keygen_main(argv[1:])
    if argv[:1] == ["journal"]:
        return journal_main(argv[1:])
    args = build_parser().parse_args(argv)
    overrides = {
        "bind": args.bind,
        "events": args.events,
        "terminal": args.terminal,
        "data_dir": args.data_dir,
        "secret_file": args.secret_file,
        "operator_secret_file": args.operator_secret_file,
        "signature_ttl_ms": args.signature_ttl_ms,
        "log_level": args.log_level,
        "signature_validation": False if args.no_signature_validation else None,
        "curve_secret_key": args.curve_secret_key,
        "curve_clients": args.curve_clients,
        "insecure": True if args.insecure else None,
        "metrics_port": args.metrics_port,
    }
    # The environment can name the config file too (the Windows service relies on it).
    config_file = args.config or os.environ.get(CONFIG_FILE_ENV) or None
    try:
        config = load_config(config_file=config_file, overrides=overrides)
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    gateway = config.gateway
    configure_logging(
        gateway.log_level,
        file=config.data_dir / gateway.log_file if gateway.log_file else None,
        rotation=gateway.log_rotation,
        retention=gateway.log_retention,
        retention_size=gateway.log_retention_size,
    )
    return Gateway(config, sim_reset=args.reset_sim).run()


if __name__ == "__main__":
    sys.exit(main())
