from django.apps import AppConfig


class RmsConfig(AppConfig):
    name = "rms"
    verbose_name = "Risk management (RMS)"
