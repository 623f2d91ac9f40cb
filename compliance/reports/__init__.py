"""The compliance reports beyond the trade trail and the order-to-trade ratio, one module each: its query,
its rows for the export, and its page and export views through the shared helpers of compliance/views.py.
"""
