"""The trader's pages, one module per concern; ``config/urls.py`` routes to them."""
