"""Angel One SmartAPI, a broker family: ``client`` (the REST calls and Angel's envelope), ``records``
(its answers as typed values), ``mapping`` (its words and ours), ``adapter`` (``AngelAdapter``, the broker
contract and the TOTP sign-in), ``stream`` (the market-data and order-update websockets), ``master``
(the scrip master). See docs/brokers.md, "angel"."""
