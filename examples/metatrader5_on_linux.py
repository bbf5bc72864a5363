"""The MetaTrader5 documentation's own examples, run unchanged on Linux against the simulator.

``install_as_metatrader5`` puts a simulated terminal in ``sys.modules`` as ``MetaTrader5``; from
then on ``import MetaTrader5 as mt5`` gets it, wherever it is written. The two examples below
are MetaQuotes' text as published on mql5.com, joined where the page wraps a line, and without
the pandas lines (see below):

- ``copy_rates_from``: https://www.mql5.com/en/docs/python_metatrader5/mt5copyratesfrom_py
- ``order_send``: https://www.mql5.com/en/docs/python_metatrader5/mt5ordersend_py

Run it with ``.venv/bin/python examples/metatrader5_on_linux.py``. The simulated account is a
fresh USD demo account in memory; its prices and history are synthetic (a seeded random walk),
so the numbers differ from the documentation's.
"""

# The examples are kept as MetaQuotes wrote them (imports in between, `import MetaTrader5 as
# mt5`, semicolons, str.format, long lines, quit()):
# ruff: noqa: E402, E501, E703, I001, N813, PLR1722, SIM118, UP032

import sys
import types
from datetime import UTC
from importlib.util import find_spec

from gtw_server.terminal.sim import install_as_metatrader5

install_as_metatrader5(always_open=True)  # markets open every day, so this runs any day

# The copy_rates_from example imports pytz for its UTC zone; if pytz is not installed (this
# project does not need it), the standard library's UTC stands in for it.
if find_spec("pytz") is None:
    pytz_stand_in = types.ModuleType("pytz")
    pytz_stand_in.timezone = lambda name: UTC  # type: ignore[attr-defined]
    sys.modules["pytz"] = pytz_stand_in


# ---- copy_rates_from (mt5copyratesfrom_py) --------------------------------------------------
# The example also shows the bars as a pandas DataFrame; pandas is not installed here, so the
# lines marked "(pandas)" are left out, as comments: everything else runs as published.
# fmt: off
from datetime import datetime
import MetaTrader5 as mt5
# display data on the MetaTrader 5 package
print("MetaTrader5 package author: ",mt5.__author__)
print("MetaTrader5 package version: ",mt5.__version__)

# import the 'pandas' module for displaying data obtained in the tabular form
# (pandas) import pandas as pd
# (pandas) pd.set_option('display.max_columns', 500) # number of columns to be displayed
# (pandas) pd.set_option('display.width', 1500)      # max table width to display
# import pytz module for working with time zone
import pytz

# establish connection to MetaTrader 5 terminal
if not mt5.initialize():
    print("initialize() failed, error code =",mt5.last_error())
    quit()

# set time zone to UTC
timezone = pytz.timezone("Etc/UTC")
# create 'datetime' object in UTC time zone to avoid the implementation of a local time zone offset
utc_from = datetime(2020, 1, 10, tzinfo=timezone)
# get 10 EURUSD H4 bars starting from 01.10.2020 in UTC time zone
rates = mt5.copy_rates_from("EURUSD", mt5.TIMEFRAME_H4, utc_from, 10)

# shut down connection to the MetaTrader 5 terminal
mt5.shutdown()
# display each element of obtained data in a new line
print("Display obtained data 'as is'")
for rate in rates:
    print(rate)

# create DataFrame out of the obtained data
# (pandas) rates_frame = pd.DataFrame(rates)
# convert time in seconds into the datetime format
# (pandas) rates_frame['time']=pd.to_datetime(rates_frame['time'], unit='s')

# display data
# (pandas) print("\nDisplay dataframe with data")
# (pandas) print(rates_frame)
# fmt: on


# ---- order_send (mt5ordersend_py) ------------------------------------------------------------
# fmt: off
import time
import MetaTrader5 as mt5

