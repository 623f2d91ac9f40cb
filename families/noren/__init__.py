"""NorenOMS (Kambala Solutions), the API many Indian brokers run (Shoonya, Flattrade, Zebu, ProStocks,
...): every call a POST of ``jData=<json>&jKey=<session token>``, a JSON websocket for market data
and order updates, and zipped CSV symbol masters. See docs/brokers.md ("noren")."""
