"""Writes of the retention domain, one module per act: holds, archive, purge, restore."""
