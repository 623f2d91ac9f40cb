"""The trader's pages, one module per concern; ``terminal/urls.py`` routes to them."""
