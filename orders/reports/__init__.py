"""The trader's reports over an account's trades: P&L with charges (``pnl``), the tradebook
(``tradebook``), the tax P&L per financial year (``tax``), holdings at the broker (``holdings``), and
the periods and filters they read (``periods``). Reads only: each takes an account already authorised
through ``brokers.selectors.account_get_for_user``."""
