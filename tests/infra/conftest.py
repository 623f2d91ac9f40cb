from tests.infra.sealed_rows import kms, local_keys  # noqa: F401 - fixtures of the key service's tests
