"""Broker API families beside Kite, one package each (``families.<name>``), each a Django app that
registers its adapter for the registry's brokers of its family (``brokers.catalogue.of_family``)."""
