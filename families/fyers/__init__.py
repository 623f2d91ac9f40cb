"""Fyers API v3 as a broker family (``families.fyers``): the REST client and its error mapping, the
HSM market-data websocket, the order-update websocket, the symbol master, and the adapter that
puts them behind the broker contract. See docs/brokers.md, "fyers"."""
