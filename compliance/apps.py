from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    # The audit trail kept the label "compliance" when it moved to audit/ (audit/apps.py), so the
    # reports' own tables (export jobs) live under this one.
    label = "reports"
    verbose_name = "Compliance reports"
