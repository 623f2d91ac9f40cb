"""DhanHQ v2 as a broker family (``families.dhan``): adapter, REST client, websockets, security list."""
