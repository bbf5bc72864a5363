#!/usr/bin/env bash
# Run the gateway on a real MetaTrader 5 terminal under Wine, on Linux.
#
#   deploy/wine/run-gateway.sh [extra gateway flags...]
#
# Windows Python, the mt5-bridge package (with the MetaTrader5 binding) and the MetaTrader 5
# terminal must be installed in the same Wine prefix first: see README.md beside this script.
# The gateway runs in the foreground; stop it with Ctrl+C.
#
# Settings (environment variables; Windows paths are inside the prefix):
#   WINEPREFIX              the prefix                    default ~/.wine-mt5
#   MT5WINE_PYTHON          python.exe                    default C:\Python311\python.exe
#   MT5WINE_TERMINAL        terminal64.exe                default C:\Program Files\MetaTrader 5\terminal64.exe
#   MT5WINE_CONFIG          gateway.toml (a Linux path)   default ~/mt5-gateway/gateway.toml
#   MT5WINE_SECRET_FILE     the shared secret (Linux)     default ~/mt5-gateway/secret.txt
#   MT5WINE_START_TERMINAL  1: start the terminal if it is not running; 0: only check
# (Do not name your own variables MT5_GATEWAY_*: the gateway reads those as [gateway] keys.)
set -euo pipefail

export WINEPREFIX="${WINEPREFIX:-$HOME/.wine-mt5}"
export WINEDEBUG="${WINEDEBUG:--all}"
python_win="${MT5WINE_PYTHON:-C:\\Python311\\python.exe}"
terminal_win="${MT5WINE_TERMINAL:-C:\\Program Files\\MetaTrader 5\\terminal64.exe}"
config="${MT5WINE_CONFIG:-$HOME/mt5-gateway/gateway.toml}"
secret_file="${MT5WINE_SECRET_FILE:-$HOME/mt5-gateway/secret.txt}"
start_terminal="${MT5WINE_START_TERMINAL:-1}"

die() {
    echo "run-gateway: $*" >&2
    exit 1
}

command -v wine >/dev/null || die "wine is not installed (Debian/Ubuntu: apt install wine64)"
command -v winepath >/dev/null || die "winepath is missing (it comes with wine)"
[ -d "$WINEPREFIX" ] || die "no Wine prefix at $WINEPREFIX (set WINEPREFIX; see README.md)"

python_unix="$(winepath -u "$python_win")"
[ -f "$python_unix" ] || die "no Windows Python at $python_win in $WINEPREFIX (set MT5WINE_PYTHON)"
[ -f "$config" ] || die "no config at $config (set MT5WINE_CONFIG; start from deploy/gateway.example.toml)"
[ -f "$secret_file" ] || die "no secret at $secret_file (set MT5WINE_SECRET_FILE)"
if [ "$(stat -c %a "$secret_file")" != 600 ]; then
    # Under Wine the gateway sees Windows, which has no mode bits to check: check here.
    die "$secret_file can be read by others; run: chmod 600 $secret_file"
fi

if ! wine "$python_win" -c "import MetaTrader5, gtw_server" >/dev/null 2>&1; then
    die "MetaTrader5 or mt5-bridge is not installed in that Python; see README.md, step 3"
fi

terminal_running() {
    pgrep -f 'terminal64\.exe' >/dev/null
}

if ! terminal_running; then
    [ "$start_terminal" = 1 ] || die "the MetaTrader 5 terminal is not running in this prefix"
    [ -f "$(winepath -u "$terminal_win")" ] || die "no terminal at $terminal_win (set MT5WINE_TERMINAL)"
    [ -n "${DISPLAY:-}" ] || die "no DISPLAY for the terminal's window: run under xvfb-run -a, or start it yourself"
    echo "run-gateway: starting the terminal: $terminal_win"
    wine "$terminal_win" >/dev/null 2>&1 &
    for _ in $(seq 1 30); do
        terminal_running && break
        sleep 1
    done
    terminal_running || die "the terminal did not start"
    sleep 10 # let it connect to its trade server
fi
echo "run-gateway: the terminal must be logged in, with Algo Trading on (the toolbar button)"

config_win="$(winepath -w "$config")"
secret_win="$(winepath -w "$secret_file")"
echo "run-gateway: wine $python_win -m gtw_server --terminal mt5 --config $config_win"
exec wine "$python_win" -m gtw_server --terminal mt5 --config "$config_win" \
    --secret-file "$secret_win" "$@"