# display data on the MetaTrader 5 package
print("MetaTrader5 package author: ", mt5.__author__)
print("MetaTrader5 package version: ", mt5.__version__)

# establish connection to the MetaTrader 5 terminal
if not mt5.initialize():
    print("initialize() failed, error code =",mt5.last_error())
    quit()

# prepare the buy request structure
symbol = "USDJPY"
symbol_info = mt5.symbol_info(symbol)
if symbol_info is None:
    print(symbol, "not found, can not call order_check()")
    mt5.shutdown()
    quit()

# if the symbol is unavailable in MarketWatch, add it
if not symbol_info.visible:
    print(symbol, "is not visible, trying to switch on")
    if not mt5.symbol_select(symbol,True):
        print("symbol_select({}}) failed, exit",symbol)
        mt5.shutdown()
        quit()

lot = 0.1
point = mt5.symbol_info(symbol).point
price = mt5.symbol_info_tick(symbol).ask
deviation = 20
request = {
    "action": mt5.TRADE_ACTION_DEAL,
    "symbol": symbol,
    "volume": lot,
    "type": mt5.ORDER_TYPE_BUY,
    "price": price,
    "sl": price - 100 * point,
    "tp": price + 100 * point,
    "deviation": deviation,
    "magic": 234000,
    "comment": "python script open",
    "type_time": mt5.ORDER_TIME_GTC,
    "type_filling": mt5.ORDER_FILLING_RETURN,
}

# send a trading request
result = mt5.order_send(request)
# check the execution result
print("1. order_send(): by {} {} lots at {} with deviation={} points".format(symbol,lot,price,deviation));
if result.retcode != mt5.TRADE_RETCODE_DONE:
    print("2. order_send failed, retcode={}".format(result.retcode))
    # request the result as a dictionary and display it element by element
    result_dict=result._asdict()
    for field in result_dict.keys():
        print("   {}={}".format(field,result_dict[field]))
        # if this is a trading request structure, display it element by element as well
        if field=="request":
            traderequest_dict=result_dict[field]._asdict()
            for tradereq_filed in traderequest_dict:
                print("       traderequest: {}={}".format(tradereq_filed,traderequest_dict[tradereq_filed]))
    print("shutdown() and quit")
    mt5.shutdown()
    quit()

print("2. order_send done, ", result)
print("   opened position with POSITION_TICKET={}".format(result.order))
print("   sleep 2 seconds before closing position #{}".format(result.order))
time.sleep(2)
# create a close request
position_id=result.order
price=mt5.symbol_info_tick(symbol).bid
deviation=20
request={
    "action": mt5.TRADE_ACTION_DEAL,
    "symbol": symbol,
    "volume": lot,
    "type": mt5.ORDER_TYPE_SELL,
    "position": position_id,
    "price": price,
    "deviation": deviation,
    "magic": 234000,
    "comment": "python script close",
    "type_time": mt5.ORDER_TIME_GTC,
    "type_filling": mt5.ORDER_FILLING_RETURN,
}
# send a trading request
result=mt5.order_send(request)
# check the execution result
print("3. close position #{}: sell {} {} lots at {} with deviation={} points".format(position_id,symbol,lot,price,deviation));
if result.retcode != mt5.TRADE_RETCODE_DONE:
    print("4. order_send failed, retcode={}".format(result.retcode))
    print("   result",result)
else:
    print("4. position #{} closed, {}".format(position_id,result))
    # request the result as a dictionary and display it element by element
    result_dict=result._asdict()
    for field in result_dict.keys():
        print("   {}={}".format(field,result_dict[field]))
        # if this is a trading request structure, display it element by element as well
        if field=="request":
            traderequest_dict=result_dict[field]._asdict()
            for tradereq_filed in traderequest_dict:
                print("       traderequest: {}={}".format(tradereq_filed,traderequest_dict[tradereq_filed]))

# shut down connection to the MetaTrader 5 terminal
mt5.shutdown()
# fmt: on
