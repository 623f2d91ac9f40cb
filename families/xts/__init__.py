"""Symphony Fintech's XTS API as a broker family (IIFL's Blaze and the other XTS brokers of the registry);
see docs/brokers.md, "xts"."""
