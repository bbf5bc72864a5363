"""``mt5-bridge`` (also ``python -m inf_bridge``): drive and watch a gateway from a shell.

    mt5-bridge ping                                  # up? round trip, terminal connected
    mt5-bridge account
    mt5-bridge positions --symbol EURUSD
    mt5-bridge open EURUSD BUY 0.10 --sl 1.0800 --comment manual
    mt5-bridge close 100000001 --volume 0.05
    mt5-bridge halt --reason "news at 14:30"         # the kill switch: no OPEN or PLACE from anyone
    mt5-bridge flatten --yes                         # halt, then close every position
    mt5-bridge resume
    mt5-bridge order 3f2a9c...                       # what became of an order
    mt5-bridge quote EURUSD XAUUSD                   # bid, ask, spread in points
    mt5-bridge bars EURUSD H1 --count 500 --csv eurusd-h1.csv
    mt5-bridge symbols '*USD*,!EUR*'                 # symbols_get's group masks
    mt5-bridge place EURUSD BUY_LIMIT 0.10 1.0800 --sl 1.0750 --expiration DAY
    mt5-bridge orders EURUSD                         # pending orders
    mt5-bridge modify 100000002 --order --price 1.0790    # a pending order's terms
    mt5-bridge modify 100000001 --sl 1.0900 --tp 0   # a position's stops (0 removes one)
    mt5-bridge cancel 100000002
    mt5-bridge tail --since 0                        # every trade event kept, then live
    mt5-bridge history --days 7 --csv week.csv       # deals (--orders: orders), every field
    mt5-bridge watch                                 # live view; Ctrl+C to quit

The endpoint, the shared secret, the operator's secret (HALT and RESUME, when the gateway has
an operator key) and the CURVE keys come from a TOML file, the environment and flags
(``inf_bridge.config``). ``--json`` prints each result, and each error, as one JSON
document on stdout. Errors are one line on stderr.

Exit codes:
{exit_codes}
"""

from __future__ import annotations

from inf_bridge.cli.commands import main
from inf_bridge.cli.exit_codes import Exit, exit_codes_help
from inf_bridge.cli.parser import build_parser

__all__ = ["Exit", "build_parser", "main"]

# The exit codes are explained in one table, which --help prints too (exit_codes.py).
if __doc__ is not None:  # None under python -OO
    __doc__ = __doc__.replace("{exit_codes}", exit_codes_help())
