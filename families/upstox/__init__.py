"""Upstox API v2/v3 as a broker family: OAuth2 sign-in, orders on the HFT host, the protobuf market
feed, the portfolio stream's order updates and the JSON symbol master. See docs/brokers.md, "upstox"."""
