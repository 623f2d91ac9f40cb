from django.apps import AppConfig


class InfraConfig(AppConfig):
    name = "infra"
    verbose_name = "Platform"

    def ready(self) -> None:
        from django.conf import settings

        from core import sealing
        from infra import metrics  # noqa: F401  (exported from start-up)
        from infra.key_rotation import is_retired

        sealing.register_retired_check(is_retired)
        if settings.SEALING_KMS_KEY_ID:
            from infra.kms import KmsKeyService

            sealing.register_provider(
                KmsKeyService(
                    key_id=settings.SEALING_KMS_KEY_ID,
                    region=settings.SEALING_KMS_REGION,
                    endpoint_url=settings.SEALING_KMS_ENDPOINT_URL,
                )
            )
