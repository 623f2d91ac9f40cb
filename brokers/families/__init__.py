"""What every network broker family shares: the HTTP transport and its error mapping (``wire``), the
market-data and order-update websocket (``stream``), and the symbol-master import into the broker
mapping (``master``). A family package (``families.<name>``) supplies only its dialect: request
building, answer parsing, frame decoding and its master's columns."""
